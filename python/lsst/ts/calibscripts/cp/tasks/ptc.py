"""Photon transfer curve: per-pair extraction and the per-detector fit.

`PtcExtractTask` (label ``ptcExtract``) sees every ISR-processed flat of a
detector, pairs the flats taken consecutively with equal exposure times
(`lsst.ts.calibscripts.cp.algorithms.ptc.find_flat_pairs`), and measures each pair
(`~lsst.ts.calibscripts.cp.algorithms.ptc.measure_pair`: means, difference-image
variance, single-pair gain with the FULL read-noise correction). Each pair
becomes one ``cpPtcExtract`` dataset keyed by the pair's *first* exposure,
whose ``gain`` and ``noise`` are what the procedure reads::

    butler.get("cpPtcExtract", instrument="LATISS", detector=0, exposure=flat1).gain

`PtcSolveTask` (label ``ptcSolve``) merges a detector's extracts and fits the
exponential approximation per amplifier
(`~lsst.ts.calibscripts.cp.algorithms.ptc.fit_ptc_amp`) into the ``ptc`` calibration.
Both datasets are a `~lsst.ts.calibscripts.cp.butler.ptc_dataset.PhotonTransferCurveDataset`.
"""

from __future__ import annotations

__all__ = [
    "PtcExtractConfig",
    "PtcExtractConnections",
    "PtcExtractTask",
    "PtcSolveConfig",
    "PtcSolveConnections",
    "PtcSolveTask",
]

import logging
from collections.abc import Sequence

