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

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from lsst.images import MaskedImage
from lsst.pex.config import ChoiceField, Field, ListField
from lsst.pipe.base import (
    InputQuantizedConnection,
    OutputQuantizedConnection,
    PipelineTask,
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
from ..camera.description import get_instrument_description
from .image_conventions import (
    EXPOSURE_ID_KEY,
    UNITS_KEY,
    detector_geometry,
    float_metadata,
    gain_key,
    read_noise_key,
    read_without_variance,
)


class CpVerifyStatsConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """Connections of `CpVerifyStatsTask`."""

    inputExp = cT.Input(
        name="verifyBiasProc",
        doc="Exposure processed with the calibration under test.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
        # Read by runQuantum without the variance, which no test uses.
        deferLoad=True,
    )
    outputStats = cT.Output(
        name="verifyBiasDetStats",
        doc="Per-amplifier statistics and test results of one detector.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
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
    clip = Field[float](
        doc="Clip of the statistics, sigma. Default: 5.0.", default=5.0, check=lambda v: v > 0
    )
    nIter = Field[int](doc="Clip iterations. Default: 3.", default=3, check=lambda v: v >= 1)
    noiseTolerance = Field[float](
        doc="NOISE passes if |NOISE - read noise| / read noise <= this. Default: 0.05.", default=0.05
    )
    crNoiseTolerance = Field[float](
        doc="CR_NOISE passes if |NOISE - CR_NOISE| / CR_NOISE <= this. Default: 0.05.", default=0.05
    )
    scatterTolerance = Field[float](
        doc="Flat SCATTER passes if the amp means' scatter / mean <= this. Default: 0.05.", default=0.05
    )
    crThreshold = Field[float](
        doc="Cosmic rays for CR_NOISE: this many NOISE above the background. Default: 5.0.", default=5.0
    )
    crGrow = Field[int](
        doc="Cosmic-ray growth radius, pixels. Default: 2.", default=2, check=lambda v: v >= 0
    )
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
    maskPlanes = ListField[str](
        doc="Pixels with these mask planes are ignored. Default: ['BAD', 'SAT'].", default=["BAD", "SAT"]
    )


class CpVerifyStatsTask(PipelineTask):
    """Measure and test one processed exposure of one detector."""

    ConfigClass = CpVerifyStatsConfig
    _DefaultName = "cpVerifyStats"
    config: CpVerifyStatsConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the processed exposure without its variance, and run.

        Parameters
        ----------
        butlerQC
            Butler access limited to this quantum.
        inputRefs, outputRefs
            The quantum's datasets.
        """
        handle = butlerQC.get(inputRefs.inputExp)
        butlerQC.put(self.run(read_without_variance(handle)), outputRefs)

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
        names = [plane for plane in config.maskPlanes if plane in inputExp.mask.schema.names]
        mask = np.zeros(inputExp.image.array.shape, dtype=bool)
        for name in names:
            mask |= inputExp.mask.get(name)
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

    inputStats = cT.Input(
        name="verifyBiasDetStats",
        doc="DetStats of every detector of the exposure.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyBiasExpStats",
        doc="Results of every detector of one exposure.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure"),
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


class CpVerifyExposureTask(PipelineTask):
    """Merge the DetStats of one exposure into its ExpStats."""

    ConfigClass = CpVerifyExposureConfig
    _DefaultName = "cpVerifyExposure"
    config: CpVerifyExposureConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Key each DetStats by its detector's full name, then run."""
        by_detector = {}
        for ref in inputRefs.inputStats:
            stats = butlerQC.get(ref)
            name = stats.get("METADATA", {}).get("DET_NAME") or ref.dataId.records["detector"].full_name
            by_detector[str(name)] = stats
        butlerQC.put(self.run(dict(sorted(by_detector.items()))), outputRefs)

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

    inputStats = cT.Input(
        name="verifyBiasExpStats",
        doc="ExpStats of every exposure of the run.",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "exposure"),
        multiple=True,
    )
    outputStats = cT.Output(
        name="verifyBiasStats",
        doc="Results of every exposure of the run.",
        storageClass="StructuredDataDict",
        dimensions=("instrument",),
    )


class CpVerifyRunConfig(PipelineTaskConfig, pipelineConnections=CpVerifyRunConnections):
    """Configuration of `CpVerifyRunTask` (no options)."""


class CpVerifyRunTask(PipelineTask):
    """Merge the ExpStats of a run into the run's Stats."""

    ConfigClass = CpVerifyRunConfig
    _DefaultName = "cpVerifyRun"
    config: CpVerifyRunConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Key each ExpStats by its exposure id, then run."""
        by_exposure = {int(ref.dataId["exposure"]): butlerQC.get(ref) for ref in inputRefs.inputStats}
        butlerQC.put(self.run(dict(sorted(by_exposure.items()))), outputRefs)

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
