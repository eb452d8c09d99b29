"""Instrument signature removal for calibration construction and verification.

`IsrTask` (pipeline label ``isr`` in the cp pipelines, ``verify<Type>Isr``
in the verification pipelines) turns one raw image of one detector into an
assembled, calibrated `lsst.images.MaskedImage`, in this order:

1. flag saturated raw pixels (``SAT``);
2. subtract the serial overscan (per-row median, skipping the columns nearest
   each edge) and optionally the parallel overscan, recording the residual
   noise per amplifier as ``LSST ISR OVERSCAN RESIDUAL SERIAL STDEV <amp>``
   (ADU), then trim and assemble (`lsst.ts.calibscripts.cp.algorithms.overscan`,
   `lsst.ts.calibscripts.cp.algorithms.assembly`);
3. subtract the combined bias (ADU);
4. apply the nominal gains (ADU -> electrons), if configured;
5. subtract the combined dark (electron/s) scaled by the dark time,
   converted to ADU with the gains when the image is still in ADU;
6. divide by the combined flat;
7. mask the known defects (``BAD``);
8. compute the variance plane.

Each step after 2 runs only if its ``do*`` field is set. The output metadata
describes the observation, the units and the amplifier layout (see
`lsst.ts.calibscripts.cp.tasks.image_conventions`), so every downstream task
works on full-size and reduced geometries alike.

Of a combined calibration ISR reads only what it applies: the pixels, the
``BAD`` plane and the metadata (`CalibrationPlanes`), not the variance. A
process running several quanta (``pipetask -j 1``) reads each calibration
once: the last one read of each type is kept, keyed by its dataset id
(datasets never change once written).
"""

from __future__ import annotations

__all__ = [
    "APPLIED_KEY",
    "OVERSCAN_SETTINGS_KEY",
    "CalibrationPlanes",
    "IsrResult",
    "IsrTask",
    "IsrTaskConfig",
    "IsrTaskConnections",
    "OverscanStage",
]

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Image, Mask, MaskedImage
from lsst.pex.config import Field
from lsst.pipe.base import InputQuantizedConnection, PipelineTaskConfig, PipelineTaskConnections, Struct

from ..algorithms import assembly
from ..algorithms.overscan import OverscanConfig, correct_and_assemble, overscan_residual_key
from ..butler.dataset_types import BIAS, DARK, DEFECTS, FLAT
from ..butler.raw_file import RawImage
from ..camera.description import DetectorDescription, get_instrument_description
from ..camera.geometry import DetectorGeometry
from .base import CalibPipelineTask, calibration_prerequisite, resolve_threads, threads_field
from .image_conventions import (
    CALIB_UNITS_KEY,
    EXPOSURE_ID_KEY,
    MASK_SCHEMA,
    OBSERVATION_KEYS,
    UNITS_KEY,
    amp_layout_metadata,
    gain_key,
    overscan_median_key,
    read_image_and_mask,
    read_noise_key,
)

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CalibrationPlanes:
    """What ISR applies of a combined calibration.

    Attributes
    ----------
    image
        The calibration's pixels (read-only: shared by the quanta of a process).
    bad
        `True` where the calibration's ``BAD`` plane is set (read-only).
    metadata
        The calibration's metadata (``LSST CALIB UNITS`` is checked).
    """

    image: np.ndarray
    bad: np.ndarray
    metadata: Mapping[str, Any]

    @classmethod
    def from_masked_image(cls, calibration: MaskedImage) -> CalibrationPlanes:
        """Take the planes ISR uses from an in-memory calibration.

        Parameters
        ----------
        calibration
            A combined bias, dark or flat.

        Returns
        -------
        planes
            Its image array (not copied), BAD plane and metadata.
        """
        return cls(calibration.image.array, calibration.mask.get("BAD"), dict(calibration.metadata))

    @classmethod
    def read(cls, handle: DeferredDatasetHandle) -> CalibrationPlanes:
        """Read the planes ISR uses, skipping the variance.

        Parameters
        ----------
        handle
            Handle of a combined bias, dark or flat (``MaskedImageV2``).

        Returns
        -------
        planes
            Image, BAD plane and metadata, made read-only.
        """
        image, mask, metadata = read_image_and_mask(handle)
        planes = cls(image.array, mask.get("BAD"), metadata)
        planes.image.flags.writeable = False
        planes.bad.flags.writeable = False
        return planes


