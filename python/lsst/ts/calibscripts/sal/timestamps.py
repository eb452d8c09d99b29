"""TAI time, the time scale of every SAL timestamp."""

__all__ = ["TAI_MINUS_UTC", "current_tai", "tai_from_utc"]

import time

#: TAI - UTC in seconds, constant since the leap second of 2016-12-31;
#: IERS Bulletin C has announced no leap second since.
TAI_MINUS_UTC = 37.0


def current_tai() -> float:
    """Return the current TAI time as unix seconds (SAL's convention)."""
    return time.time() + TAI_MINUS_UTC


def tai_from_utc(utc_unix: float) -> float:
    """Convert UTC unix seconds to TAI unix seconds."""
    return utc_unix + TAI_MINUS_UTC
