"""MakeLatissCalibrations: LATISS biases, darks, flats, defects, PTC and gains."""

from __future__ import annotations

__all__ = ["MakeLatissCalibrations"]

import types
from typing import Any

from ..control import LATISS, BaseCamera
from ..salobj import Domain
from ..script import ConfigError, ConfigProblem
from .base_make_calibrations import BaseMakeCalibrations
from .image_plan import flat_pairs


class MakeLatissCalibrations(BaseMakeCalibrations):
    """Make LATISS combined calibrations (``auxtel/make_latiss_calibrations.py``).

    Loaded from the ATQueue. See ``doc/procedures/latiss-calibrations.rst``
    for every option and message.

    Parameters
    ----------
    index : `int`
        SAL index.
    domain : `Domain`, optional
        Domain to use.
    """

    instrument_name = "LATISS"
    ocps_index = 1
    schema_name = "make_latiss_calibrations"
    oods_name = "ATOODS"

    def __init__(self, index: int, *, domain: Domain | None = None) -> None:
        super().__init__(
            index,
            descr="Take LATISS calibration images; verify, generate and certify calibrations.",
            domain=domain,
        )
        # False when the default do_gain_from_flat_pairs cannot apply (no flat pair).
        self.gain_from_flat_pairs = True

    def make_camera(self, domain: Domain) -> BaseCamera:
        """LATISS: ATCamera, ATSpectrograph, ATHeaderService, ATOODS."""
        return LATISS(domain, self.log)

    def image_types(self) -> list[str]:
        """From script_mode: BIAS, DARK, BIAS_DARK or BIAS_DARK_FLAT."""
        assert self.config is not None
        return {
            "BIAS": ["BIAS"],
            "DARK": ["DARK"],
            "BIAS_DARK": ["BIAS", "DARK"],
            "BIAS_DARK_FLAT": ["BIAS", "DARK", "FLAT"],
        }[self.config.script_mode]

    def exposure_times_option(self, image_type: str) -> float | list[float]:
        """exp_times_dark / exp_times_flat; biases are 0 s."""
        assert self.config is not None
        if image_type == "BIAS":
            return 0.0
        value: float | list[float] = getattr(self.config, f"exp_times_{image_type.lower()}")
        return value

    def setup_instrument_options(self) -> dict[str, Any]:
        """Filter and grating for the flats."""
        assert self.config is not None
        return {"filter": self.config.filter, "grating": self.config.grating}

    async def find_flat_filter(self) -> str | None:
        """Return the configured filter and grating, or those the ATSpectrograph reports in the beam.

        None if the run takes no flats, or the spectrograph has not
        reported them (then a flat of any filter satisfies the preflight).
        """
        assert self.config is not None
        if "FLAT" not in self.image_types():
            return None
        chosen: dict[str, str | int | None] = {"filter": self.config.filter, "grating": self.config.grating}
        events = {"filter": "evt_reportedFilterPosition", "grating": "evt_reportedDisperserPosition"}
        names = {
            "filter": [f.name for f in self.instrument.filters],
            "grating": list(self.instrument.gratings),
        }
        camera = self.camera
        assert isinstance(camera, LATISS)
        resolved: dict[str, str] = {}
        for key, value in chosen.items():
            if value is None:
                try:
                    data = await getattr(camera.spectrograph, events[key]).aget(timeout=camera.fast_timeout)
                except TimeoutError:
                    return None
                value = str(data.name)
            # configure accepted a name or a slot of the wheel.
            resolved[key] = names[key][value] if isinstance(value, int) else str(value)
        return self.instrument.physical_filter(resolved["filter"], resolved["grating"])

    @property
    def extra_steps(self) -> list[str]:
        """DEFECTS, then PTC or GAIN, in BIAS_DARK_FLAT mode as configured."""
        assert self.config is not None
        if self.config.script_mode != "BIAS_DARK_FLAT":
            return []
        steps = []
        if self.config.do_defects:
            steps.append("DEFECTS")
        if self.config.do_ptc:
            steps.append("PTC")
        elif self.config.do_gain_from_flat_pairs and self.gain_from_flat_pairs:
            steps.append("GAIN")
        return steps

    def configure_instrument(self, config: types.SimpleNamespace) -> None:
        """Check mode-dependent options, flat pairs, filter and grating names.

        With no two consecutive flats of the same exposure time, an explicit
        ``do_gain_from_flat_pairs: true`` is an error; the default only logs
        a warning that no gain will be estimated.
        """
        self.gain_from_flat_pairs = True
        for option in ("do_ptc", "do_defects"):
            if getattr(config, option) and config.script_mode != "BIAS_DARK_FLAT":
                raise ConfigError(
                    f"{option} is true but script_mode is {config.script_mode}; "
                    f"{option} needs script_mode BIAS_DARK_FLAT"
                )
        if config.script_mode != "BIAS_DARK_FLAT" and config.do_gain_from_flat_pairs:
            self.log.info(
                "No flats in script_mode %s: do_gain_from_flat_pairs does not apply", config.script_mode
            )
        flat_plan = next((p for p in self.plans if p.image_type == "FLAT"), None)
        if flat_plan is not None:
            times = flat_plan.kept_exposure_times
            pairs = flat_pairs(times)
            if config.do_ptc:
                unpaired = len(times) - 2 * len(pairs)
                if unpaired or len(times) % 2:
                    raise ConfigError(
                        f"do_ptc is true but exp_times_flat {list(times)} does not form pairs of equal "
                        "exposure times; give each time twice in a row, e.g. [1, 1, 2, 2]"
                    )
            elif config.do_gain_from_flat_pairs and not pairs:
                if "do_gain_from_flat_pairs" in self.given_options:
                    raise ConfigError(
                        f"do_gain_from_flat_pairs is true but exp_times_flat {list(times)} has no two "
                        "consecutive flats with the same exposure time; add a pair or set "
                        "do_gain_from_flat_pairs: false",
                        [
                            ConfigProblem(
                                f"do_gain_from_flat_pairs is true but exp_times_flat {list(times)} has no "
                                "two consecutive flats with the same exposure time; add a pair or set "
                                "do_gain_from_flat_pairs: false",
                                None,
                                "do_gain_from_flat_pairs",
                            )
                        ],
                    )
                # The default, not the operator's choice: take the flats, skip the gain.
                self.gain_from_flat_pairs = False
                self.log.warning(
                    "No gain will be estimated: no flat pair shares an exposure time in exp_times_flat %s "
                    "(do_gain_from_flat_pairs defaults to true; give two consecutive flats the same time "
                    "to estimate it)",
                    list(times),
                )
        problems = []
        for option, names in (
            ("filter", [f.name for f in self.instrument.filters]),
            ("grating", list(self.instrument.gratings)),
        ):
            value = getattr(config, option)
            if isinstance(value, str) and value not in names:
                message = f"{option} {value!r} is not a LATISS {option}; valid: {', '.join(names)}"
                problems.append(ConfigProblem(message, None, option))
            if isinstance(value, int) and not 0 <= value < len(names):
                message = f"{option} slot {value} does not exist; valid slots 0..{len(names) - 1}"
                problems.append(ConfigProblem(message, None, option))
        if problems:
            raise ConfigError("; ".join(p.message for p in problems), problems)
