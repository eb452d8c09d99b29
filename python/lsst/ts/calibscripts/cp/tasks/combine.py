"""Combine ISR-processed exposures into a bias, dark or flat.

`CalibCombineTask` (labels ``cpBiasCombine``, ``cpDarkCombine``) makes one
calibration per detector; `CalibCombineByFilterTask` (``cpFlatCombine``) one
per detector and physical filter. Per pixel, the inputs are combined with the
clipped mean of `lsst.ts.calibscripts.cp.combine` (``MEANCLIP``, 3 sigma, 3
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box, Image, Mask, MaskedImage
from lsst.pex.config import ChoiceField, Field, ListField
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

from .. import combine as combine_algorithms
from ..dataset_types import BIAS, FLAT
from ..statistics import DEFAULT_PERCENTILES, percentiles
from .image_conventions import (
    CALIB_TYPE_KEY,
    CALIB_UNITS_KEY,
    EXPOSURE_ID_KEY,
    MASK_SCHEMA,
    UNITS_KEY,
    calib_input_key,
    calib_percentile_key,
    copy_layout,
    detector_geometry,
)

_log = logging.getLogger(__name__)

type _CosmicRayFinder = Callable[[int, int, MaskedImage], np.ndarray]
"""``finder(input index, first row, cut-out)`` -> cosmic-ray pixels of the cut-out."""

_UNITS = {"bias": "adu", "dark": "electron/s", "flat": "dimensionless"}
_INPUT_UNITS = {"bias": "adu", "dark": "electron"}


class CalibCombineConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    """Connections of `CalibCombineTask`: all exposures of a detector in."""

    inputExpHandles = cT.Input(
        name="cpInputs",
        doc="ISR-processed exposures to combine (cpBiasProc, cpDarkProc...).",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        deferLoad=True,
    )
    outputData = cT.Output(
        name=BIAS.name,
        doc="Combined calibration (bias or dark).",
        storageClass=BIAS.storage_class,
        dimensions=BIAS.dimensions,
        isCalibration=True,
    )


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
    clip = Field[float](
        doc="Clipping half-width in standard deviations. Default: 3.0.",
        default=3.0,
        check=lambda value: value > 0,
    )
    nIter = Field[int](
        doc="Clipping iterations. Default: 3.",
        default=3,
        check=lambda value: value >= 1,
    )
    firstCentre = ChoiceField[str](
        doc="Window of the first clipping iteration. Default: median (as afw MEANCLIP).",
        default="median",
        allowed={"median": "Median and 0.7413 IQR.", "mean": "Plain mean and standard deviation."},
    )
    maskPlanesToExclude = ListField[str](
        doc="Input pixels with any of these mask planes are not combined. Default: ['SAT'].",
        default=["SAT"],
    )
    doCosmicRayMask = Field[bool](
        doc="Find cosmic rays in each input and exclude them (darks). Default: False.",
        default=False,
    )
    cosmicRayThreshold = Field[float](
        doc="Cosmic-ray detection threshold above the local background, in read-noise sigma. Default: 5.0.",
        default=5.0,
        check=lambda value: value > 0,
    )
    cosmicRayGrow = Field[int](
        doc="Pixels by which each cosmic ray is grown before it is excluded. Default: 2.",
        default=2,
        check=lambda value: value >= 0,
    )
    rowsPerRead = Field[int](
        doc="Rows of each input read at once (memory holds this many rows of every input). Default: 1000.",
        default=1000,
        check=lambda value: value > 0,
    )
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


class CalibCombineTask(PipelineTask):
    """Combine the processed exposures of one detector into a calibration."""

    ConfigClass = CalibCombineConfig
    _DefaultName = "cpCombine"
    config: CalibCombineConfig

    def runQuantum(
        self,
        butlerQC: QuantumContext,
        inputRefs: InputQuantizedConnection,
        outputRefs: OutputQuantizedConnection,
    ) -> None:
        """Read the handles (sorted by exposure) and run.

        Parameters
        ----------
        butlerQC
            Butler access limited to this quantum.
        inputRefs, outputRefs
            The quantum's datasets.
        """
        inputs = butlerQC.get(inputRefs)
        handles = sorted(inputs.pop("inputExpHandles"), key=lambda h: int(h.dataId["exposure"]))
        outputs = self.run(inputExpHandles=handles, **inputs)
        butlerQC.put(outputs, outputRefs)

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
        loader = _RowBlockLoader(inputExpHandles, config.rowsPerRead)
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
        exclude = list(config.maskPlanesToExclude)
        result = self._combine(loader, scales, exclude)
        if config.doCosmicRayMask:
            # Hot pixels and columns are as bright as cosmic rays in every
            # input; only the difference from what the stack says the pixel
            # should hold tells them apart. So combine once (the clipped mean
            # already rejects most cosmic rays), find cosmic rays in each
            # input against that combination, and combine again without them.
            loader.cosmic_ray_finder = self._make_cosmic_ray_finder(result.image, scales)
            loader.drop_blocks()
            result = self._combine(loader, scales, exclude)
        metadata = self._metadata(loader, first, scales, result.image)
        mask = Mask(schema=MASK_SCHEMA, shape=result.image.shape)
        mask.set("BAD", result.bad)
        n_used = np.maximum(result.n_used, 1).astype(np.float32)
        variance = np.where(result.bad, np.nan, np.nan_to_num(result.stdev, nan=0.0) ** 2 / n_used)
        output = MaskedImage(
            Image(result.image), mask=mask, variance=Image(variance.astype(np.float32)), metadata=metadata
        )
        _log.info(
            "Combined %d %s inputs; %d pixels without surviving inputs.",
            loader.n_inputs,
            calibration_type,
            int(result.bad.sum()),
        )
        return Struct(outputData=output)

    def _combine(
        self, loader: _RowBlockLoader, scales: Sequence[float], exclude: list[str]
    ) -> combine_algorithms.CombineResult:
        config = self.config
        source = combine_algorithms.RowLoaderSource(
            loader.n_inputs,
            loader.shape,
            loader.read_rows,
            lambda index, y0, y1: loader.read_mask_rows(index, y0, y1, exclude),
        )
        return combine_algorithms.combine(
            source,
            scales=scales if config.exposureScaling != "Unity" else None,
            config=combine_algorithms.CombineConfig(
                sigma=config.clip,
                iterations=config.nIter,
                first_centre=config.firstCentre,  # type: ignore[arg-type]
            ),
        )

    def _make_cosmic_ray_finder(self, first_pass: np.ndarray, scales: Sequence[float]) -> _CosmicRayFinder:
        # Imported only when darks need it.
        from ..cosmic_rays import CosmicRayConfig, find_cosmic_rays

        cr_config = CosmicRayConfig(threshold=self.config.cosmicRayThreshold, grow=self.config.cosmicRayGrow)

        def finder(index: int, start: int, cutout: MaskedImage) -> np.ndarray:
            image = cutout.image.array
            expected = first_pass[start : start + image.shape[0]] * np.float32(scales[index])
            variance = cutout.variance.array
            usable = np.isfinite(variance) & (variance > 0)
            if not usable.any():
                return np.zeros(image.shape, dtype=bool)
            # Pixels without a usable variance (NaN after ISR) borrow the
            # typical one; they are excluded anyway if masked.
            noise = np.sqrt(np.where(usable, variance, np.median(variance[usable])))
            found = find_cosmic_rays(
                image, noise, expected=np.nan_to_num(expected, nan=np.inf), config=cr_config
            )
            if found.failed:
                _log.warning(
                    "Cosmic-ray detection flagged %.1f%% of rows %d-%d of input %d; not masking them.",
                    100 * found.fraction,
                    start,
                    start + image.shape[0],
                    index,
                )
                return np.zeros(image.shape, dtype=bool)
            return found.mask

        return finder

    def _scales(self, loader: _RowBlockLoader, input_scales: Mapping[str, Any] | None) -> list[float]:
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
        self, loader: _RowBlockLoader, first: Mapping[str, Any], scales: Sequence[float], image: np.ndarray
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

    inputExpHandles = cT.Input(
        name="cpFlatProc",
        doc="ISR-processed flats to combine.",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        deferLoad=True,
    )
    inputScales = cT.Input(
        name="cpFlatNormScales",
        doc="Normalization factor of every (exposure, detector).",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "physical_filter"),
    )
    outputData = cT.Output(
        name=FLAT.name,
        doc="Combined flat, normalised.",
        storageClass=FLAT.storage_class,
        dimensions=FLAT.dimensions,
        isCalibration=True,
    )


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


class _RowBlockLoader:
    """Serve rows of each input from Butler cut-outs of ``rows_per_read`` rows.

    The combination asks for small tiles of rows, input after input; reading
    each tile separately would reopen every file hundreds of times, reading
    whole images would hold the whole stack. This keeps one block of rows of
    every input.
    """

    def __init__(self, handles: Sequence[DeferredDatasetHandle], rows_per_read: int) -> None:
        self._handles = list(handles)
        self._rows_per_read = rows_per_read
        self._blocks: list[tuple[int, MaskedImage] | None] = [None] * len(self._handles)
        self._metadata: list[dict[str, Any]] = []
        self.cosmic_ray_finder: _CosmicRayFinder | None = None
        """Function returning the cosmic-ray pixels of a block, if any."""
        shape: tuple[int, int] | None = None
        for handle in self._handles:
            # A one-row cut-out reads the metadata (JSON tree) and the bbox
            # cheaply; the full shape comes from the bbox component.
            bbox = handle.get(component="bbox")
            this_shape = (int(bbox.shape[0]), int(bbox.shape[1]))
            if shape is None:
                shape = this_shape
            elif this_shape != shape:
                raise ValueError(
                    f"Input {handle.dataId['exposure']} has shape {this_shape}, the first input {shape}: "
                    "inputs from different geometries cannot be combined."
                )
            cutout = handle.get(parameters={"bbox": Box.factory[0:1, 0 : this_shape[1]]})
            self._metadata.append(dict(cutout.metadata))
        assert shape is not None
        self.shape = shape

    @property
    def n_inputs(self) -> int:
        return len(self._handles)

    def metadata(self, index: int) -> dict[str, Any]:
        return self._metadata[index]

    def exposure_id(self, index: int) -> int:
        value = self._metadata[index].get(EXPOSURE_ID_KEY)
        return int(value) if value is not None else int(self._handles[index].dataId["exposure"])

    def detector_id(self, index: int) -> int:
        return int(self._handles[index].dataId["detector"])

    def drop_blocks(self) -> None:
        """Forget the cached blocks (before a second pass over the inputs)."""
        self._blocks = [None] * len(self._handles)

    def _block(self, index: int, y0: int) -> tuple[int, MaskedImage]:
        block = self._blocks[index]
        if block is not None and block[0] <= y0 < block[0] + block[1].image.array.shape[0]:
            return block
        start = (y0 // self._rows_per_read) * self._rows_per_read
        stop = min(start + self._rows_per_read, self.shape[0])
        cutout = self._handles[index].get(parameters={"bbox": Box.factory[start:stop, 0 : self.shape[1]]})
        if self.cosmic_ray_finder is not None:
            # Cosmic rays are a few pixels long, so finding them block by
            # block misses nothing but the growth across a block edge.
            cutout.mask.set("CR", self.cosmic_ray_finder(index, start, cutout))
        block = (start, cutout)
        self._blocks[index] = block
        return block

    def _pieces(self, index: int, y0: int, y1: int) -> list[tuple[MaskedImage, slice]]:
        # A tile of the combination may straddle two read blocks.
        pieces = []
        y = y0
        while y < y1:
            start, cutout = self._block(index, y)
            stop = min(y1, start + cutout.image.array.shape[0])
            pieces.append((cutout, slice(y - start, stop - start)))
            y = stop
        return pieces

    def read_rows(self, index: int, y0: int, y1: int) -> np.ndarray:
        pieces = [cutout.image.array[rows] for cutout, rows in self._pieces(index, y0, y1)]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def read_mask_rows(self, index: int, y0: int, y1: int, planes: list[str]) -> np.ndarray | None:
        names = list(planes) + (["CR"] if self.cosmic_ray_finder is not None else [])
        if not names:
            return None
        pieces = []
        for cutout, rows in self._pieces(index, y0, y1):
            known = [name for name in names if name in cutout.mask.schema.names]
            bits = cutout.mask.schema.bitmask(*known) if known else np.zeros(1, dtype=cutout.mask.array.dtype)
            pieces.append(np.any(cutout.mask.array[rows] & bits, axis=-1))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