_calibration_cache: dict[str, tuple[uuid.UUID, CalibrationPlanes]] = {}
"""The last calibration read of each connection (bias, dark, flat), by dataset id."""


def _read_calibration(name: str, handle: DeferredDatasetHandle) -> CalibrationPlanes:
    cached = _calibration_cache.get(name)
    if cached is not None and cached[0] == handle.ref.id:
        return cached[1]
    # Forget the previous one first: never hold two of a type.
    _calibration_cache.pop(name, None)
    planes = CalibrationPlanes.read(handle)
    _calibration_cache[name] = (handle.ref.id, planes)
    return planes


class IsrTaskConnections(
    PipelineTaskConnections,
    dimensions=("instrument", "exposure", "detector"),
):
    """Connections of `IsrTask`: one raw in, one processed image out."""

    ccdExposure = cT.Input(
        name="raw",
        doc="Raw image of one detector.",
        storageClass="RawImage",
        dimensions=("instrument", "exposure", "detector"),
    )
    # The combined calibrations are read by prepare_inputs (deferLoad):
    # without the variance, once per process.
    bias = calibration_prerequisite(BIAS, "Combined bias (ADU) valid at the exposure.", deferLoad=True)
    dark = calibration_prerequisite(DARK, "Combined dark (electron/s) valid at the exposure.", deferLoad=True)
    flat = calibration_prerequisite(FLAT, "Combined flat of the exposure's physical filter.", deferLoad=True)
    defects = calibration_prerequisite(
        DEFECTS, "Known defects; optional: without them doDefect masks nothing.", minimum=0
    )
    outputExposure = cT.Output(
        name="postISRCCD",
        doc="Assembled, calibrated image; each pipeline names it (cpBiasProc, verifyBiasProc...).",
        storageClass="MaskedImageV2",
        dimensions=("instrument", "exposure", "detector"),
    )

    def __init__(self, *, config: IsrTaskConfig | None = None) -> None:
        super().__init__(config=config)
        assert config is not None
        # Ask the graph builder only for the calibrations this configuration uses.
        if not config.doBias:
            del self.bias
        if not config.doDark:
            del self.dark
        if not config.doFlat:
            del self.flat
        if not config.doDefect:
            del self.defects


class IsrTaskConfig(PipelineTaskConfig, pipelineConnections=IsrTaskConnections):
    """Configuration of `IsrTask`."""

    doOverscan = Field[bool](
        doc="Subtract the serial overscan (per-row median). Default: True.",
        default=True,
    )
    overscanEdgeSkip = Field[int](
        doc="Serial-overscan columns skipped at each edge of the overscan. Default: 3.",
        default=3,
        check=lambda value: value >= 0,
    )
    doParallelOverscan = Field[bool](
        doc="Also subtract the parallel overscan (per-column median). Default: False.",
        default=False,
    )
    parallelOverscanEdgeSkip = Field[int](
        doc="Parallel-overscan rows skipped at each edge. Default: 3.",
        default=3,
        check=lambda value: value >= 0,
    )
    doSaturation = Field[bool](
        doc="Flag raw pixels at or above the saturation level as SAT. Default: True.",
        default=True,
    )
    saturation = Field[float](
        doc="Saturation level (ADU, raw); NaN uses the camera description's level "
        "(120 000 ADU for ITL). Default: NaN.",
        default=float("nan"),
    )
    doBias = Field[bool](
        doc="Subtract the combined bias (prerequisite 'bias'). Default: False.",
        default=False,
    )
    doApplyGains = Field[bool](
        doc="Multiply each amplifier by its nominal gain (camera description), giving electrons. "
        "Default: False (the output stays in ADU).",
        default=False,
    )
    doDark = Field[bool](
        doc="Subtract the combined dark (prerequisite 'dark', electron/s) times the dark time. "
        "Default: False.",
        default=False,
    )
    doFlat = Field[bool](
        doc="Divide by the combined flat (prerequisite 'flat'). Default: False.",
        default=False,
    )
    doDefect = Field[bool](
        doc="Mask the known defects as BAD (prerequisite 'defects'; a no-op when the input collections "
        "hold none). Default: True.",
        default=True,
    )
    doCrosstalk = Field[bool](
        doc="Crosstalk correction. Documented no-op: these cameras' crosstalk is below the "
        "calibration noise and this package has no crosstalk model; True only logs that. Default: False.",
        default=False,
    )
    doVariance = Field[bool](
        doc="Compute the variance plane (Poisson signal + read noise, output units squared); "
        "otherwise it is 1. Default: True.",
        default=True,
    )
    numThreads = threads_field()

    def validate(self) -> None:
        """Check that the steps requested are consistent.

        Raises
        ------
        ValueError
            If the overscan step is switched off (the raw's bias level would
            remain and nothing downstream would make sense).
        """
        super().validate()
        if not self.doOverscan:
            raise ValueError(
                "doOverscan=False is not supported: the raw bias level (~10^4 ADU) would remain in the image."
            )


