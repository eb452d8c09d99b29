"""Static description of the LATISS and LSSTComCam cameras.

Detector names, serials, nominal per-amplifier gains and read noise,
saturation, and the filters (and LATISS gratings) that make up physical
filter names. These are the *nominal* values an instrument would publish in
its camera description; the simulator uses them as its truth and the
calibration tasks fall back on them when a header does not say otherwise.

The numbers are fixed data, not drawn at random, so every run and every test
sees the same camera.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ...observations import exposure_id, obs_id
from .geometry import AMP_NAMES

__all__ = [
    "LATISS",
    "LSST_COMCAM",
    "DetectorDescription",
    "FilterDescription",
    "InstrumentDescription",
    "get_instrument_description",
]


@dataclass(frozen=True)
class DetectorDescription:
    """Nominal description of one detector.

    Parameters
    ----------
    id : `int`
        Butler detector id.
    full_name : `str`
        ``<raft>_<name_in_raft>``, e.g. ``"RXX_S00"`` or ``"R22_S11"``.
    raft : `str`
        Raft name, e.g. ``"R22"``.
    name_in_raft : `str`
        Slot in the raft, e.g. ``"S11"``.
    serial : `str`
        Sensor serial number, e.g. ``"ITL-3800C-068"``.
    gains : `Mapping` [`str`, `float`]
        Nominal gain per amp, e-/ADU.
    read_noise : `Mapping` [`str`, `float`]
        Nominal read noise per amp, e-.
    saturation : `float`, optional
        ADC saturation level, ADU.
    detector_type : `str`, optional
        Vendor/type, ``"ITL"``.
    purpose : `str`, optional
        Butler ``detector.purpose``.
    """

    id: int
    full_name: str
    raft: str
    name_in_raft: str
    serial: str
    gains: Mapping[str, float]
    read_noise: Mapping[str, float]
    saturation: float = 120_000.0
    detector_type: str = "ITL"
    purpose: str = "SCIENCE"

    def __post_init__(self) -> None:
        if self.full_name != f"{self.raft}_{self.name_in_raft}":
            raise ValueError(f"full_name {self.full_name!r} is not '<raft>_<name_in_raft>'")
        for label, values in (("gains", self.gains), ("read_noise", self.read_noise)):
            if set(values) != set(AMP_NAMES):
                raise ValueError(f"Detector {self.full_name}: {label} must have exactly the amps {AMP_NAMES}")
            if any(v <= 0 for v in values.values()):
                raise ValueError(f"Detector {self.full_name}: {label} must be positive")
        # Freeze the mappings so a shared description cannot be edited in place.
        object.__setattr__(self, "gains", MappingProxyType(dict(self.gains)))
        object.__setattr__(self, "read_noise", MappingProxyType(dict(self.read_noise)))

    def __hash__(self) -> int:
        # The per-amp mappings are not hashable; the identity fields suffice.
        return hash((self.id, self.full_name, self.serial))

    @property
    def amp_names(self) -> tuple[str, ...]:
        """Amplifier names in HDU order."""
        return AMP_NAMES

    def read_noise_adu(self, amp: str) -> float:
        """Nominal read noise of an amp in ADU (read noise / gain)."""
        return self.read_noise[amp] / self.gains[amp]


@dataclass(frozen=True)
class FilterDescription:
    """A filter (or LATISS filter~grating combination) and its band.

    Parameters
    ----------
    name : `str`
        Physical filter name as the Butler knows it.
    band : `str`
        Abstract band (``"r"``, ``"white"``, ...).
    """

    name: str
    band: str


@dataclass(frozen=True)
class InstrumentDescription:
    """Nominal description of an instrument.

    Parameters
    ----------
    name : `str`
        Butler instrument name, ``"LATISS"`` or ``"LSSTComCam"``.
    obs_id_prefix : `str`
        Two-letter prefix of observation ids, ``"AT"`` or ``"CC"``.
    detectors : `tuple` [`DetectorDescription`, ...]
        Detectors ordered by id.
    filters : `tuple` [`FilterDescription`, ...]
        Filters in the filter wheel with their bands.
    gratings : `tuple` [`str`, ...]
        Dispersers (LATISS); empty for cameras without one.
    """

    name: str
    obs_id_prefix: str
    detectors: tuple[DetectorDescription, ...]
    filters: tuple[FilterDescription, ...]
    gratings: tuple[str, ...] = ()

    def detector(self, key: int | str) -> DetectorDescription:
        """Return a detector by id or full name.

        Raises
        ------
        KeyError
            If the instrument has no such detector.
        """
        for det in self.detectors:
            if det.id == key or det.full_name == key:
                return det
        known = ", ".join(f"{d.id}={d.full_name}" for d in self.detectors)
        raise KeyError(f"{self.name} has no detector {key!r}; known: {known}")

    def band(self, filter_name: str) -> str:
        """Return the band of a filter name (the part before any ``~``)."""
        base = filter_name.split("~", 1)[0]
        for f in self.filters:
            if f.name == base:
                return f.band
        raise KeyError(f"{self.name} has no filter {base!r}; known: {[f.name for f in self.filters]}")

    def physical_filter(self, filter_name: str, grating: str | None = None) -> str:
        """Compose the Butler physical filter name.

        Parameters
        ----------
        filter_name : `str`
            Filter in the beam.
        grating : `str`, optional
            Disperser in the beam (LATISS only); ``None`` means ``"empty"``.

        Returns
        -------
        physical_filter : `str`
            ``"<filter>~<grating>"`` for LATISS (``"SDSSr_65mm~empty"``), the
            filter name for cameras without gratings.
        """
        self.band(filter_name)  # validates the filter
        if not self.gratings:
            if grating not in (None, "", "empty"):
                raise ValueError(f"{self.name} has no grating; got {grating!r}")
            return filter_name
        grating = grating or "empty"
        if grating not in self.gratings:
            raise ValueError(f"{self.name} has no grating {grating!r}; known: {list(self.gratings)}")
        return f"{filter_name}~{grating}"

    def physical_filters(self) -> tuple[FilterDescription, ...]:
        """All physical filters to register, with their bands.

        For LATISS every filter~grating combination, else the filters.
        """
        if not self.gratings:
            return self.filters
        return tuple(
            FilterDescription(name=f"{f.name}~{g}", band=f.band) for f in self.filters for g in self.gratings
        )

    @staticmethod
    def exposure_id(day_obs: int, seq_num: int) -> int:
        """Rubin exposure id: ``day_obs * 100000 + seq_num`` (see `lsst.ts.calibscripts.observations`)."""
        return exposure_id(day_obs, seq_num)

    def obs_id(self, day_obs: int, seq_num: int, controller: str = "O") -> str:
        """Observation id as the camera writes it, e.g. ``AT_O_20220929_000001``."""
        return obs_id(self.obs_id_prefix, day_obs, seq_num, controller)


def _amp_values(values: tuple[float, ...]) -> dict[str, float]:
    """Pair 16 values with the amplifier names in HDU order."""
    if len(values) != len(AMP_NAMES):
        raise ValueError(f"Need {len(AMP_NAMES)} per-amp values, got {len(values)}")
    return dict(zip(AMP_NAMES, values, strict=True))


# LATISS: ITL-3800C-068. C1x gains ~1.05-1.08, C0x ~1.08-1.10 e-/ADU;
# read noise 8.0-10.3 e-. Order: C10..C17, C07..C00.
_LATISS_GAINS = (1.078, 1.047, 1.077, 1.080, 1.064, 1.066, 1.079, 1.055,
                 1.103, 1.104, 1.105, 1.084, 1.094, 1.087, 1.093, 1.097)  # fmt: skip
_LATISS_READ_NOISE = (8.4, 8.5, 8.3, 8.6, 8.4, 8.3, 8.4, 8.0,
                      8.5, 10.0, 10.3, 9.7, 9.1, 9.4, 9.9, 9.1)  # fmt: skip

LATISS = InstrumentDescription(
    name="LATISS",
    obs_id_prefix="AT",
    detectors=(
        DetectorDescription(
            id=0,
            full_name="RXX_S00",
            raft="RXX",
            name_in_raft="S00",
            serial="ITL-3800C-068",
            gains=_amp_values(_LATISS_GAINS),
            read_noise=_amp_values(_LATISS_READ_NOISE),
        ),
    ),
    filters=(
        FilterDescription("empty", "white"),
        FilterDescription("SDSSg_65mm", "g"),
        FilterDescription("SDSSr_65mm", "r"),
        FilterDescription("SDSSi_65mm", "i"),
        FilterDescription("SDSSz_65mm", "z"),
        FilterDescription("SDSSy_65mm", "y"),
        FilterDescription("BG40_65mm", "g"),
        FilterDescription("OG550_65mm", "r"),
    ),
    gratings=("empty", "ronchi170lpmm", "holo4_003", "blue300lpmm_qn1"),
)

# LSSTComCam: raft R22, S00..S22 = ids 0..8, all ITL. Gains 1.17-1.45 e-/ADU,
# read noise 5-11 e-. One row per detector, amps C10..C17, C07..C00.
_COMCAM_SERIALS = (
    "ITL-3800C-229",
    "ITL-3800C-251",
    "ITL-3800C-215",
    "ITL-3800C-326",
    "ITL-3800C-283",
    "ITL-3800C-243",
    "ITL-3800C-319",
    "ITL-3800C-209",
    "ITL-3800C-206",
)
_COMCAM_GAINS = (
    (1.31, 1.29, 1.30, 1.32, 1.28, 1.30, 1.31, 1.27, 1.33, 1.34, 1.32, 1.35, 1.31, 1.33, 1.30, 1.34),
    (1.22, 1.20, 1.21, 1.19, 1.23, 1.22, 1.20, 1.18, 1.24, 1.23, 1.25, 1.22, 1.24, 1.21, 1.23, 1.26),
    (1.38, 1.36, 1.40, 1.37, 1.39, 1.41, 1.36, 1.35, 1.42, 1.40, 1.43, 1.39, 1.41, 1.44, 1.42, 1.45),
    (1.27, 1.25, 1.26, 1.28, 1.24, 1.27, 1.29, 1.26, 1.30, 1.28, 1.31, 1.29, 1.27, 1.30, 1.32, 1.28),
    (1.17, 1.19, 1.18, 1.20, 1.21, 1.18, 1.19, 1.17, 1.22, 1.21, 1.23, 1.20, 1.22, 1.24, 1.21, 1.23),
    (1.34, 1.33, 1.35, 1.36, 1.32, 1.34, 1.37, 1.33, 1.38, 1.36, 1.39, 1.37, 1.35, 1.38, 1.40, 1.36),
    (1.25, 1.23, 1.24, 1.26, 1.22, 1.25, 1.27, 1.24, 1.28, 1.26, 1.29, 1.27, 1.25, 1.28, 1.30, 1.26),
    (1.29, 1.31, 1.28, 1.30, 1.32, 1.27, 1.30, 1.29, 1.33, 1.35, 1.31, 1.34, 1.36, 1.32, 1.33, 1.35),
    (1.20, 1.22, 1.21, 1.19, 1.23, 1.24, 1.20, 1.22, 1.25, 1.23, 1.26, 1.24, 1.22, 1.27, 1.25, 1.24),
)
_COMCAM_READ_NOISE = (
    (6.1, 6.4, 5.9, 6.2, 6.0, 6.3, 6.5, 6.1, 7.0, 7.2, 6.8, 7.1, 6.9, 7.3, 7.0, 6.7),
    (5.4, 5.2, 5.6, 5.3, 5.5, 5.1, 5.7, 5.0, 6.0, 5.8, 6.1, 5.9, 6.2, 5.8, 6.0, 6.3),
    (7.8, 8.1, 7.6, 8.0, 7.9, 8.2, 7.7, 8.3, 8.6, 8.4, 8.8, 8.5, 8.7, 8.9, 8.5, 8.6),
    (6.6, 6.8, 6.5, 6.9, 6.7, 7.0, 6.6, 6.4, 7.3, 7.1, 7.4, 7.2, 7.5, 7.0, 7.3, 7.6),
    (9.5, 9.8, 9.3, 9.9, 9.6, 10.1, 9.4, 9.7, 10.4, 10.2, 10.6, 10.3, 10.8, 10.5, 11.0, 10.7),
    (5.8, 6.0, 5.7, 6.1, 5.9, 6.2, 5.6, 6.0, 6.5, 6.3, 6.6, 6.4, 6.7, 6.3, 6.5, 6.8),
    (7.1, 7.3, 7.0, 7.4, 7.2, 7.5, 6.9, 7.3, 7.9, 7.7, 8.0, 7.8, 8.1, 7.6, 7.9, 8.2),
    (8.4, 8.7, 8.2, 8.8, 8.5, 8.9, 8.3, 8.6, 9.2, 9.0, 9.4, 9.1, 9.5, 8.9, 9.3, 9.6),
    (6.3, 6.5, 6.2, 6.6, 6.4, 6.7, 6.1, 6.5, 7.0, 6.8, 7.1, 6.9, 7.2, 6.7, 7.0, 7.3),
)

LSST_COMCAM = InstrumentDescription(
    name="LSSTComCam",
    obs_id_prefix="CC",
    detectors=tuple(
        DetectorDescription(
            id=index,
            full_name=f"R22_S{index // 3}{index % 3}",
            raft="R22",
            name_in_raft=f"S{index // 3}{index % 3}",
            serial=_COMCAM_SERIALS[index],
            gains=_amp_values(_COMCAM_GAINS[index]),
            read_noise=_amp_values(_COMCAM_READ_NOISE[index]),
        )
        for index in range(9)
    ),
    filters=(
        FilterDescription("u_02", "u"),
        FilterDescription("g_01", "g"),
        FilterDescription("r_03", "r"),
        FilterDescription("i_06", "i"),
        FilterDescription("z_03", "z"),
        FilterDescription("y_04", "y"),
    ),
)

_INSTRUMENTS: Mapping[str, InstrumentDescription] = {d.name: d for d in (LATISS, LSST_COMCAM)}


def get_instrument_description(name: str) -> InstrumentDescription:
    """Return the description of an instrument by its Butler name.

    Parameters
    ----------
    name : `str`
        ``"LATISS"`` or ``"LSSTComCam"``.

    Raises
    ------
    KeyError
        If the instrument is unknown.
    """
    try:
        return _INSTRUMENTS[name]
    except KeyError:
        raise KeyError(f"Unknown instrument {name!r}; known: {sorted(_INSTRUMENTS)}") from None
