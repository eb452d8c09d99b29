"""Calibration verification (DMTN-101, as cp_verify does it).

Each input exposure is processed by ISR with the calibration under test
(label ``verify<Type>Isr``, output ``verify<Type>Proc``: the residual of a
bias or dark, the flattened image of a flat, in ADU). Then:

* `CpVerifyStatsTask` (``verify<Type>Det``, per exposure and detector)
  measures ``MEAN``, ``NOISE`` and ``CR_NOISE`` of every amplifier and runs
  the DMTN-101 tests (`lsst.ts.calibscripts.cp.algorithms.verification`), writing
  ``verify<Type>DetStats``;
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
    "CpVerifyRunConfig",
    "CpVerifyRunConnections",
    "CpVerifyRunTask",
    "CpVerifyStatsConfig",
    "CpVerifyStatsConnections",
    "CpVerifyStatsTask",
]

from collections.abc import Mapping
from typing import Any

from lsst.images import MaskedImage
from lsst.pex.config import ChoiceField, Field
from lsst.pipe.base import InputQuantizedConnection, PipelineTaskConfig, PipelineTaskConnections, Struct

from ..algorithms.cosmic_rays import CosmicRayConfig
from ..algorithms.overscan import overscan_residual_key
from ..algorithms.verification import (
    VerifyConfig,
    merge_detector_stats,
    merge_exposure_stats,
    verify_detector,
)
from ..camera.description import get_instrument_description
from .base import (
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


class CpVerifyStatsConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """Connections of `CpVerifyStatsTask`."""

    # Read without the variance, which no test uses.
    inputExp = processed_exposure("verifyBiasProc", "Exposure processed with the calibration under test.")
    outputStats = dict_output(
        "verifyBiasDetStats",
        "Per-amplifier statistics and test results of one detector.",
        ("instrument", "exposure", "detector"),
    )


class CpVerifyStatsConfig(PipelineTaskConfig, pipelineConnections=CpVerifyStatsConnections):
    """Configuration of `CpVerifyStatsTask` (DMTN-101 defaults)."""

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
        config = self.config
        metadata = inputExp.metadata
        geometry = detector_geometry(metadata)
        mask = excluded_pixels(inputExp, config.maskPlanes)
        read_noise = None if config.imageType == "FLAT" else self._read_noise(metadata, geometry.amp_names)
        verify_config = VerifyConfig(
            sigma=config.clip,
            iterations=config.nIter,
            noise_tolerance=config.noiseTolerance,
            cr_noise_tolerance=config.crNoiseTolerance,
            scatter_tolerance=config.scatterTolerance,
            cosmic_rays=CosmicRayConfig(threshold=config.crThreshold, grow=config.crGrow),
        )
        stats = verify_detector(
            inputExp.image.array,
            geometry,
            config.imageType,
            read_noise,
            mask=mask,
            metadata={
                "EXPOSURE": metadata.get(EXPOSURE_ID_KEY),
                "DETECTOR": metadata.get("DETECTOR"),
                "DET_NAME": metadata.get("DET_NAME"),
                "IMAGE_TYPE": config.imageType,
                "UNITS": metadata.get(UNITS_KEY),
                "READ_NOISE_SOURCE": config.readNoiseSource,
            },
            config=verify_config,
        )
        return Struct(outputStats=stats)

    def _read_noise(self, metadata: Mapping[str, Any], amps: tuple[str, ...]) -> dict[str, float]:
        units = metadata.get(UNITS_KEY, "adu")
        values = {}
        for amp in amps:
            gain = float_metadata(metadata, gain_key(amp))
            if self.config.readNoiseSource == "OVERSCAN":
                electrons = float_metadata(metadata, overscan_residual_key(amp)) * gain
            elif read_noise_key(amp) in metadata:
                electrons = float_metadata(metadata, read_noise_key(amp))
            else:
                description = get_instrument_description(str(metadata["INSTRUME"]))
                electrons = float(description.detector(int(metadata["DETECTOR"])).read_noise[amp])
            values[amp] = electrons if units == "electron" else electrons / gain
        return values


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