import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DatasetRef, DeferredDatasetHandle
from lsst.images import Box, MaskedImage
from lsst.pex.config import Field, ListField
from lsst.pipe.base import (
    InputQuantizedConnection,
    NoWorkFound,
    OutputQuantizedConnection,
    PipelineTask,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..algorithms.overscan import overscan_residual_key
from ..algorithms.ptc import FlatPair, PtcConfig, PtcSolution, find_flat_pairs, fit_ptc_amp, measure_pair
from ..butler.dataset_types import PTC
from ..butler.ptc_dataset import (
    PTC_FIT_TYPE_EXPAPPROXIMATION,
    PTC_FIT_TYPE_EXTRACT,
    PhotonTransferCurveDataset,
)
from .base import (
    calibration_output,
    clip_field,
    exposure_of,
    iterations_field,
    mask_planes_field,
    processed_exposure,
)
from .image_conventions import (
    UNITS_KEY,
    detector_geometry,
    excluded_pixels,
    float_metadata,
    read_without_variance,
)

_log = logging.getLogger(__name__)


class PtcExtractConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `PtcExtractTask`: all flats of a detector in, one dataset per pair out."""

    inputExp = processed_exposure("cpPtcProc", "ISR-processed flats (ADU).", multiple=True)
    outputCovariances = cT.Output(
        name="cpPtcExtract",
        doc="Measurements of one flat pair, keyed by the pair's first exposure.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )


class PtcExtractConfig(PipelineTaskConfig, pipelineConnections=PtcExtractConnections):
    """Configuration of `PtcExtractTask` (cp_pipe defaults)."""

    edge = Field[int](
        doc="Pixels masked along every amplifier edge. Default: 20.", default=20, check=lambda v: v >= 0
    )
    clip = clip_field(5.5, "the means and of the difference image")
    nIter = iterations_field()
    pairTimeTolerance = Field[float](
        doc="Largest exposure-time difference within a pair, s. Default: 0.005.",
        default=0.005,
        check=lambda v: v >= 0,
    )
    maskPlanes = mask_planes_field(["BAD", "SAT"])


class PtcExtractTask(PipelineTask):
    """Pair the flats of one detector and measure every pair."""

    ConfigClass = PtcExtractConfig
    _DefaultName = "ptcExtract"
    config: PtcExtractConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Pair the inputs by exposure time, measure, write one output per pair.

        Unlike the other tasks (`~lsst.ts.calibscripts.cp.tasks.base.CalibPipelineTask`),
        this one runs once per flat pair and writes each pair's dataset as
        soon as it is measured: memory holds one pair at a time, and a flat
        without a partner gets no output.
        """
        handles: list[DeferredDatasetHandle] = butlerQC.get(inputRefs.inputExp)
        by_exposure = {exposure_of(h): h for h in handles}
        outputs: dict[int, DatasetRef] = {exposure_of(ref): ref for ref in outputRefs.outputCovariances}
        times = [(exposure, _exposure_time(handle)) for exposure, handle in by_exposure.items()]
        pairs = find_flat_pairs(times, tolerance=self.config.pairTimeTolerance)
        if not pairs:
            raise NoWorkFound(
                f"No two consecutive flats with equal exposure times among {sorted(by_exposure)}."
            )
        paired = {e for pair in pairs for e in (pair.first, pair.second)}
        unpaired = sorted(set(by_exposure) - paired)
        if unpaired:
            _log.info("Flats without a partner (not measured): %s", unpaired)
        first_ref = handles[0].ref
        detector = int(first_ref.dataId["detector"])
        record = first_ref.dataId.records["detector"] if first_ref.dataId.hasRecords() else None
        detector_name = record.full_name if record is not None else str(detector)
        for pair in pairs:
            result = self.run(
                read_without_variance(by_exposure[pair.first]),
                read_without_variance(by_exposure[pair.second]),
                pair,
                instrument=str(first_ref.dataId["instrument"]),
                detector=detector,
                detector_name=str(detector_name),
            )
            butlerQC.put(result.outputCovariances, outputs[pair.first])

    def run(
        self,
        exposure1: MaskedImage,
        exposure2: MaskedImage,
        pair: FlatPair,
        *,
        instrument: str,
        detector: int,
        detector_name: str,
    ) -> Struct:
        """Measure one flat pair.

        Parameters
        ----------
        exposure1, exposure2
            The two ISR-processed flats (ADU), in acquisition order.
        pair
            Their exposure ids and time.
        instrument, detector, detector_name
            Identity recorded in the dataset.

        Returns
        -------
        result
            ``outputCovariances``: the pair's `PhotonTransferCurveDataset`
            (``ptcFitType`` ``EXTRACT``).

        Raises
        ------
        ValueError
            If a flat is not in ADU (the PTC needs ISR with doApplyGains=False).
        """
        config = self.config
        for exposure, image in ((pair.first, exposure1), (pair.second, exposure2)):
            if image.metadata.get(UNITS_KEY) != "adu":
                raise ValueError(
                    f"Flat {exposure} is in {image.metadata.get(UNITS_KEY)!r}; the PTC is measured in ADU "
                    "(run ISR with doApplyGains=False)."
                )
        geometry = detector_geometry(exposure1.metadata)
        excluded1 = excluded_pixels(exposure1, config.maskPlanes)
        excluded2 = excluded_pixels(exposure2, config.maskPlanes)
        images1, images2, noise1, noise2, masks = {}, {}, {}, {}, {}
        for amp in geometry:
            region = amp.detector_slice
            images1[amp.name] = exposure1.image.array[region]
            images2[amp.name] = exposure2.image.array[region]
            masks[amp.name] = excluded1[region] | excluded2[region]
            noise1[amp.name] = float_metadata(exposure1.metadata, overscan_residual_key(amp.name))
            noise2[amp.name] = float_metadata(exposure2.metadata, overscan_residual_key(amp.name))
        extract = measure_pair(
            pair,
            images1,
            images2,
            noise1,
            noise2,
            masks,
            PtcConfig(edge=config.edge, sigma=config.clip, iterations=config.nIter),
        )
        dataset = PhotonTransferCurveDataset(
            instrument=instrument,
            detector=detector,
            detectorName=detector_name,
            ptcFitType=PTC_FIT_TYPE_EXTRACT,
            nPixels={amp: [m.n_pixels] for amp, m in extract.amps.items()},
            **extract.to_dataset_fields(),
        )
        return Struct(outputCovariances=dataset)


def _exposure_time(handle: DeferredDatasetHandle) -> float:
    data_id = handle.dataId
    if data_id.hasRecords() and data_id.records["exposure"] is not None:
        return float(data_id.records["exposure"].exposure_time)
    # Without dimension records, read the time ISR copied from the raw header
    # (a one-pixel cut-out brings the metadata without the pixels).
    cutout = handle.get(parameters={"bbox": Box.factory[0:1, 0:1]})
    return float(cutout.metadata["EXPTIME"])


class PtcSolveConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `PtcSolveTask`."""

    inputCovariances = cT.Input(
        name="cpPtcExtract",
        doc="Per-pair measurements of the detector.",
        storageClass="PhotonTransferCurve",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    outputPtcDataset = calibration_output(PTC, "Fitted photon transfer curve of the detector.")


class PtcSolveConfig(PipelineTaskConfig, pipelineConnections=PtcSolveConnections):
    """Configuration of `PtcSolveTask` (cp_pipe defaults of the exponential fit)."""

    initialParameters = ListField[float](
        doc="Start of the fit, [a00, gain, n00]. Default: [-2e-6, 1.5, 25].",
        default=[-2e-6, 1.5, 25.0],
        length=3,
    )
    lowerBounds = ListField[float](
        doc="Lower bounds of [a00, gain, n00]. Default: [-1e-4, 0.1, 0].", default=[-1e-4, 0.1, 0.0], length=3
    )
    upperBounds = ListField[float](
        doc="Upper bounds of [a00, gain, n00]. Default: [0, 10, 2000].", default=[0.0, 10.0, 2000.0], length=3
    )
    outlierSigma = Field[float](
        doc="Points whose residual exceeds this many robust sigma are rejected. Default: 5.0.", default=5.0
    )
    maxOutlierIterations = Field[int](doc="Maximum fit/reject cycles. Default: 10.", default=10)
    minPoints = Field[int](doc="Fewest pairs a fit accepts. Default: 4.", default=4)


class PtcSolveTask(PipelineTask):
    """Fit the photon transfer curve of one detector."""

    ConfigClass = PtcSolveConfig
    _DefaultName = "ptcSolve"
    config: PtcSolveConfig

    def run(self, inputCovariances: Sequence[PhotonTransferCurveDataset]) -> Struct:
        """Merge the pair extracts and fit every amplifier.

        Parameters
        ----------
        inputCovariances
            ``cpPtcExtract`` datasets of one detector.

        Returns
        -------
        result
            ``outputPtcDataset``: the ``ptc`` `PhotonTransferCurveDataset`
            with gain, noise (``sqrt(n00)``, e-), a00, turnoff and the
            per-pair arrays; amps whose fit failed are in ``badAmps``.
        """
        if not inputCovariances:
            raise NoWorkFound("No PTC extracts to fit.")
        config = self.config
        merged = PhotonTransferCurveDataset.concatenate(list(inputCovariances), PTC_FIT_TYPE_EXPAPPROXIMATION)
        ptc_config = PtcConfig(
            initial_parameters=tuple(config.initialParameters),  # type: ignore[arg-type]
            lower_bounds=tuple(config.lowerBounds),  # type: ignore[arg-type]
            upper_bounds=tuple(config.upperBounds),  # type: ignore[arg-type]
            outlier_sigma=config.outlierSigma,
            max_outlier_iterations=config.maxOutlierIterations,
            min_points=config.minPoints,
        )
        solution = PtcSolution()
        for amp in merged.ampNames:
            solution.means[amp] = merged.rawMeans[amp]
            solution.variances[amp] = merged.rawVars[amp]
            solution.exposure_times[amp] = merged.expTimes[amp]
            solution.exposure_pairs[amp] = [(int(a), int(b)) for a, b in merged.inputExpIdPairs[amp]]
            n_pixels = merged.nPixels.get(amp) or None
            solution.fits[amp] = fit_ptc_amp(merged.rawMeans[amp], merged.rawVars[amp], n_pixels, ptc_config)
        result = merged.model_copy(update=solution.to_dataset_fields())
        bad = result.badAmps
        if bad:
            _log.warning("PTC fit failed for amps %s: %s", bad, {a: result.fitStatus[a] for a in bad})
        return Struct(outputPtcDataset=result)
