"""Image names and sequence numbers, as Rubin cameras assign them."""

from __future__ import annotations

__all__ = ["ImageNameSource", "day_obs_for"]

import datetime
import json
import os
from pathlib import Path

from ..cp.camera_description import InstrumentDescription

# Rubin's observing day changes at 12:00 UTC (UTC-12h), so a night never spans two days.
_DAY_OBS_OFFSET = datetime.timedelta(hours=12)


def day_obs_for(when: datetime.datetime) -> int:
    """Return the observing day ``YYYYMMDD`` of a time (UTC-12h rule).

    Parameters
    ----------
    when : `datetime.datetime`
        A timezone-aware time.
    """
    if when.tzinfo is None:
        raise ValueError("day_obs_for needs a timezone-aware time")
    day = (when.astimezone(datetime.UTC) - _DAY_OBS_OFFSET).date()
    return day.year * 10000 + day.month * 100 + day.day


class ImageNameSource:
    """Hand out image names whose sequence numbers never repeat.

    The last (day_obs, seq_num) is saved to ``state_file`` after every
    name, so a restarted camera continues the sequence; the sequence
    restarts at 1 on a new observing day.

    Parameters
    ----------
    instrument : `InstrumentDescription`
        Gives the image name prefix (``AT``, ``CC``).
    state_file : `pathlib.Path`
        Where the sequence is kept.
    controller : `str`, optional
        Controller code in the name (``O`` for OCS).
    """

    def __init__(self, instrument: InstrumentDescription, state_file: Path, controller: str = "O") -> None:
        self.instrument = instrument
        self.state_file = state_file
        self.controller = controller
        self._day_obs = 0
        self._seq_num = 0
        if state_file.exists():
            state = json.loads(state_file.read_text())
            self._day_obs, self._seq_num = int(state["day_obs"]), int(state["seq_num"])

    def next(self, when: datetime.datetime | None = None) -> tuple[str, int, int]:
        """Return the next ``(image_name, day_obs, seq_num)``.

        Raises
        ------
        RuntimeError
            If the day's 99999 sequence numbers are used up.
        """
        day_obs = day_obs_for(when or datetime.datetime.now(datetime.UTC))
        if day_obs > self._day_obs:
            self._day_obs, self._seq_num = day_obs, 0
        if self._seq_num >= 99_999:
            raise RuntimeError(f"No sequence numbers left for day_obs {self._day_obs}")
        self._seq_num += 1
        self._save()
        return (
            self.instrument.obs_id(self._day_obs, self._seq_num, self.controller),
            self._day_obs,
            self._seq_num,
        )

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"day_obs": self._day_obs, "seq_num": self._seq_num}))
        os.replace(tmp, self.state_file)  # atomic: a crash never leaves a half-written state
