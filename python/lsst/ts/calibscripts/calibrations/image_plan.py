"""What images of one type a calibration script takes, checked at configure time."""

from __future__ import annotations

__all__ = ["ImagePlan", "expand_exposure_times", "flat_pairs"]

from collections.abc import Sequence
from dataclasses import dataclass

from ..script.config_errors import ConfigError

#: Two flats form a pair when their exposure times agree this well (s).
PAIR_TOLERANCE = 0.005


def expand_exposure_times(value: float | Sequence[float], n: int, n_discard: int, option: str) -> list[float]:
    """Return one exposure time per image, discarded images first.

    The procedures were written both before and after discarded images
    existed, so a list may give ``n`` values (the discarded images then
    reuse the first value) or ``n + n_discard`` values (used as given). A
    number applies to every image.

    Parameters
    ----------
    value : `float` or sequence of `float`
        The option's value.
    n, n_discard : `int`
        Number of images kept and discarded.
    option : `str`
        Name of the option, for messages.

    Raises
    ------
    ConfigError
        If a list has another length, or a time is negative.
    """
    if isinstance(value, int | float):
        times = [float(value)] * (n + n_discard)
    else:
        values = [float(v) for v in value]
        if len(values) == n + n_discard:
            times = values
        elif len(values) == n:
            times = values[:1] * n_discard + values if values else []
        else:
            accepted = f"{n}" if n_discard == 0 else f"{n} (n) or {n + n_discard} (n + n_discard)"
            raise ConfigError(
                f"{option} has {len(values)} values; it must have {accepted} values, or be a single number"
            )
    negative = [t for t in times if t < 0]
    if negative:
        raise ConfigError(f"{option} has negative exposure times {negative}")
    return times


def flat_pairs(exposure_times: Sequence[float]) -> list[tuple[int, int]]:
    """Pair consecutive images with equal exposure times, in order; return indices.

    ``[1, 1, 2, 3, 3]`` gives ``[(0, 1), (3, 4)]``.
    """
    pairs = []
    i = 0
    while i + 1 < len(exposure_times):
        if abs(exposure_times[i] - exposure_times[i + 1]) <= PAIR_TOLERANCE:
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    return pairs


@dataclass(frozen=True)
class ImagePlan:
    """The images of one type a script takes.

    Attributes
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    n : `int`
        Images kept.
    n_discard : `int`
        Images taken first and discarded.
    exposure_times : `tuple` [`float`, ...]
        One per image, discarded images first.
    """

    image_type: str
    n: int
    n_discard: int
    exposure_times: tuple[float, ...]

    @property
    def n_total(self) -> int:
        """Images taken, discarded ones included."""
        return self.n + self.n_discard

    @property
    def kept_exposure_times(self) -> tuple[float, ...]:
        """Exposure times of the kept images."""
        return self.exposure_times[self.n_discard :]

    @property
    def noun(self) -> str:
        """Plural noun for messages: biases, darks, flats."""
        return {"BIAS": "biases", "DARK": "darks", "FLAT": "flats"}[self.image_type]
