"""Combine ISR-processed exposures into a bias, dark or flat.

`CalibCombineTask` (labels ``cpBiasCombine``, ``cpDarkCombine``) makes one
calibration per detector; `CalibCombineByFilterTask` (``cpFlatCombine``) one
per detector and physical filter. Per pixel, the inputs are combined with the
clipped mean of `lsst.ts.calibscripts.cp.algorithms.combine` (``MEANCLIP``, 3 sigma, 3
iterations by default) after scaling:

* bias: no scaling (ADU);
* dark: each input divided by its dark time (electron/s), with cosmic rays
  found in each input, grown, and excluded;
* flat: each input divided by the factor `CpFlatNormalizationTask
  <lsst.ts.calibscripts.cp.tasks.flat_normalization.CpFlatNormalizationTask>`
  chose for it (its own clipped mean for LATISS, one factor per exposure for
  ComCam), so the result is normalised to 1.

Inputs are read in blocks of rows through Butler cut-outs, so memory holds
one block of every input (not the whole stack) however large the detector.
Pixels where no input survives are NaN and flagged ``BAD``.

The output metadata lists the inputs (``LSST CALIB INPUT <i> EXPID``,
``DATE``, ``EXPTIME``, ``DARKTIME``, ``SCALE``), their number, the units,
and the percentiles (0, 5, 16, 50, 84, 95, 100) of each amplifier's pixels
(``LSST CALIB PERCENTILE <p> <amp>``).
"""

from __future__ import annotations

__all__ = [
    "CalibCombineByFilterConfig",
    "CalibCombineByFilterConnections",
    "CalibCombineByFilterTask",
    "CalibCombineConfig",
    "CalibCombineConnections",
    "CalibCombineTask",
]

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Image, Mask, MaskedImage
from lsst.pex.config import ChoiceField, Field, ListField
from lsst.pipe.base import NoWorkFound, PipelineTaskConfig, PipelineTaskConnections, Struct

from ..algorithms import combine as combine_algorithms
from ..algorithms.cosmic_rays import CosmicRayConfig
from ..algorithms.statistics import DEFAULT_PERCENTILES, percentiles
from ..butler.dataset_types import BIAS, FLAT
from .base import (
    ExposureHandlesTask,
    calibration_output,
    clip_field,
    cosmic_ray_grow_field,
    cosmic_ray_threshold_field,
    dict_input,
    iterations_field,
    mask_planes_field,
    processed_exposure,
    resolve_threads,
    rows_per_read_field,
    threads_field,
)
from .exposure_stack import ExposureStack, combine_stack
from .image_conventions import (
    CALIB_TYPE_KEY,
    CALIB_UNITS_KEY,
    MASK_SCHEMA,
    UNITS_KEY,
    calib_input_key,
    calib_percentile_key,
    copy_layout,
    detector_geometry,
)

_log = logging.getLogger(__name__)

_UNITS = {"bias": "adu", "dark": "electron/s", "flat": "dimensionless"}
_INPUT_UNITS = {"bias": "adu", "dark": "electron"}


class CalibCombineConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `CalibCombineTask`: all exposures of a detector in."""

    inputExpHandles = processed_exposure(
        "cpInputs", "ISR-processed exposures to combine (cpBiasProc, cpDarkProc...).", multiple=True
    )
    outputData = calibration_output(BIAS, "Combined calibration (bias or dark).")


class CalibCombineConfig(PipelineTaskConfig, pipelineConnections=CalibCombineConnections):
    """Configuration of `CalibCombineTask`."""

    calibrationType = ChoiceField[str](
        doc="Calibration being made; sets the units recorded and checked. Default: bias.",
        default="bias",
        allowed={"bias": "ADU, no scaling", "dark": "electron/s", "flat": "dimensionless"},
    )
    exposureScaling = ChoiceField[str](
        doc="How each input is scaled before combining. Default: Unity.",
        default="Unity",
        allowed={
            "Unity": "No scaling (bias).",
            "DarkTime": "Divide by the exposure's dark time (dark).",
            "InputList": "Divide by the factor given in the inputScales dataset (flat).",
        },
    )
    combine = ChoiceField[str](
        doc="Per-pixel statistic. Default: MEANCLIP.",
        default="MEANCLIP",
        allowed={"MEANCLIP": "Iteratively sigma-clipped mean."},
    )
    clip = clip_field(3.0, "the per-pixel stack")
    nIter = iterations_field()
    firstCentre = ChoiceField[str](
        doc="Window of the first clipping iteration. Default: median (as afw MEANCLIP).",
        default="median",
        allowed={"median": "Median and 0.7413 IQR.", "mean": "Plain mean and standard deviation."},
    )
    maskPlanesToExclude = mask_planes_field(["SAT"], "not combined")
    doCosmicRayMask = Field[bool](
        doc="Find cosmic rays in each input and exclude them (darks). Default: False.",
        default=False,
    )
    cosmicRayThreshold = cosmic_ray_threshold_field(5.0, "the first combination")
    cosmicRayGrow = cosmic_ray_grow_field()
    rowsPerRead = rows_per_read_field()
    numThreads = threads_field()
    percentiles = ListField[float](
        doc="Percentiles of each amplifier's pixels recorded in the output metadata. "
        "Default: [0, 5, 16, 50, 84, 95, 100].",
        default=list(DEFAULT_PERCENTILES),
    )

    def validate(self) -> None:
        """Check that the scaling suits the calibration type.

        Raises
        ------
        ValueError
            If a dark is not scaled by dark time, or a flat not by the
            normalization factors.
        """
        super().validate()
        expected = {"bias": "Unity", "dark": "DarkTime", "flat": "InputList"}[self.calibrationType]
        if self.exposureScaling != expected:
            raise ValueError(
                f"A {self.calibrationType} needs exposureScaling={expected!r}, not {self.exposureScaling!r}."
            )


class CalibCombineTask(ExposureHandlesTask):
    """Combine the processed exposures of one detector into a calibration."""

    ConfigClass = CalibCombineConfig
    _DefaultName = "cpCombine"
    config: CalibCombineConfig

    def run(
        self,
        inputExpHandles: Sequence[DeferredDatasetHandle],
        inputScales: Mapping[str, Any] | None = None,
    ) -> Struct:
        """Combine the inputs.

        Parameters
        ----------
        inputExpHandles
            Handles of the ISR-processed exposures of one detector.
        inputScales
            ``cpFlatNormScales`` content (flats only): ``{"scales":
            {exposure: {detector: factor}}}``.

        Returns
        -------
        result
            ``outputData``: the combined `lsst.images.MaskedImage`.

        Raises
        ------
        ValueError
            If there are no inputs, they differ in shape or are in the wrong
            units, or a scale is missing or not positive.
        """
        if not inputExpHandles:
            raise NoWorkFound("No input exposures to combine.")
        config = self.config
        loader = ExposureStack(inputExpHandles, config.rowsPerRead)
        first = loader.metadata(0)
        calibration_type = config.calibrationType
        expected_units = _INPUT_UNITS.get(calibration_type)
        for index in range(loader.n_inputs):
            units = loader.metadata(index).get(UNITS_KEY)
            if expected_units is not None and units != expected_units:
                raise ValueError(
                    f"Input {loader.exposure_id(index)} is in {units!r}; a {calibration_type} is combined "
                    f"from inputs in {expected_units!r} (check the isr doApplyGains setting)."
                )
        scales = self._scales(loader, inputScales)
        result = combine_stack(
            loader,
            scales if config.exposureScaling != "Unity" else None,
            exclude_planes=list(config.maskPlanesToExclude),
            config=combine_algorithms.CombineConfig(
                sigma=config.clip,
                iterations=config.nIter,
                first_centre=config.firstCentre,  # type: ignore[arg-type]
                n_threads=resolve_threads(config.numThreads),
            ),
            cosmic_rays=(
                CosmicRayConfig(threshold=config.cosmicRayThreshold, grow=config.cosmicRayGrow)
                if config.doCosmicRayMask
                else None
            ),
        )
        loader.close()
        metadata = self._metadata(loader, first, scales, result.image)
        mask = Mask(schema=MASK_SCHEMA, shape=result.image.shape)
        mask.set("BAD", result.bad)
        # Variance of the mean, stdev^2 / n, in place in float32: at full
        # size each temporary array would cost another 62 MiB.
        variance = np.nan_to_num(result.stdev, nan=0.0)
        np.square(variance, out=variance)
        variance /= np.maximum(result.n_used, 1).astype(np.float32)
        variance[result.bad] = np.nan
        output = MaskedImage(Image(result.image), mask=mask, variance=Image(variance), metadata=metadata)
        _log.info(
            "Combined %d %s inputs; %d pixels without surviving inputs.",
            loader.n_inputs,
            calibration_type,
            int(result.bad.sum()),
        )
        return Struct(outputData=output)

    def _scales(self, loader: ExposureStack, input_scales: Mapping[str, Any] | None) -> list[float]:
        scaling = self.config.exposureScaling
        if scaling == "Unity":
            return [1.0] * loader.n_inputs
        if scaling == "DarkTime":
            scales = [float(loader.metadata(i)["DARKTIME"]) for i in range(loader.n_inputs)]
            for index, value in enumerate(scales):
                if not value > 0:
                    raise ValueError(
                        f"Exposure {loader.exposure_id(index)} has dark time {value}; "
                        "a dark needs a dark time > 0."
                    )
            return scales
        if input_scales is None:
            raise ValueError("exposureScaling='InputList' needs the inputScales dataset (cpFlatNormScales).")
        table = input_scales["scales"]
        scales = []
        for index in range(loader.n_inputs):
            exposure, detector = loader.exposure_id(index), loader.detector_id(index)
            try:
                value = float(table[exposure][detector])
            except KeyError:
                raise ValueError(
                    f"cpFlatNormScales has no factor for exposure {exposure}, detector {detector}."
                ) from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Flat normalization factor of exposure {exposure} is {value}.")
            scales.append(value)
        return scales

    def _metadata(
        self, loader: ExposureStack, first: Mapping[str, Any], scales: Sequence[float], image: np.ndarray
    ) -> dict[str, Any]:
        calibration_type = self.config.calibrationType
        metadata: dict[str, Any] = {
            CALIB_TYPE_KEY: calibration_type,
            CALIB_UNITS_KEY: _UNITS[calibration_type],
            "LSST CALIB NINPUTS": loader.n_inputs,
            "LSST CALIB COMBINE": f"{self.config.combine} {self.config.clip:g} sigma x {self.config.nIter}",
        }
        for key in ("INSTRUME", "DETECTOR", "DET_NAME", "DET_SER", "FILTER", "GRATING"):
            if key in first:
                metadata[key] = first[key]
        for index in range(loader.n_inputs):
            input_metadata = loader.metadata(index)
            metadata[calib_input_key(index, "EXPID")] = loader.exposure_id(index)
            metadata[calib_input_key(index, "DATE")] = str(input_metadata.get("DATE-OBS", ""))
            metadata[calib_input_key(index, "EXPTIME")] = float(input_metadata.get("EXPTIME", math.nan))
            metadata[calib_input_key(index, "DARKTIME")] = float(input_metadata.get("DARKTIME", math.nan))
            metadata[calib_input_key(index, "SCALE")] = float(scales[index])
        copy_layout(first, metadata)
        for amp in detector_geometry(first):
            for percentile, value in percentiles(image[amp.detector_slice], self.config.percentiles).items():
                metadata[calib_percentile_key(percentile, amp.name)] = value
        return metadata


class CalibCombineByFilterConnections(
    PipelineTaskConnections, dimensions=("instrument", "detector", "physical_filter")
):
    """Connections of `CalibCombineByFilterTask`: one flat per filter."""

    inputExpHandles = processed_exposure("cpFlatProc", "ISR-processed flats to combine.", multiple=True)
    inputScales = dict_input(
        "cpFlatNormScales",
        "Normalization factor of every (exposure, detector).",
        ("instrument", "physical_filter"),
        multiple=False,
    )
    outputData = calibration_output(FLAT, "Combined flat, normalised.")


class CalibCombineByFilterConfig(CalibCombineConfig, pipelineConnections=CalibCombineByFilterConnections):
    """Configuration of `CalibCombineByFilterTask` (flat defaults)."""

    def setDefaults(self) -> None:
        """Default to a flat: scaled by the normalization factors."""
        super().setDefaults()
        self.calibrationType = "flat"
        self.exposureScaling = "InputList"


class CalibCombineByFilterTask(CalibCombineTask):
    """Combine the processed flats of one detector and physical filter."""

    ConfigClass = CalibCombineByFilterConfig
    _DefaultName = "cpFlatCombine"
