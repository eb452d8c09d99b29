"""The ``lsst.ts.utils`` names that scripts, CSCs and their tests use.

Port code written for Rubin's ts_utils by changing ``from lsst.ts import
utils`` to ``from lsst.ts.calibscripts import utils``. TAI is the time scale
of every SAL timestamp.

Differences from ts_utils: `current_tai` adds a constant TAI - UTC (37 s,
unchanged since 2017-01-01; no leap second has been announced since) instead
of reading the system TAI clock or the IERS table, so a process starts
without loading astropy; times before 2017 are converted with astropy's leap
second table. The image name service client is not provided.
"""

from __future__ import annotations

__all__ = [
    "MAX_INT32",
    "MJD_MINUS_UNIX_SECONDS",
    "SECONDS_PER_DAY",
    "TAI_MINUS_UTC",
    "angle_diff",
    "angle_wrap_center",
    "angle_wrap_nonnegative",
    "assert_angles_almost_equal",
    "astropy_time_from_tai_unix",
    "current_tai",
    "index_generator",
    "make_done_future",
    "modify_environ",
    "tai_from_utc",
    "tai_from_utc_unix",
    "utc_from_tai_unix",
]

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .sal.timestamps import (
    MAX_INT32,
    MJD_MINUS_UNIX_SECONDS,
    SECONDS_PER_DAY,
    TAI_MINUS_UTC,
    astropy_time_from_tai_unix,
    current_tai,
    index_generator,
    make_done_future,
    tai_from_utc,
    tai_from_utc_unix,
    utc_from_tai_unix,
)

if TYPE_CHECKING:
    import astropy.coordinates


def _angle(value: Any) -> astropy.coordinates.Angle:
    import astropy.coordinates
    import astropy.units as u

    return astropy.coordinates.Angle(value, u.deg)


def angle_wrap_center(angle: Any) -> astropy.coordinates.Angle:
    """Return an angle (deg, or an astropy angle) wrapped into [-180, 180) deg."""
    import astropy.units as u

    return _angle(angle).wrap_at(180 * u.deg)


def angle_wrap_nonnegative(angle: Any) -> astropy.coordinates.Angle:
    """Return an angle wrapped into [0, 360) deg."""
    import astropy.units as u

    return _angle(angle).wrap_at(360 * u.deg)


def angle_diff(angle1: Any, angle2: Any) -> astropy.coordinates.Angle:
    """Return ``angle1 - angle2`` wrapped into [-180, 180) deg."""
    return angle_wrap_center(_angle(angle1) - _angle(angle2))


def assert_angles_almost_equal(angle1: Any, angle2: Any, max_diff: float = 1e-5) -> None:
    """Raise `AssertionError` if two angles differ by more than ``max_diff`` deg (wrapped)."""
    diff = abs(angle_diff(angle1, angle2).deg)
    if diff >= max_diff:
        raise AssertionError(f"{angle1} and {angle2} differ by {diff} deg >= {max_diff} deg")


@contextlib.contextmanager
def modify_environ(**kwargs: str | None) -> Iterator[None]:
    """Set (or, with None, delete) environment variables for the duration of a ``with``.

    Raises
    ------
    RuntimeError
        If a value is neither a `str` nor None.
    """
    bad = {name: value for name, value in kwargs.items() if not (value is None or isinstance(value, str))}
    if bad:
        raise RuntimeError(f"Values must be str or None: {bad}")
    saved = {name: os.environ.get(name) for name in kwargs}
    try:
        for name, value in kwargs.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
