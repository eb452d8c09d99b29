"""Calibration verification (DMTN-101, as cp_verify does it).

Each input exposure is processed by ISR with the calibration under test
(the residual of a bias or dark, the flattened image of a flat, in ADU) and
measured in the same quantum, by `CpVerifyIsrTask` (label
``verify<Type>Isr``, per exposure and detector): it measures ``MEAN``,
``NOISE`` and ``CR_NOISE`` of every amplifier and runs the DMTN-101 tests
(`lsst.ts.calibscripts.cp.algorithms.verification`), writing
``verify<Type>DetStats``, and the residual itself (``verify<Type>Proc``,
unless ``doWriteResidual=False``), never read back. With ``doReuseIsr`` (``verifyBias``) it starts
from the generation's ISR output of the same exposure (``cpBiasProc``)
instead of the raw, when that output was made with the same overscan
settings and nothing else: the same pixels, without decoding the raw again.
`CpVerifyStatsTask` measures an already processed image (the former
``verify<Type>Det`` step) and gives the same statistics. Then:

* `CpVerifyExposureTask` (``verify<Type>Exp``, per exposure) merges the
  detectors into ``verify<Type>ExpStats`` ``{<detector name>: {SUCCESS,
  FAILURES: ["C10 NOISE", ...]}, SUCCESS}`` (flats add the scatter of the
  detector means);
* `CpVerifyRunTask` (``verify<Type>Run``, per instrument) merges the
  exposures into ``verify<Type>Stats`` ``{<exposure id>: {SUCCESS, FAILURES:
  ["RXX_S00 C10 NOISE", ...]}, SUCCESS}``, what the calibration scripts read.

The nominal read noise of the ``NOISE`` test is the one ISR records
(``LSST ISR READNOISE <amp>``, the camera description's value), else the
camera description's; ``readNoiseSource=OVERSCAN`` uses instead the noise
ISR measured in the exposure's serial overscan (``LSST ISR OVERSCAN
RESIDUAL SERIAL STDEV <amp>``). Either is converted to the residual's units.
"""

from __future__ import annotations

__all__ = [
    "CpVerifyExposureConfig",
    "CpVerifyExposureConnections",
    "CpVerifyExposureTask",
    "CpVerifyIsrConfig",
    "CpVerifyIsrConnections",
    "CpVerifyIsrTask",
    "CpVerifyRunConfig",
    "CpVerifyRunConnections",
    "CpVerifyRunTask",
    "CpVerifyStatsConfig",
    "CpVerifyStatsConnections",
    "CpVerifyStatsTask",
    "VerifyStatsFields",
    "detector_statistics",
]

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import MaskedImage
from lsst.pex.config import ChoiceField, Config, Field
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTaskConfig,
    PipelineTaskConnections,
    QuantumContext,
    Struct,
)

from ..algorithms.cosmic_rays import CosmicRayConfig
from ..algorithms.overscan import overscan_residual_key
from ..algorithms.verification import (
    VerifyConfig,
    merge_detector_stats,
    merge_exposure_stats,
    verify_detector,
)
from ..butler.image_file import ImageFile, local_path
from ..camera.description import get_instrument_description
from ..camera.geometry import DetectorGeometry
from .base import (
    PROCESSED_IMAGE_STORAGE_CLASS,
    CalibPipelineTask,
    ProcessedImageTask,
    clip_field,
    cosmic_ray_grow_field,
    cosmic_ray_threshold_field,
    dict_input,
    dict_output,
    exposure_of,
    iterations_field,
    mask_planes_field,
    processed_exposure,
    resolve_threads,
    threads_field,
)
from .image_conventions import (
    EXPOSURE_ID_KEY,
    UNITS_KEY,
    detector_geometry,
    excluded_pixels,
    float_metadata,
    gain_key,
    read_noise_key,
)
from .isr import (
    APPLIED_KEY,
    OVERSCAN_SETTINGS_KEY,
    CalibrationPlanes,
    IsrTask,
    IsrTaskConfig,
    IsrTaskConnections,
    OverscanStage,
)

