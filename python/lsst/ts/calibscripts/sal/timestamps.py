"""TAI time, the time scale of every SAL timestamp, and small helpers (ts_utils' names).

`lsst.ts.calibscripts.utils` publishes these under ts_utils' names.
`current_tai` adds a constant TAI - UTC (37 s, unchanged since
2017-01-01; no leap second has been announced since) instead of reading the
system TAI clock or the IERS table, so a process starts without loading
astropy; times before 2017 are converted with astropy's leap second table.
"""

from __future__ import annotations

__all__ = [
    "MAX_INT32",
    "MJD_MINUS_UNIX_SECONDS",
    "SECONDS_PER_DAY",
    "TAI_MINUS_UTC",
    "astropy_time_from_tai_unix",
    "current_tai",
    "index_generator",
    "make_done_future",
    "tai_from_utc",
    "tai_from_utc_unix",
    "utc_from_tai_unix",
]

import asyncio
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import astropy.time

#: Largest value of a 32-bit signed int: the default top of `index_generator`.
MAX_INT32 = (1 << 31) - 1

#: Seconds in a day.
SECONDS_PER_DAY = 24 * 60 * 60

#: MJD (in seconds) of the unix epoch: MJD 40587.
MJD_MINUS_UNIX_SECONDS = 40587 * SECONDS_PER_DAY

#: TAI - UTC in seconds, constant since the leap second of 2016-12-31;
#: IERS Bulletin C has announced no leap second since.
TAI_MINUS_UTC = 37.0

#: UTC unix time from which `TAI_MINUS_UTC` holds (2017-01-01T00:00:00 UTC).
_CONSTANT_SINCE_UTC = 1483228800.0


def index_generator(
    imin: int = 1, imax: int = MAX_INT32, i0: int | None = None
) -> Generator[int, None, None]:
    """Return a generator of ``i0, i0 + 1, ... imax, imin, imin + 1, ...``.

    Parameters
    ----------
    imin : `int`, optional
        Smallest index (inclusive).
    imax : `int`, optional
        Largest index (inclusive).
    i0 : `int`, optional
        First index; ``imin`` if None.

    Raises
    ------
    ValueError
        If ``imax <= imin`` or ``i0`` is outside ``[imin, imax]`` (at once,
        not at the first ``next``).
    """
    imin, imax = int(imin), int(imax)
    first = imin if i0 is None else int(i0)
    if imax <= imin:
        raise ValueError(f"imin={imin} must be less than imax={imax}")
    if not imin <= first <= imax:
        raise ValueError(f"i0={first} must be >= imin={imin} and <= imax={imax}")

    def generate() -> Generator[int, None, None]:
        index = first
        while True:
            yield index
            index = imin if index >= imax else index + 1

    return generate()


def make_done_future() -> asyncio.Future[Any]:
    """Return a future that is already done (result None)."""
    future: asyncio.Future[Any] = asyncio.Future()
    future.set_result(None)
    return future


def _tai_minus_utc_from_table(utc_unix: float) -> float:
    import astropy.time

    time_utc = astropy.time.Time(utc_unix, format="unix", scale="utc")
    return float((time_utc.tai.jd1 - time_utc.jd1 + time_utc.tai.jd2 - time_utc.jd2) * SECONDS_PER_DAY)


def tai_from_utc_unix(utc_unix: float) -> float:
    """Return TAI unix seconds given UTC unix seconds."""
    if utc_unix >= _CONSTANT_SINCE_UTC:
        return utc_unix + TAI_MINUS_UTC
    return utc_unix + round(_tai_minus_utc_from_table(utc_unix), 6)


def tai_from_utc(utc: float | str | astropy.time.Time, format: str | None = "unix") -> float:
    """Return TAI unix seconds given UTC as unix seconds, a string or an astropy time.

    Parameters
    ----------
    utc : `float`, `str` or `astropy.time.Time`
        UTC time in ``format``.
    format : `str` or None, optional
        astropy time format of ``utc``; ignored for an `astropy.time.Time`.
    """
    if isinstance(utc, int | float) and format == "unix":
        return tai_from_utc_unix(float(utc))
    import astropy.time

    if not isinstance(utc, astropy.time.Time):
        utc = astropy.time.Time(utc, scale="utc", format=format)
    return tai_from_utc_unix(float(utc.utc.unix))


def utc_from_tai_unix(tai_unix: float) -> float:
    """Return UTC unix seconds given TAI unix seconds."""
    if tai_unix >= _CONSTANT_SINCE_UTC + TAI_MINUS_UTC:
        return tai_unix - TAI_MINUS_UTC
    import astropy.time

    tai_mjd = (MJD_MINUS_UNIX_SECONDS + tai_unix) / SECONDS_PER_DAY
    return float(astropy.time.Time(tai_mjd, scale="tai", format="mjd").utc.unix)


def current_tai() -> float:
    """Return the current TAI time as unix seconds (SAL's convention)."""
    return time.time() + TAI_MINUS_UTC


def astropy_time_from_tai_unix(tai_unix: float) -> astropy.time.Time:
    """Return an astropy time (TAI scale) from TAI unix seconds."""
    import astropy.time

    tai_mjd = (MJD_MINUS_UNIX_SECONDS + tai_unix) / SECONDS_PER_DAY
    return astropy.time.Time(tai_mjd, scale="tai", format="mjd")
