"""Defects from the combined darks, flats (and biases) of a detector.

The ``cpDefects`` pipeline runs on the exposures the script took (darks and
flats, optionally biases): ``isr`` processes each (overscan, bias, gains),
then `DefectsFindTask` (label ``cpDefectsFind``, one quantum per detector)
combines them by image type into the bootstrap products defects are found
in, exactly as the calibrations themselves are made:

* darks: divided by their dark time, cosmic rays masked, clipped mean
  (electron/s); pixels above ``darkCurrentThreshold`` (3 e-/s) are hot;
* flats: each divided by its clipped mean, clipped mean; pixels below
  ``fracThresholdFlat`` (0.9) of their amplifier's clipped mean are cold;
* biases (if any; run ``isr`` with ``doBias=False`` so the bias structure
  stays): clipped mean; pixels more than ``biasThreshold`` (1000 ADU) from
  their amplifier's clipped mean are bad.

Columns with at least ``badPixelsToFillColumnThreshold`` bad pixels are
filled, the three types merged (`lsst.ts.calibscripts.cp.algorithms.defects.find_defects`)
and written as the ``defects`` calibration: a table of boxes ``x0, y0,
width, height`` in assembled-detector pixels.

Why not read the certified bias, dark and flat instead? A per-detector
quantum has no time, so it cannot choose among validity ranges of a
CALIBRATION collection; the exposures of the run can, and they are what the
operator asked defects to be made from.
"""

from __future__ import annotations

__all__ = ["DefectsFindConfig", "DefectsFindConnections", "DefectsFindTask"]

import logging
from collections.abc import Sequence

import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.pex.config import Field
from lsst.pipe.base import NoWorkFound, PipelineTaskConfig, PipelineTaskConnections, Struct

from ..algorithms import combine as combine_algorithms
from ..algorithms.cosmic_rays import CosmicRayConfig
from ..algorithms.defects import DefectConfig, find_defects
from ..algorithms.statistics import sigma_clipped_stats
from ..butler.dataset_types import DEFECTS
from .base import (
    ExposureHandlesTask,
    calibration_output,
    clip_field,
    cosmic_ray_grow_field,
    cosmic_ray_threshold_field,
    iterations_field,
    mask_planes_field,
    processed_exposure,
    rows_per_read_field,
)
from .exposure_stack import ExposureStack, combine_stack
from .image_conventions import UNITS_KEY, detector_geometry

_log = logging.getLogger(__name__)


class DefectsFindConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `DefectsFindTask`."""

    inputExpHandles = processed_exposure(
        "cpDefectsProc",
        "ISR-processed darks and flats (and biases) of the detector, in electrons.",
        multiple=True,
    )
    outputDefects = calibration_output(DEFECTS, "Bad-pixel boxes of the detector.")


class DefectsFindConfig(PipelineTaskConfig, pipelineConnections=DefectsFindConnections):
    """Configuration of `DefectsFindTask` (cp_pipe defaults)."""

    darkCurrentThreshold = Field[float](
        doc="Dark current above which a pixel is hot, electron/s. Default: 3.0.", default=3.0
    )
    fracThresholdFlat = Field[float](
        doc="Flat pixels below this fraction of their amplifier's clipped mean are cold. Default: 0.9.",
        default=0.9,
    )
    flatBrightSigma = Field[float](
        doc="If set, flat pixels this many clipped sigma above the amplifier mean are bad too "
        "(cp_pipe uses 4.8). Default: None (off).",
        default=None,
        optional=True,
    )
    biasThreshold = Field[float](
        doc="Bias pixels further than this from their amplifier's clipped mean are bad, ADU. Default: 1000.",
        default=1000.0,
    )
    badPixelsToFillColumnThreshold = Field[int](
        doc="An amplifier column with at least this many bad pixels is filled between its lowest and "
        "highest bad pixel. Default: 50.",
        default=50,
    )
    goodPixelsToSplitColumn = Field[int](
        doc="A run of at least this many good pixels splits a filled column. Default: 30.", default=30
    )
    ampEdgeWidth = Field[int](
        doc="Pixels along every amplifier edge marked as defects (0: none). Default: 0.", default=0
    )
    clip = clip_field(3.0, "the combinations and statistics")
    nIter = iterations_field()
    maskPlanesToExclude = mask_planes_field(["SAT"], "not combined")
    cosmicRayThreshold = cosmic_ray_threshold_field(5.0, "the first combination of the darks")
    cosmicRayGrow = cosmic_ray_grow_field()
    rowsPerRead = rows_per_read_field()


class DefectsFindTask(ExposureHandlesTask):
    """Find the defects of one detector in its combined darks, flats and biases."""

    ConfigClass = DefectsFindConfig
    _DefaultName = "cpDefectsFind"
    config: DefectsFindConfig

    def run(self, inputExpHandles: Sequence[DeferredDatasetHandle]) -> Struct:
        """Combine the exposures by type and find the defects.

        Parameters
        ----------
        inputExpHandles
            Handles of the ISR-processed exposures of one detector.

        Returns
        -------
        result
            ``outputDefects``: an `astropy.table.Table` of boxes (``x0``,
            ``y0``, ``width``, ``height``).

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            If there is no dark, flat or bias among the inputs.
        ValueError
            If darks or flats are not in electrons.
        """
        config = self.config
        stack = ExposureStack(inputExpHandles, config.rowsPerRead)
        by_type: dict[str, list[DeferredDatasetHandle]] = {}
        for index, handle in enumerate(inputExpHandles):
            by_type.setdefault(str(stack.metadata(index).get("IMGTYPE", "")).upper(), []).append(handle)
        geometry = detector_geometry(stack.metadata(0))
        images: dict[str, np.ndarray] = {}
        if "DARK" in by_type:
            images["dark"] = self._combine_darks(by_type["DARK"])
        if "FLAT" in by_type:
            images["flat"] = self._combine_flats(by_type["FLAT"])
        if "BIAS" in by_type:
            images["bias"] = self._combine(ExposureStack(by_type["BIAS"], config.rowsPerRead), None)
        if not images:
            raise NoWorkFound(f"No dark, flat or bias among the inputs (types: {sorted(by_type)}).")
        result = find_defects(
            geometry,
            bias=images.get("bias"),
            dark=images.get("dark"),
            flat=images.get("flat"),
            config=DefectConfig(
                dark_hot_threshold=config.darkCurrentThreshold,
                flat_cold_fraction=config.fracThresholdFlat,
                flat_bright_sigma=config.flatBrightSigma,
                bias_threshold=config.biasThreshold,
                column_min_bad=config.badPixelsToFillColumnThreshold,
                column_min_gap=config.goodPixelsToSplitColumn,
                amp_edge_width=config.ampEdgeWidth,
                sigma=config.clip,
                iterations=config.nIter,
            ),
        )
        _log.info(
            "Found %d defect pixels in %d boxes (%s) from %s.",
            int(result.mask.sum()),
            len(result.boxes),
            ", ".join(f"{name}: {int(mask.sum())}" for name, mask in result.by_type.items()),
            ", ".join(f"{len(v)} {k.lower()}" for k, v in by_type.items()),
        )
        return Struct(outputDefects=result.table())

    def _combine(
        self,
        stack: ExposureStack,
        scales: Sequence[float] | None,
        cosmic_rays: CosmicRayConfig | None = None,
    ) -> np.ndarray:
        config = self.config
        result = combine_stack(
            stack,
            scales,
            exclude_planes=list(config.maskPlanesToExclude),
            config=combine_algorithms.CombineConfig(sigma=config.clip, iterations=config.nIter),
            cosmic_rays=cosmic_rays,
        )
        return result.image

    def _check_electrons(self, stack: ExposureStack, kind: str) -> None:
        for index in range(stack.n_inputs):
            units = stack.metadata(index).get(UNITS_KEY)
            if units != "electron":
                raise ValueError(
                    f"{kind} {stack.exposure_id(index)} is in {units!r}; defects are found in electrons "
                    "(run isr with doApplyGains=True)."
                )

    def _combine_darks(self, handles: list[DeferredDatasetHandle]) -> np.ndarray:
        config = self.config
        stack = ExposureStack(handles, config.rowsPerRead)
        self._check_electrons(stack, "Dark")
        dark_times = [float(stack.metadata(i)["DARKTIME"]) for i in range(stack.n_inputs)]
        if not all(t > 0 for t in dark_times):
            raise ValueError(f"Every dark needs a dark time > 0; got {dark_times}.")
        cosmic_rays = CosmicRayConfig(threshold=config.cosmicRayThreshold, grow=config.cosmicRayGrow)
        return self._combine(stack, dark_times, cosmic_rays)

    def _combine_flats(self, handles: list[DeferredDatasetHandle]) -> np.ndarray:
        config = self.config
        stack = ExposureStack(handles, config.rowsPerRead)
        self._check_electrons(stack, "Flat")
        # One detector at a time: each flat is normalised by its own clipped
        # mean (relative detector response does not matter for defects).
        scales = []
        for handle in handles:
            image = handle.get(component="image").array
            scales.append(sigma_clipped_stats(image, sigma=config.clip, iterations=config.nIter).mean)
        return self._combine(stack, scales)
