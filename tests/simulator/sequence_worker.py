"""Allocate sequence numbers in a child process (kept light: spawned children import it)."""

from __future__ import annotations

import datetime

from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.simulator.image_names import ImageNameSource

#: A fixed time, so that every allocation in a test falls on one observing day.
WHEN = datetime.datetime(2022, 9, 30, 3, tzinfo=datetime.UTC)


def allocate(repo: str, count: int) -> list[int]:
    """Allocate ``count`` LATISS sequence numbers for ``repo``; return them.

    Parameters
    ----------
    repo : `str`
        Repository root.
    count : `int`
        How many numbers to allocate.

    Returns
    -------
    seq_nums : `list` [`int`]
        The numbers, in allocation order.
    """
    names = ImageNameSource(LATISS, repo=repo)
    return [names.next(WHEN)[2] for _ in range(count)]