_log = logging.getLogger(__name__)

_PER_EXPOSURE = ("instrument", "exposure", "detector")


class CpVerifyStatsConnections(PipelineTaskConnections, dimensions=_PER_EXPOSURE):
    """Connections of `CpVerifyStatsTask`."""

    # Read without the variance, which no test uses.
    inputExp = processed_exposure("verifyBiasProc", "Exposure processed with the calibration under test.")
    outputStats = dict_output(
        "verifyBiasDetStats", "Per-amplifier statistics and test results of one detector.", _PER_EXPOSURE
    )


class VerifyStatsFields(Config):
    """The statistics and tests of one detector (DMTN-101 defaults), shared by the verification tasks."""

    imageType = ChoiceField[str](
        doc="Calibration verified; selects the tests. Default: BIAS.",
        default="BIAS",
        allowed={
            "BIAS": "MEAN, NOISE, CR_NOISE",
            "DARK": "MEAN, NOISE, CR_NOISE",
            "FLAT": "NOISE <= sqrt(MEAN), SCATTER",
        },
    )
    clip = clip_field(5.0, "the statistics")
    nIter = iterations_field()
    noiseTolerance = Field[float](
        doc="NOISE passes if |NOISE - read noise| / read noise <= this. Default: 0.05.", default=0.05
    )
    crNoiseTolerance = Field[float](
        doc="CR_NOISE passes if |NOISE - CR_NOISE| / CR_NOISE <= this. Default: 0.05.", default=0.05
    )
    scatterTolerance = Field[float](
        doc="Flat SCATTER passes if the amp means' scatter / mean <= this. Default: 0.05.", default=0.05
    )
    crThreshold = cosmic_ray_threshold_field(5.0, "the background (for CR_NOISE; sigma: NOISE)")
    crGrow = cosmic_ray_grow_field()
    readNoiseSource = ChoiceField[str](
        doc="Read noise of the NOISE test. Default: ISR.",
        default="ISR",
        allowed={
            "ISR": "The nominal read noise ISR records (LSST ISR READNOISE <amp>), else the camera "
            "description's.",
            "OVERSCAN": "The serial-overscan noise ISR measured in this exposure "
            "(LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>); noisier, and biased low by the "
            "per-row overscan subtraction.",
        },
    )
    maskPlanes = mask_planes_field(["BAD", "SAT"])


class CpVerifyStatsConfig(
    PipelineTaskConfig, VerifyStatsFields, pipelineConnections=CpVerifyStatsConnections
):
    """Configuration of `CpVerifyStatsTask` (DMTN-101 defaults)."""

    numThreads = threads_field()


def detector_statistics(
    config: VerifyStatsFields,
    image: np.ndarray,
    excluded: np.ndarray,
    metadata: Mapping[str, Any],
    geometry: DetectorGeometry | None = None,
    n_threads: int = 1,
) -> dict[str, Any]:
    """Compute the DetStats of one processed exposure of one detector.

    Parameters
    ----------
    config
        Statistics and tests.
    image
        The residual (``verify<Type>Proc`` pixels).
    excluded
        Pixels not measured (the configured mask planes).
    metadata
        The ISR metadata (layout, read noise, units, exposure).
    geometry
        The layout, if already known (else read from ``metadata``).
    n_threads
        Amplifiers measured at once (the result does not depend on it).

    Returns
    -------
    stats
        ``{AMP, METADATA, VERIFY, SUCCESS}`` (flats add ``DET``).

    Raises
    ------
    KeyError
        If the metadata lacks the ISR keys (layout, read noise).
    """
    geometry = geometry or detector_geometry(metadata)
    read_noise = None if config.imageType == "FLAT" else _read_noise(config, metadata, geometry.amp_names)
    verify_config = VerifyConfig(
        sigma=config.clip,
        iterations=config.nIter,
        noise_tolerance=config.noiseTolerance,
        cr_noise_tolerance=config.crNoiseTolerance,
        scatter_tolerance=config.scatterTolerance,
        cosmic_rays=CosmicRayConfig(threshold=config.crThreshold, grow=config.crGrow),
    )
    return verify_detector(
        image,
        geometry,
        config.imageType,
        read_noise,
        mask=excluded,
        metadata={
            "EXPOSURE": metadata.get(EXPOSURE_ID_KEY),
            "DETECTOR": metadata.get("DETECTOR"),
            "DET_NAME": metadata.get("DET_NAME"),
            "IMAGE_TYPE": config.imageType,
            "UNITS": metadata.get(UNITS_KEY),
            "READ_NOISE_SOURCE": config.readNoiseSource,
        },
        config=verify_config,
        n_threads=n_threads,
    )