class IsrTask(CalibPipelineTask):
    """Remove the instrument signature from one raw image of one detector."""

    ConfigClass = IsrTaskConfig
    _DefaultName = "isr"
    config: IsrTaskConfig

    def prepare_inputs(self, inputs: dict[str, Any], inputRefs: InputQuantizedConnection) -> dict[str, Any]:
        """Replace the calibrations' handles by the planes ISR uses (cached per process)."""
        for name in ("bias", "dark", "flat"):
            if name in inputs:
                inputs[name] = _read_calibration(name, inputs[name])
        return inputs

    def run(
        self,
        ccdExposure: RawImage,
        bias: MaskedImage | CalibrationPlanes | None = None,
        dark: MaskedImage | CalibrationPlanes | None = None,
        flat: MaskedImage | CalibrationPlanes | None = None,
        defects: Table | None = None,
    ) -> Struct:
        """Process one raw image.

        Parameters
        ----------
        ccdExposure
            The raw image.
        bias, dark, flat
            Combined calibrations (or the planes of them ISR uses); required
            when the matching ``do*`` field is set.
        defects
            Defect boxes (``x0``, ``y0``, ``width``, ``height``), or `None`.

        Returns
        -------
        result
            ``outputExposure``: the processed `lsst.images.MaskedImage`.

        Raises
        ------
        ValueError
            If a required calibration is missing or its shape or units do
            not match the raw.
        """
        stage = self.overscan_stage(ccdExposure)
        return Struct(outputExposure=self.calibration_stage(stage, bias, dark, flat, defects).masked_image())

    def overscan_stage(self, raw: RawImage) -> OverscanStage:
        """Run steps 1 and 2: saturation, overscan, trim and assembly.

        Parameters
        ----------
        raw
            The raw image.

        Returns
        -------
        stage
            The assembled image in ADU, the saturated pixels and the
            metadata, with `overscan_signature` of this configuration
            recorded (``LSST ISR OVERSCAN SETTINGS``).
        """
        config = self.config
        geometry = raw.geometry
        detector = _detector_description(raw)
        metadata = _observation_metadata(raw)
        image, saturated, corrected = correct_and_assemble(
            raw.amps,
            geometry,
            OverscanConfig(
                edge_skip=config.overscanEdgeSkip,
                do_parallel=config.doParallelOverscan,
                parallel_edge_skip=config.parallelOverscanEdgeSkip,
            ),
            saturation=self._saturation_level(detector) if config.doSaturation else None,
            n_threads=resolve_threads(config.numThreads),
        )
        sat_mask = saturated if saturated is not None else np.zeros(geometry.assembled_shape, dtype=bool)
        metadata.update(amp_layout_metadata(geometry))
        for amp in geometry:
            result = corrected[amp.name]
            metadata[overscan_residual_key(amp.name)] = result.residual_stdev
            metadata[overscan_median_key(amp.name)] = float(np.median(result.serial_level))
            metadata[gain_key(amp.name)] = float(detector.gains[amp.name])
            metadata[read_noise_key(amp.name)] = float(detector.read_noise[amp.name])
        metadata[OVERSCAN_SETTINGS_KEY] = self.overscan_signature(detector)
        metadata[APPLIED_KEY] = "overscan"
        metadata[UNITS_KEY] = "adu"
        if config.doCrosstalk:
            _log.info("doCrosstalk=True: no crosstalk model for %s; nothing done.", detector.full_name)
        return OverscanStage(image, sat_mask, metadata, geometry, detector, float(raw.metadata.dark_time))

    def overscan_signature(self, detector: DetectorDescription) -> str:
        """Describe what `overscan_stage` does with this configuration, as it records it.

        Two images whose records are equal and that had nothing else
        applied (``LSST ISR APPLIED`` = ``overscan``) hold the same pixels
        for the same raw.
        """
        config = self.config
        saturation = repr(self._saturation_level(detector)) if config.doSaturation else "none"
        parallel = f"{config.parallelOverscanEdgeSkip}" if config.doParallelOverscan else "none"
        return f"serialEdgeSkip={config.overscanEdgeSkip} parallelEdgeSkip={parallel} saturation={saturation}"

    def _saturation_level(self, detector: DetectorDescription) -> float:
        level = self.config.saturation
        return float(level if np.isfinite(level) else detector.saturation)

    def calibration_stage(
        self,
        stage: OverscanStage,
        bias: MaskedImage | CalibrationPlanes | None = None,
        dark: MaskedImage | CalibrationPlanes | None = None,
        flat: MaskedImage | CalibrationPlanes | None = None,
        defects: Table | None = None,
    ) -> IsrResult:
        """Run steps 3 to 8 on the output of `overscan_stage` (its image is modified in place).

        Parameters
        ----------
        stage
            Assembled image in ADU, saturated pixels and metadata.
        bias, dark, flat, defects
            As for `run`.

        Returns
        -------
        result
            The processed planes and metadata.
        """
        config = self.config
        image, geometry, detector = stage.image, stage.geometry, stage.detector
        gains = {amp.name: float(detector.gains[amp.name]) for amp in geometry}
        metadata = stage.metadata
        bias_planes = _calibration_planes(bias)
        dark_planes = _calibration_planes(dark)
        flat_planes = _calibration_planes(flat)
        applied = ["overscan"]
        bad_mask = np.zeros(geometry.assembled_shape, dtype=bool)
        if config.doBias:
            bias_array = _calibration_array(bias_planes, "bias", image.shape, "adu")
            image -= bias_array
            bad_mask |= _calibration_bad(bias_planes)
            applied.append("bias")
        units = "adu"
        if config.doApplyGains:
            assembly.apply_gains(image, geometry, gains)
            units = "electron"
            applied.append("gains")
        if config.doDark:
            dark_array = _calibration_array(dark_planes, "dark", image.shape, "electron/s")
            scaled = dark_array * np.float32(stage.dark_time)
            if units == "adu":
                assembly.apply_gains(scaled, geometry, gains, inverse=True)
            image -= scaled
            bad_mask |= _calibration_bad(dark_planes)
            applied.append("dark")
        if config.doFlat:
            flat_array = _calibration_array(flat_planes, "flat", image.shape, "dimensionless")
            usable = np.isfinite(flat_array) & (flat_array > 0)
            np.divide(image, flat_array, out=image, where=usable)
            image[~usable] = np.nan
            bad_mask |= ~usable | _calibration_bad(flat_planes)
            applied.append("flat")
        if config.doDefect and defects is not None:
            bad_mask |= _defect_mask(defects, image.shape)
        metadata[UNITS_KEY] = units
        metadata[APPLIED_KEY] = " ".join(applied)
        variance = _variance(image, geometry, gains, detector, units) if config.doVariance else None
        return IsrResult(image, stage.sat_mask, bad_mask, variance, metadata)


