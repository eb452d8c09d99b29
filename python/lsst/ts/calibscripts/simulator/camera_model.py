"""Physical model of one ITL CCD: the pixels the simulated cameras write.

The model turns an exposure request (image type, exposure time, flux) into
raw amplifier arrays in ADU, in readout order, including prescan and both
overscans, exactly as `lsst.ts.calibscripts.cp.butler.raw_file.write_raw` expects.
It is seeded: the fixed structure of the detector (defects, pixel response,
bias pattern, dark current) depends only on the seed, and each exposure's
noise on the seed and the exposure's index, so a sequence of exposures is
reproducible.

Signal chain, per pixel of the imaging area (assembled-detector coordinates):

1. electrons = Poisson(flux * t_exp * illumination * response
   + dark_current * t_dark), plus cosmic-ray charge along short tracks;
   the count of cosmic rays is proportional to ``t_dark + readout_time``;
   clipped at the full well.
2. ADU = electrons / gain(amp).
3. Every raw pixel (data, prescan and overscans) gets the bias: a per-amp
   level, a slow row-direction drift that changes with every exposure (the
   serial overscan tracks it), and Gaussian read noise. The imaging area
   also gets a fixed 2-D bias pattern the overscan does *not* see (what a
   combined bias is for) and, on the first frame after the camera has been
   idle, a transient offset that decays along the readout.
4. Clipped to the 18-bit ADC range and rounded.

`CameraModelTruth` exposes what tests compare measurements with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from lsst.ts.calibscripts.cp.camera.description import DetectorDescription
from lsst.ts.calibscripts.cp.camera.geometry import DetectorGeometry

__all__ = [
    "ADC_MAX",
    "CameraModel",
    "CameraModelConfig",
    "CameraModelTruth",
    "ColumnDefect",
    "SimulatedExposure",
]

ADC_MAX: Final[int] = 2**18 - 1
"""Largest value the 18-bit ADC can produce."""

SHUTTERED_TYPES: Final[frozenset[str]] = frozenset({"BIAS", "DARK"})
"""Image types taken with the shutter closed (no illumination)."""

ILLUMINATED_TYPES: Final[frozenset[str]] = frozenset(
    {"FLAT", "ENGTEST", "OBJECT", "SCIENCE", "ACQ", "CWFS", "FOCUS", "SPOT", "SKYEXP", "STUTTERED"}
)
"""Image types taken with the shutter open."""


@dataclass(frozen=True)
class CameraModelConfig:
    """Parameters of the physical model; the defaults describe an ITL CCD.

    Parameters
    ----------
    bias_level : `float`
        Mean bias level, ADU.
    bias_amp_spread : `float`
        Per-amp bias offsets are uniform in ``+- bias_amp_spread`` ADU.
    bias_drift_amplitude : `float`
        Amplitude (ADU) of the slow row-direction bias drift; its phase
        changes with every exposure and it is present in the overscan.
    bias_drift_period : `float`
        Period of the drift in units of the amp's raw row count.
    bias_pattern_amplitude : `float`
        Amplitude (ADU) of the fixed bias pattern in the imaging area: a
        decay over the first columns read plus a faint ramp along rows.
    bias_pattern_scale : `float`
        Decay length (columns) of that pattern.
    transient_amplitude : `float`
        Offset (ADU) of the first frame after idle at the first row read.
    transient_scale : `float`
        E-folding length of the transient, in units of the data rows.
    dark_current_range : `tuple` [`float`, `float`]
        Range of per-amp mean dark current, e-/s/pixel.
    dark_current_scatter : `float`
        Fractional pixel-to-pixel scatter of the dark current.
    n_hot_pixels : `int`
        Number of hot pixels.
    hot_pixel_current_range : `tuple` [`float`, `float`]
        Dark current of hot pixels, e-/s (log-uniform).
    n_hot_columns : `int`
        Number of hot column segments.
    hot_column_current : `float`
        Dark current of hot-column pixels, e-/s.
    hot_column_fraction : `float`
        Length of a hot column segment as a fraction of the amp's rows.
    cosmic_ray_rate : `float`
        Cosmic rays per pixel per second of dark time + readout.
    cosmic_ray_charge : `tuple` [`float`, `float`]
        Range of the charge deposited per track pixel, e-.
    cosmic_ray_max_length : `int`
        Longest track, pixels.
    readout_time : `float`
        Readout time, s (cosmic rays also arrive while reading out).
    vignetting : `float`
        Fractional illumination loss in the corners (quartic in radius).
    prnu : `float`
        Pixel response non-uniformity (fractional rms).
    n_cold_pixels : `int`
        Number of cold (low-response) pixels.
    cold_pixel_response : `tuple` [`float`, `float`]
        Response range of cold pixels.
    n_dead_columns : `int`
        Number of dead columns (full amp height).
    dead_column_response : `float`
        Response of dead-column pixels.
    full_well : `float` or `None`
        Full well, e-; `None` means ``saturation * gain`` of each amp, so
        that the signal saturates at the described ADU level.
    """

    bias_level: float = 10_000.0
    bias_amp_spread: float = 600.0
    bias_drift_amplitude: float = 4.0
    bias_drift_period: float = 1.7
    bias_pattern_amplitude: float = 5.0
    bias_pattern_scale: float = 15.0
    transient_amplitude: float = 20.0
    transient_scale: float = 0.3
    dark_current_range: tuple[float, float] = (1e-3, 1e-2)
    dark_current_scatter: float = 0.2
    n_hot_pixels: int = 16
    hot_pixel_current_range: tuple[float, float] = (8.0, 200.0)
    n_hot_columns: int = 1
    hot_column_current: float = 10.0
    hot_column_fraction: float = 0.6
    cosmic_ray_rate: float = 5e-8
    cosmic_ray_charge: tuple[float, float] = (1_500.0, 8_000.0)
    cosmic_ray_max_length: int = 12
    readout_time: float = 2.0
    vignetting: float = 0.12
    prnu: float = 0.01
    n_cold_pixels: int = 16
    cold_pixel_response: tuple[float, float] = (0.3, 0.7)
    n_dead_columns: int = 1
    dead_column_response: float = 0.05
    full_well: float | None = None


@dataclass(frozen=True)
class ColumnDefect:
    """A defective column segment in assembled-detector coordinates.

    Parameters
    ----------
    x : `int`
        Column.
    y0 : `int`
        First row.
    y1 : `int`
        One past the last row.
    """

    x: int
    y0: int
    y1: int

    @property
    def length(self) -> int:
        """Number of pixels in the segment."""
        return self.y1 - self.y0


@dataclass(frozen=True)
class CameraModelTruth:
    """What the model knows and measurements are compared with.

    Every position is ``(x, y)`` in the assembled detector image; every
    array has the assembled shape.

    Attributes
    ----------
    gains : `dict` [`str`, `float`]
        Gain per amp, e-/ADU.
    read_noise : `dict` [`str`, `float`]
        Read noise per amp, e-.
    read_noise_adu : `dict` [`str`, `float`]
        Read noise per amp, ADU.
    bias_level : `dict` [`str`, `float`]
        Mean bias level per amp, ADU.
    dark_current : `numpy.ndarray`
        Dark current per pixel, e-/s, hot pixels and columns included.
    amp_dark_current : `dict` [`str`, `float`]
        Mean dark current of each amp without hot pixels or columns, e-/s.
    hot_pixels : `tuple` [`tuple` [`int`, `int`], ...]
        Hot pixels ``(x, y)``.
    hot_columns : `tuple` [`ColumnDefect`, ...]
        Hot column segments.
    cold_pixels : `tuple` [`tuple` [`int`, `int`], ...]
        Cold pixels ``(x, y)``.
    dead_columns : `tuple` [`ColumnDefect`, ...]
        Dead columns.
    illumination : `numpy.ndarray`
        Smooth illumination pattern (1 at the centre, vignetted corners).
    response : `numpy.ndarray`
        Pixel response: PRNU times defect response (1 nominal).
    bias_pattern : `numpy.ndarray`
        Fixed bias structure of the imaging area that the overscan does not
        remove, ADU, assembled orientation.
    """

    gains: dict[str, float]
    read_noise: dict[str, float]
    read_noise_adu: dict[str, float]
    bias_level: dict[str, float]
    dark_current: np.ndarray
    amp_dark_current: dict[str, float]
    hot_pixels: tuple[tuple[int, int], ...]
    hot_columns: tuple[ColumnDefect, ...]
    cold_pixels: tuple[tuple[int, int], ...]
    dead_columns: tuple[ColumnDefect, ...]
    illumination: np.ndarray
    response: np.ndarray
    bias_pattern: np.ndarray

    @property
    def flat_field(self) -> np.ndarray:
        """Relative sensitivity ``illumination * response`` (`numpy.ndarray`)."""
        return self.illumination * self.response

    def hot_mask(self) -> np.ndarray:
        """Boolean mask of the planted hot pixels and hot columns."""
        mask = np.zeros(self.dark_current.shape, dtype=bool)
        for x, y in self.hot_pixels:
            mask[y, x] = True
        for col in self.hot_columns:
            mask[col.y0 : col.y1, col.x] = True
        return mask

    def cold_mask(self) -> np.ndarray:
        """Boolean mask of the planted cold pixels and dead columns."""
        mask = np.zeros(self.dark_current.shape, dtype=bool)
        for x, y in self.cold_pixels:
            mask[y, x] = True
        for col in self.dead_columns:
            mask[col.y0 : col.y1, col.x] = True
        return mask

    def defect_mask(self) -> np.ndarray:
        """Boolean mask of every planted defect."""
        return self.hot_mask() | self.cold_mask()


@dataclass
class SimulatedExposure:
    """One simulated exposure.

    Attributes
    ----------
    amps : `dict` [`str`, `numpy.ndarray`]
        Raw amp arrays (``int32`` ADU, readout order) by amp name.
    cosmic_ray_mask : `numpy.ndarray`
        Assembled-detector pixels hit by cosmic rays.
    exposure_index : `int`
        Index that seeded this exposure's noise.
    """

    amps: dict[str, np.ndarray]
    cosmic_ray_mask: np.ndarray
    exposure_index: int = 0


class CameraModel:
    """Seeded physical model of one ITL detector.

    Parameters
    ----------
    detector : `lsst.ts.calibscripts.cp.camera.description.DetectorDescription`
        Nominal description; its gains and read noise are the model's truth.
    geometry : `lsst.ts.calibscripts.cp.camera.geometry.DetectorGeometry`
        Pixel geometry (full size or reduced).
    seed : `int`, optional
        Seed of the fixed structure and of the exposure sequence.
    config : `CameraModelConfig`, optional
        Model parameters.
    """

    def __init__(
        self,
        detector: DetectorDescription,
        geometry: DetectorGeometry,
        seed: int = 0,
        config: CameraModelConfig | None = None,
    ) -> None:
        missing = set(geometry.amp_names) - set(detector.gains)
        if missing:
            raise ValueError(f"Detector {detector.full_name} has no gain for amps {sorted(missing)}")
        self.detector = detector
        self.geometry = geometry
        self.seed = seed
        self.config = config or CameraModelConfig()
        self._next_exposure_index = 0
        self.truth = self._make_truth(np.random.default_rng([seed, 0x5EED]))

    # ------------------------------------------------------------------
    # Fixed structure
    # ------------------------------------------------------------------
    def _make_truth(self, rng: np.random.Generator) -> CameraModelTruth:
        cfg = self.config
        ny, nx = self.geometry.assembled_shape
        amps = self.geometry.amps

        gains = {a.name: float(self.detector.gains[a.name]) for a in amps}
        read_noise = {a.name: float(self.detector.read_noise[a.name]) for a in amps}
        read_noise_adu = {name: read_noise[name] / gains[name] for name in gains}
        offsets = rng.uniform(-cfg.bias_amp_spread, cfg.bias_amp_spread, len(amps))
        bias_level = {a.name: cfg.bias_level + float(o) for a, o in zip(amps, offsets, strict=True)}

        # Dark current: per-amp level with pixel scatter.
        # Truth arrays are float32: a full-size detector has 16 M pixels.
        dark = np.empty((ny, nx), dtype=np.float32)
        amp_dark: dict[str, float] = {}
        for amp in amps:
            level = float(rng.uniform(*cfg.dark_current_range))
            amp_dark[amp.name] = level
            scatter = rng.standard_normal(amp.detector.shape, dtype=np.float32)
            scatter = 1.0 + cfg.dark_current_scatter * scatter
            dark[amp.detector_slice] = level * np.clip(scatter, 0.0, None)

        # Columns first (one amp each, away from the amp's edge columns), then
        # isolated pixels that avoid the columns and each other, so each
        # planted defect is a distinct, countable object.
        occupied = np.zeros((ny, nx), dtype=bool)
        column_amps = rng.choice(len(amps), size=cfg.n_hot_columns + cfg.n_dead_columns, replace=False)
        columns: list[ColumnDefect] = []
        for k, amp_index in enumerate(column_amps):
            box = amps[int(amp_index)].detector
            x = int(rng.integers(box.x0 + 3, box.x1 - 3))
            if k < cfg.n_hot_columns:
                length = max(1, round(cfg.hot_column_fraction * box.height))
                y0 = int(rng.integers(box.y0, box.y1 - length + 1))
                columns.append(ColumnDefect(x=x, y0=y0, y1=y0 + length))
            else:
                columns.append(ColumnDefect(x=x, y0=box.y0, y1=box.y1))
            occupied[box.y0 : box.y1, max(x - 3, 0) : x + 4] = True
        hot_columns = tuple(columns[: cfg.n_hot_columns])
        dead_columns = tuple(columns[cfg.n_hot_columns :])

        def place(count: int) -> tuple[tuple[int, int], ...]:
            positions: list[tuple[int, int]] = []
            while len(positions) < count:
                x, y = int(rng.integers(0, nx)), int(rng.integers(0, ny))
                if occupied[y, x]:
                    continue
                positions.append((x, y))
                occupied[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4] = True
            return tuple(positions)

        hot_pixels = place(cfg.n_hot_pixels)
        cold_pixels = place(cfg.n_cold_pixels)

        low, high = np.log(cfg.hot_pixel_current_range[0]), np.log(cfg.hot_pixel_current_range[1])
        for x, y in hot_pixels:
            dark[y, x] = float(np.exp(rng.uniform(low, high)))
        for col in hot_columns:
            dark[col.y0 : col.y1, col.x] = cfg.hot_column_current

        # Illumination: flat centre, quartic fall-off to 1 - vignetting at
        # the corners.
        u = (np.arange(nx, dtype=np.float32) - (nx - 1) / 2.0) / ((nx - 1) / 2.0)
        v = (np.arange(ny, dtype=np.float32) - (ny - 1) / 2.0) / ((ny - 1) / 2.0)
        r2 = (u[None, :] ** 2 + v[:, None] ** 2) / 2.0
        illumination = (1.0 - cfg.vignetting * r2 * r2).astype(np.float32)

        response = rng.standard_normal((ny, nx), dtype=np.float32)
        response *= cfg.prnu
        response += 1.0
        for x, y in cold_pixels:
            response[y, x] = float(rng.uniform(*cfg.cold_pixel_response))
        for col in dead_columns:
            response[col.y0 : col.y1, col.x] = cfg.dead_column_response

        # Fixed bias pattern in readout coordinates of each amp: decay over
        # the first columns read and a faint ramp along the rows read.
        bias_pattern = np.empty((ny, nx), dtype=np.float32)
        for amp in amps:
            h, w = amp.data_shape
            cols = np.arange(w, dtype=np.float64)
            rows = np.arange(h, dtype=np.float64)
            pattern = cfg.bias_pattern_amplitude * (
                np.exp(-cols / cfg.bias_pattern_scale)[None, :] + 0.2 * (rows / h)[:, None]
            )
            bias_pattern[amp.detector_slice] = amp.to_detector_orientation(pattern)

        return CameraModelTruth(
            gains=gains,
            read_noise=read_noise,
            read_noise_adu=read_noise_adu,
            bias_level=bias_level,
            dark_current=dark,
            amp_dark_current=amp_dark,
            hot_pixels=hot_pixels,
            hot_columns=hot_columns,
            cold_pixels=cold_pixels,
            dead_columns=dead_columns,
            illumination=illumination,
            response=response,
            bias_pattern=bias_pattern,
        )

    # ------------------------------------------------------------------
    # Exposures
    # ------------------------------------------------------------------
    def expose(
        self,
        image_type: str,
        exposure_time: float = 0.0,
        *,
        flux: float = 0.0,
        dark_time: float | None = None,
        first_after_idle: bool = False,
        exposure_index: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Make the raw amplifier arrays of one exposure.

        Parameters are those of `simulate`; returns only
        `SimulatedExposure.amps`.
        """
        return self.simulate(
            image_type,
            exposure_time,
            flux=flux,
            dark_time=dark_time,
            first_after_idle=first_after_idle,
            exposure_index=exposure_index,
        ).amps

    def simulate(
        self,
        image_type: str,
        exposure_time: float = 0.0,
        *,
        flux: float = 0.0,
        dark_time: float | None = None,
        first_after_idle: bool = False,
        exposure_index: int | None = None,
    ) -> SimulatedExposure:
        """Simulate one exposure.

        Parameters
        ----------
        image_type : `str`
            ``BIAS`` (exposure time must be 0), ``DARK`` (shutter closed,
            ``flux`` must be 0), or an illuminated type (``FLAT``, ...).
        exposure_time : `float`, optional
            Shutter-open time, s.
        flux : `float`, optional
            Illumination at the detector centre, e-/s/pixel (illuminated
            types only).
        dark_time : `float`, optional
            Time over which dark current accumulates, s; defaults to the
            exposure time.
        first_after_idle : `bool`, optional
            Add the transient of the first frame after an idle period.
        exposure_index : `int`, optional
            Seeds this exposure's noise; by default the model counts its
            exposures, so a sequence of calls is reproducible.

        Returns
        -------
        exposure : `SimulatedExposure`
            Raw amp arrays and the cosmic-ray truth.

        Raises
        ------
        ValueError
            For an unknown image type or inconsistent parameters.
        """
        image_type = image_type.upper()
        if image_type not in SHUTTERED_TYPES | ILLUMINATED_TYPES:
            known = sorted(SHUTTERED_TYPES | ILLUMINATED_TYPES)
            raise ValueError(f"Unknown image type {image_type!r}; known: {known}")
        if exposure_time < 0 or flux < 0:
            raise ValueError(f"exposure_time and flux must be >= 0, got {exposure_time}, {flux}")
        if image_type == "BIAS" and exposure_time != 0:
            raise ValueError(f"A BIAS has zero exposure time, got {exposure_time}")
        if image_type in SHUTTERED_TYPES and flux != 0:
            raise ValueError(f"A {image_type} is taken with the shutter closed; flux must be 0, got {flux}")
        dark_time = exposure_time if dark_time is None else dark_time
        if dark_time < exposure_time:
            raise ValueError(f"dark_time {dark_time} is shorter than exposure_time {exposure_time}")

        if exposure_index is None:
            exposure_index = self._next_exposure_index
        self._next_exposure_index = exposure_index + 1
        rng = np.random.default_rng([self.seed, 1, exposure_index])

        cfg = self.config
        truth = self.truth
        mean_electrons = truth.dark_current * dark_time
        if flux > 0 and exposure_time > 0:
            mean_electrons = mean_electrons + (flux * exposure_time) * truth.flat_field
        if dark_time > 0 or flux > 0:
            electrons = rng.poisson(mean_electrons).astype(np.float32)
        else:
            electrons = np.zeros(self.geometry.assembled_shape, dtype=np.float32)
        cr_mask = self._add_cosmic_rays(electrons, dark_time + cfg.readout_time, rng)

        amps: dict[str, np.ndarray] = {}
        for amp in self.geometry:
            name = amp.name
            gain = truth.gains[name]
            full_well = cfg.full_well if cfg.full_well is not None else self.detector.saturation * gain
            signal = np.minimum(electrons[amp.detector_slice], full_well) / gain
            data = amp.to_readout_orientation(signal + truth.bias_pattern[amp.detector_slice])

            ny_raw = amp.raw_shape[0]
            raw = rng.standard_normal(amp.raw_shape, dtype=np.float32)
            raw *= truth.read_noise_adu[name]
            # Per-exposure bias: level jitter plus a slow drift along rows
            # (present in every column, so the serial overscan follows it).
            phase = rng.uniform(0.0, 2.0 * np.pi)
            rows = np.arange(ny_raw, dtype=np.float64)
            drift = cfg.bias_drift_amplitude * np.sin(
                2.0 * np.pi * rows / (cfg.bias_drift_period * ny_raw) + phase
            )
            level = truth.bias_level[name] + rng.normal(0.0, 1.0)
            raw += (level + drift).astype(np.float32)[:, None]
            raw[amp.data_slice] += data.astype(np.float32)
            if first_after_idle:
                data_rows = np.arange(amp.data.height, dtype=np.float64)
                decay_rows = cfg.transient_scale * amp.data.height
                transient = cfg.transient_amplitude * np.exp(-data_rows / decay_rows)
                raw[amp.data_slice] += transient.astype(np.float32)[:, None]
            np.clip(raw, 0, ADC_MAX, out=raw)
            amps[name] = np.rint(raw).astype(np.int32)
        return SimulatedExposure(amps=amps, cosmic_ray_mask=cr_mask, exposure_index=exposure_index)

    def _add_cosmic_rays(self, electrons: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
        """Deposit cosmic-ray tracks into ``electrons`` in place.

        Returns the boolean mask of the pixels hit.
        """
        cfg = self.config
        ny, nx = electrons.shape
        mask = np.zeros((ny, nx), dtype=bool)
        count = rng.poisson(cfg.cosmic_ray_rate * ny * nx * seconds)
        for _ in range(int(count)):
            x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
            length = rng.uniform(1.0, cfg.cosmic_ray_max_length)
            angle = rng.uniform(0.0, np.pi)
            steps = int(np.ceil(length)) * 2 + 1
            t = np.linspace(0.0, length, steps)
            xs = np.clip((x0 + t * np.cos(angle)).astype(int), 0, nx - 1)
            ys = np.clip((y0 + t * np.sin(angle)).astype(int), 0, ny - 1)
            pixels = np.unique(ys * nx + xs)
            charge = rng.uniform(*cfg.cosmic_ray_charge, size=pixels.size)
            electrons.reshape(-1)[pixels] += charge.astype(np.float32)
            mask.reshape(-1)[pixels] = True
        return mask
