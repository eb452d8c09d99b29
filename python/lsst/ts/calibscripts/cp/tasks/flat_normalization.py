"""Flat-field normalization: one factor per exposure and detector.

A combined flat must come out normalised to 1, but how each input flat is
scaled decides what "1" means:

* single-detector cameras (LATISS): each input is divided by its own clipped
  mean (``scaleMode=DETECTOR``);
* several detectors (LSSTComCam): each exposure is divided by one factor,
  the mean over its detectors of their clipped means (``scaleMode=EXPOSURE``),
  so the relative response of the detectors survives in their flats.

A combination runs per detector, but the ComCam factor needs every detector
of an exposure. Hence two steps before `CalibCombineByFilterTask
<lsst.ts.calibscripts.cp.tasks.combine.CalibCombineByFilterTask>`:
`CpFlatMeasureTask` (label ``cpFlatMeasure``, per exposure and detector)
measures clipped means into ``cpFlatStatistics``; `CpFlatNormalizationTask`
(``cpFlatNorm``, per physical filter, sees all of them) writes the factor of
every (exposure, detector) into ``cpFlatNormScales``.
"""

from __future__ import annotations

__all__ = [
    "CpFlatMeasureConfig",
    "CpFlatMeasureConnections",
    "CpFlatMeasureTask",
    "CpFlatNormalizationConfig",
    "CpFlatNormalizationConnections",
    "CpFlatNormalizationTask",
]

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from lsst.images import MaskedImage
from lsst.pex.config import ChoiceField
from lsst.pipe.base import PipelineTask, PipelineTaskConfig, PipelineTaskConnections, Struct

from ..algorithms.statistics import sigma_clipped_stats
from .base import (
    ProcessedImageTask,
    clip_field,
    dict_input,
    dict_output,
    iterations_field,
    mask_planes_field,
    processed_exposure,
)
from .image_conventions import EXPOSURE_ID_KEY, detector_geometry, excluded_pixels


class CpFlatMeasureConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """Connections of `CpFlatMeasureTask`."""

    # Read without the variance, which is not used.
    inputExp = processed_exposure("cpFlatProc", "ISR-processed flat.")
    outputStats = dict_output(
        "cpFlatStatistics",
        "Clipped mean of the detector and of each amplifier.",
        ("instrument", "exposure", "detector"),
    )


class CpFlatMeasureConfig(PipelineTaskConfig, pipelineConnections=CpFlatMeasureConnections):
    """Configuration of `CpFlatMeasureTask`."""

    clip = clip_field(3.0, "the flat's pixels")
    nIter = iterations_field()
    maskPlanes = mask_planes_field(["BAD", "SAT"])


class CpFlatMeasureTask(ProcessedImageTask):
    """Measure the clipped mean of one processed flat."""

    ConfigClass = CpFlatMeasureConfig
    _DefaultName = "cpFlatMeasure"
    config: CpFlatMeasureConfig

    def run(self, inputExp: MaskedImage) -> Struct:
        """Measure the detector and per-amplifier clipped means.

        Parameters
        ----------
        inputExp
            ISR-processed flat.

        Returns
        -------
        result
            ``outputStats``: ``{EXPOSURE, DETECTOR, MEAN, STDEV, NPIX,
            AMP: {amp: {MEAN, STDEV, NPIX}}}``.
        """
        config = self.config
        image = inputExp.image.array
        excluded = excluded_pixels(inputExp, config.maskPlanes)
        whole = sigma_clipped_stats(image, sigma=config.clip, iterations=config.nIter, mask=excluded)
        amps = {}
        for amp in detector_geometry(inputExp.metadata):
            region = amp.detector_slice
            stats = sigma_clipped_stats(
                image[region], sigma=config.clip, iterations=config.nIter, mask=excluded[region]
            )
            amps[amp.name] = {"MEAN": stats.mean, "STDEV": stats.stdev, "NPIX": stats.n}
        metadata = inputExp.metadata
        return Struct(
            outputStats={
                "EXPOSURE": int(metadata[EXPOSURE_ID_KEY]),  # type: ignore[arg-type]
                "DETECTOR": int(metadata["DETECTOR"]),  # type: ignore[arg-type]
                "MEAN": whole.mean,
                "STDEV": whole.stdev,
                "NPIX": whole.n,
                "AMP": amps,
            }
        )


class CpFlatNormalizationConnections(PipelineTaskConnections, dimensions=("instrument", "physical_filter")):
    """Connections of `CpFlatNormalizationTask`."""

    inputStats = dict_input(
        "cpFlatStatistics",
        "Clipped means of every flat exposure and detector.",
        ("instrument", "exposure", "detector"),
    )
    outputScales = dict_output(
        "cpFlatNormScales",
        "Normalization factor of every (exposure, detector).",
        ("instrument", "physical_filter"),
    )


class CpFlatNormalizationConfig(PipelineTaskConfig, pipelineConnections=CpFlatNormalizationConnections):
    """Configuration of `CpFlatNormalizationTask`."""

    scaleMode = ChoiceField[str](
        doc="How input flats are normalised. Default: DETECTOR (LATISS); the LSSTComCam pipeline "
        "sets EXPOSURE.",
        default="DETECTOR",
        allowed={
            "DETECTOR": "Each (exposure, detector) by its own clipped mean.",
            "EXPOSURE": "Each exposure by the mean of its detectors' clipped means; keeps the "
            "relative response of the detectors.",
        },
    )


class CpFlatNormalizationTask(PipelineTask):
    """Choose the normalization factor of every input flat."""

    ConfigClass = CpFlatNormalizationConfig
    _DefaultName = "cpFlatNorm"
    config: CpFlatNormalizationConfig

    def run(self, inputStats: Sequence[Mapping[str, Any]]) -> Struct:
        """Compute the factors.

        Parameters
        ----------
        inputStats
            ``cpFlatStatistics`` of every exposure and detector.

        Returns
        -------
        result
            ``outputScales``: ``{"scaleMode": mode, "scales": {exposure:
            {detector: factor}}, "exposureScales": {exposure: factor}}``
            (``exposureScales`` only in ``EXPOSURE`` mode).

        Raises
        ------
        ValueError
            If an exposure has no detector with a positive clipped mean.
        """
        by_exposure: dict[int, dict[int, float]] = {}
        for stats in inputStats:
            by_exposure.setdefault(int(stats["EXPOSURE"]), {})[int(stats["DETECTOR"])] = float(stats["MEAN"])
        scales: dict[int, dict[int, float]] = {}
        exposure_scales: dict[int, float] = {}
        for exposure, means in sorted(by_exposure.items()):
            usable = [m for m in means.values() if math.isfinite(m) and m > 0]
            if not usable:
                raise ValueError(f"Flat exposure {exposure} has no detector with a positive clipped mean.")
            if self.config.scaleMode == "EXPOSURE":
                factor = float(np.mean(usable))
                exposure_scales[exposure] = factor
                scales[exposure] = dict.fromkeys(means, factor)
            else:
                scales[exposure] = means
        output: dict[str, Any] = {"scaleMode": self.config.scaleMode, "scales": scales}
        if exposure_scales:
            output["exposureScales"] = exposure_scales
        return Struct(outputScales=output)