OVERSCAN_SETTINGS_KEY = "LSST ISR OVERSCAN SETTINGS"
"""How the overscan stage was configured (`IsrTask.overscan_signature`)."""

APPLIED_KEY = "LSST ISR APPLIED"
"""The pixel steps applied, in order: ``overscan`` then ``bias``, ``gains``, ``dark``, ``flat``."""


@dataclasses.dataclass
class OverscanStage:
    """An image after saturation, overscan, trim and assembly (ADU).

    Attributes
    ----------
    image
        Assembled pixels (``float32``), modified in place by the next stage.
    sat_mask
        Saturated pixels.
    metadata
        Observation, layout and overscan metadata.
    geometry
        Detector geometry.
    detector
        The detector's description (gains, read noise).
    dark_time
        Dark time of the exposure, seconds.
    """

    image: np.ndarray
    sat_mask: np.ndarray
    metadata: dict[str, Any]
    geometry: DetectorGeometry
    detector: DetectorDescription
    dark_time: float


@dataclasses.dataclass
class IsrResult:
    """The planes and metadata of a processed image.

    Attributes
    ----------
    image
        Pixels.
    sat_mask, bad_mask
        The ``SAT`` and ``BAD`` planes.
    variance
        The variance, or `None` for a constant 1 (``doVariance=False``; the
        `masked_image` then holds a read-only view of ones).
    metadata
        Metadata.
    """

    image: np.ndarray
    sat_mask: np.ndarray
    bad_mask: np.ndarray
    variance: np.ndarray | None
    metadata: dict[str, Any]

    def planes(self) -> dict[str, np.ndarray]:
        """Mask planes by name."""
        return {"SAT": self.sat_mask, "BAD": self.bad_mask}

    def masked_image(self) -> MaskedImage:
        """Return the `lsst.images.MaskedImage` ISR writes."""
        # A constant variance is a read-only view: no 62 MiB plane of ones.
        variance = self.variance
        if variance is None:
            variance = np.broadcast_to(np.float32(1.0), self.image.shape)
        mask = Mask(schema=MASK_SCHEMA, shape=self.image.shape)
        mask.set("SAT", self.sat_mask)
        mask.set("BAD", self.bad_mask)
        return MaskedImage(Image(self.image), mask=mask, variance=Image(variance), metadata=self.metadata)