def _read_noise(
    config: VerifyStatsFields, metadata: Mapping[str, Any], amps: tuple[str, ...]
) -> dict[str, float]:
    units = metadata.get(UNITS_KEY, "adu")
    values = {}
    for amp in amps:
        gain = float_metadata(metadata, gain_key(amp))
        if config.readNoiseSource == "OVERSCAN":
            electrons = float_metadata(metadata, overscan_residual_key(amp)) * gain
        elif read_noise_key(amp) in metadata:
            electrons = float_metadata(metadata, read_noise_key(amp))
        else:
            description = get_instrument_description(str(metadata["INSTRUME"]))
            electrons = float(description.detector(int(metadata["DETECTOR"])).read_noise[amp])
        values[amp] = electrons if units == "electron" else electrons / gain
    return values


class CpVerifyStatsTask(ProcessedImageTask):
    """Measure and test one processed exposure of one detector."""

    ConfigClass = CpVerifyStatsConfig
    _DefaultName = "cpVerifyStats"
    config: CpVerifyStatsConfig

    def run(self, inputExp: MaskedImage) -> Struct:
        """Compute the DetStats of one exposure and detector.

        Parameters
        ----------
        inputExp
            The ``verify<Type>Proc`` image.

        Returns
        -------
        result
            ``outputStats``: ``{AMP, METADATA, VERIFY, SUCCESS}`` (flats add
            ``DET``).

        Raises
        ------
        KeyError
            If the image lacks the ISR metadata (layout, read noise).
        """
        excluded = excluded_pixels(inputExp, self.config.maskPlanes)
        stats = detector_statistics(
            self.config,
            inputExp.image.array,
            excluded,
            inputExp.metadata,
            n_threads=resolve_threads(self.config.numThreads),
        )
        return Struct(outputStats=stats)