def _detector_description(raw: RawImage) -> DetectorDescription:
    instrument = get_instrument_description(raw.metadata.instrument)
    return instrument.detector(raw.detector_id)


def _observation_metadata(raw: RawImage) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key in OBSERVATION_KEYS:
        if key in raw.header:
            value = raw.header[key]
            metadata[key] = value if isinstance(value, bool | int | float | str) else str(value)
    metadata[EXPOSURE_ID_KEY] = raw.metadata.exposure_id
    metadata["EXPTIME"] = float(raw.metadata.exposure_time)
    metadata["DARKTIME"] = float(raw.metadata.dark_time)
    return metadata


def _calibration_planes(calibration: MaskedImage | CalibrationPlanes | None) -> CalibrationPlanes | None:
    if isinstance(calibration, MaskedImage):
        return CalibrationPlanes.from_masked_image(calibration)
    return calibration


def _calibration_array(
    calibration: CalibrationPlanes | None, name: str, shape: tuple[int, ...], units: str
) -> np.ndarray:
    if calibration is None:
        raise ValueError(f"do{name.capitalize()}=True but no {name} calibration was provided.")
    array = calibration.image
    if array.shape != shape:
        raise ValueError(
            f"The {name} calibration has shape {array.shape} but the raw assembles to {shape}: "
            "it was made from another geometry."
        )
    found = calibration.metadata.get(CALIB_UNITS_KEY)
    if found is not None and found != units:
        raise ValueError(f"The {name} calibration is in {found!r}; ISR expects {units!r}.")
    return array


def _calibration_bad(calibration: CalibrationPlanes | None) -> np.ndarray:
    assert calibration is not None
    return calibration.bad


def _defect_mask(defects: Table, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for row in defects:
        x0, y0 = int(row["x0"]), int(row["y0"])
        mask[y0 : y0 + int(row["height"]), x0 : x0 + int(row["width"])] = True
    return mask


def _variance(
    image: np.ndarray,
    geometry: Any,
    gains: dict[str, float],
    detector: DetectorDescription,
    units: str,
) -> np.ndarray:
    variance = np.empty_like(image)
    for amp in geometry:
        view = image[amp.detector_slice]
        gain = gains[amp.name]
        read_noise_e = float(detector.read_noise[amp.name])
        signal = np.clip(np.nan_to_num(view, nan=0.0), 0.0, None)
        if units == "electron":
            variance[amp.detector_slice] = signal + read_noise_e**2
        else:
            variance[amp.detector_slice] = signal / gain + (read_noise_e / gain) ** 2
    return variance