class CpVerifyIsrConnections(IsrTaskConnections, dimensions=_PER_EXPOSURE):
    """Connections of `CpVerifyIsrTask`: a raw (or its ISR output) in, DetStats out."""

    # Read only if the generation's ISR output cannot be reused.
    ccdExposure = cT.Input(
        name="raw",
        doc="Raw image of one detector.",
        storageClass="RawImage",
        dimensions=_PER_EXPOSURE,
        deferLoad=True,
    )
    isrExposure = cT.PrerequisiteInput(
        name="cpBiasProc",
        doc="The generation's ISR output of the same exposure, if the input collections hold one "
        "(doReuseIsr; optional).",
        storageClass=PROCESSED_IMAGE_STORAGE_CLASS,
        dimensions=_PER_EXPOSURE,
        deferLoad=True,
        minimum=0,
    )
    outputStats = dict_output(
        "verifyBiasDetStats", "Per-amplifier statistics and test results of one detector.", _PER_EXPOSURE
    )

    def __init__(self, *, config: CpVerifyIsrConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        if not config.doReuseIsr:
            del self.isrExposure
        if not config.doWriteResidual:
            del self.outputExposure


class CpVerifyIsrConfig(IsrTaskConfig, VerifyStatsFields, pipelineConnections=CpVerifyIsrConnections):
    """Configuration of `CpVerifyIsrTask`: ISR's fields, the statistics' fields and two of its own."""

    doReuseIsr = Field[bool](
        doc="Start from the generation's ISR output of the exposure (prerequisite isrExposure, e.g. "
        "cpBiasProc) when the input collections hold one made with the same overscan settings and no "
        "calibration applied; otherwise decode the raw. The pixels are the same. Default: False.",
        default=False,
    )
    doWriteResidual = Field[bool](
        doc="Also write the residual image (outputExposure, verify<Type>Proc), which the run report "
        "and the procedures show; False saves writing it (the statistics are measured in memory). "
        "Default: True.",
        default=True,
    )


class CpVerifyIsrTask(IsrTask):
    """ISR with the calibration under test and the DMTN-101 statistics, in one quantum."""

    ConfigClass = CpVerifyIsrConfig
    _DefaultName = "cpVerifyIsr"
    config: CpVerifyIsrConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the calibrations, process the exposure, measure it, write the DetStats.

        Parameters
        ----------
        butlerQC
            Butler access limited to this quantum.
        inputRefs, outputRefs
            The quantum's datasets.
        """
        inputs = self.prepare_inputs(butlerQC.get(inputRefs), inputRefs)
        butlerQC.put(self.run(**inputs), outputRefs)

    def run(
        self,
        ccdExposure: Any,
        bias: MaskedImage | CalibrationPlanes | None = None,
        dark: MaskedImage | CalibrationPlanes | None = None,
        flat: MaskedImage | CalibrationPlanes | None = None,
        defects: Table | None = None,
        isrExposure: Sequence[DeferredDatasetHandle] | DeferredDatasetHandle | None = None,
    ) -> Struct:
        """Process one exposure with the calibration under test and measure it.

        Parameters
        ----------
        ccdExposure
            The raw image, or a handle to it (read only if needed).
        bias, dark, flat, defects
            As for `~lsst.ts.calibscripts.cp.tasks.isr.IsrTask.run`.
        isrExposure
            Handle(s) of the generation's ISR output of the exposure, if
            any (``doReuseIsr``).

        Returns
        -------
        result
            ``outputStats``: the DetStats; ``outputExposure``: the residual
            (`lsst.images.MaskedImage`) if ``doWriteResidual``.
        """
        stage = self._reused_stage(isrExposure)
        if stage is None:
            raw = ccdExposure.get() if isinstance(ccdExposure, DeferredDatasetHandle) else ccdExposure
            stage = self.overscan_stage(raw)
        processed = self.calibration_stage(stage, bias, dark, flat, defects)
        planes = processed.planes()
        excluded = np.zeros(processed.image.shape, dtype=bool)
        for name in self.config.maskPlanes:
            if name in planes:
                excluded |= planes[name]
        stats = detector_statistics(
            self.config,
            processed.image,
            excluded,
            processed.metadata,
            stage.geometry,
            n_threads=resolve_threads(self.config.numThreads),
        )
        result = Struct(outputStats=stats)
        if self.config.doWriteResidual:
            result.outputExposure = processed.masked_image()
        return result

    def _reused_stage(
        self, isr_exposure: Sequence[DeferredDatasetHandle] | DeferredDatasetHandle | None
    ) -> OverscanStage | None:
        """Return the generation's overscan-corrected image, if it is what `overscan_stage` would make."""
        if not self.config.doReuseIsr or not isr_exposure:
            return None
        handle = isr_exposure if isinstance(isr_exposure, DeferredDatasetHandle) else isr_exposure[0]
        image_file = ImageFile.open(local_path(handle))
        if image_file is None:
            return None
        with image_file:
            metadata = dict(image_file.metadata)
            try:
                detector = get_instrument_description(str(metadata["INSTRUME"])).detector(
                    int(metadata["DETECTOR"])
                )
                geometry = detector_geometry(metadata)
            except (KeyError, ValueError):
                return None
            reusable = (
                metadata.get(APPLIED_KEY) == "overscan"
                and metadata.get(OVERSCAN_SETTINGS_KEY) == self.overscan_signature(detector)
                and metadata.get(UNITS_KEY) == "adu"
                and image_file.shape == geometry.assembled_shape
                and image_file.has_plane("mask")
            )
            if not reusable:
                _log.info("Not reusing %s: made with other ISR settings.", handle.ref)
                return None
            image = image_file.read_rows("image")
            sat_mask = (image_file.read_rows("mask") & image_file.mask_bits(["SAT"])) != 0
        _log.debug("Starting from %s instead of the raw.", handle.ref)
        return OverscanStage(image, sat_mask, metadata, geometry, detector, float(metadata["DARKTIME"]))


class CpVerifyExposureConnections(PipelineTaskConnections, dimensions=("instrument", "exposure")):
    """Connections of `CpVerifyExposureTask`."""

    inputStats = dict_input(
        "verifyBiasDetStats",
        "DetStats of every detector of the exposure.",
        ("instrument", "exposure", "detector"),
    )
    outputStats = dict_output(
        "verifyBiasExpStats", "Results of every detector of one exposure.", ("instrument", "exposure")
    )


class CpVerifyExposureConfig(PipelineTaskConfig, pipelineConnections=CpVerifyExposureConnections):
    """Configuration of `CpVerifyExposureTask`."""

    doExposureScatter = Field[bool](
        doc="Test the scatter of the detector means of the exposure (flats). Default: False.",
        default=False,
    )
    exposureScatterTolerance = Field[float](
        doc="That test passes if scatter / mean <= this. Default: 0.05.", default=0.05
    )


class CpVerifyExposureTask(CalibPipelineTask):
    """Merge the DetStats of one exposure into its ExpStats."""

    ConfigClass = CpVerifyExposureConfig
    _DefaultName = "cpVerifyExposure"
    config: CpVerifyExposureConfig

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Key each DetStats by its detector's full name, in name order."""
        by_detector = {}
        for ref, stats in zip(inputRefs.inputStats, inputs["inputStats"], strict=True):
            name = stats.get("METADATA", {}).get("DET_NAME") or ref.dataId.records["detector"].full_name
            by_detector[str(name)] = stats
        return {"inputStats": dict(sorted(by_detector.items()))}

    def run(self, inputStats: Mapping[str, Mapping[str, Any]]) -> Struct:
        """Merge detectors.

        Parameters
        ----------
        inputStats
            Detector full name -> DetStats.

        Returns
        -------
        result
            ``outputStats``: ``{<detector>: {SUCCESS, FAILURES}, SUCCESS}``.
        """
        config = self.config
        merged = merge_detector_stats(
            inputStats,
            exposure_scatter=config.doExposureScatter,
            config=VerifyConfig(exposure_scatter_tolerance=config.exposureScatterTolerance),
        )
        return Struct(outputStats=merged)


class CpVerifyRunConnections(PipelineTaskConnections, dimensions=("instrument",)):
    """Connections of `CpVerifyRunTask`."""

    inputStats = dict_input(
        "verifyBiasExpStats", "ExpStats of every exposure of the run.", ("instrument", "exposure")
    )
    outputStats = dict_output("verifyBiasStats", "Results of every exposure of the run.", ("instrument",))


class CpVerifyRunConfig(PipelineTaskConfig, pipelineConnections=CpVerifyRunConnections):
    """Configuration of `CpVerifyRunTask` (no options)."""


class CpVerifyRunTask(CalibPipelineTask):
    """Merge the ExpStats of a run into the run's Stats."""

    ConfigClass = CpVerifyRunConfig
    _DefaultName = "cpVerifyRun"
    config: CpVerifyRunConfig

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Key each ExpStats by its exposure id, in exposure order."""
        by_exposure = {
            exposure_of(ref): stats
            for ref, stats in zip(inputRefs.inputStats, inputs["inputStats"], strict=True)
        }
        return {"inputStats": dict(sorted(by_exposure.items()))}

    def run(self, inputStats: Mapping[int | str, Mapping[str, Any]]) -> Struct:
        """Merge exposures.

        Parameters
        ----------
        inputStats
            Exposure id -> ExpStats.

        Returns
        -------
        result
            ``outputStats``: ``{<exposure id>: {SUCCESS, FAILURES:
            ["<detector> <amp> <test>", ...]}, SUCCESS}``.
        """
        return Struct(outputStats=merge_exposure_stats(inputStats))
