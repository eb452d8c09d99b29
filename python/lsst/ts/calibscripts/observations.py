"""What Rubin calls an image: image types, observation ids and exposure ids.

The one module both sides need: the observatory-control layer
(`lsst.ts.calibscripts.control`) and the simulated cameras name images and
image types the way the Butler side (`lsst.ts.calibscripts.cp`) reads them.
It sits at the bottom of the package and imports nothing of it.
"""

from __future__ import annotations

__all__ = [
    "IMAGE_TYPES",
    "SHUTTER_CLOSED_IMAGE_TYPES",
    "exposure_id",
    "exposure_id_from_obs_id",
    "obs_id",
]

import re

#: Image types a Rubin camera takes (the ``imageType`` of ``takeImages``).
IMAGE_TYPES: tuple[str, ...] = (
    "BIAS",
    "DARK",
    "FLAT",
    "OBJECT",
    "ENGTEST",
    "ACQ",
    "CWFS",
    "FOCUS",
    "STUTTERED",
    "INDOME",
    "CBP",
    "SFLAT",
    "DFLAT",
)

#: Image types taken with the shutter closed.
SHUTTER_CLOSED_IMAGE_TYPES: frozenset[str] = frozenset({"BIAS", "DARK"})

_OBS_ID_RE = re.compile(r"^[A-Z]{2}_[A-Z]_(\d{8})_(\d{6})$")


def exposure_id(day_obs: int, seq_num: int) -> int:
    """Return the Rubin exposure id ``day_obs * 100000 + seq_num``.

    E.g. day_obs 20220929, seq_num 1 -> 2022092900001.

    Raises
    ------
    ValueError
        If ``seq_num`` is not in 1..99999.
    """
    if not 0 < seq_num < 100_000:
        raise ValueError(f"seq_num must be in 1..99999, got {seq_num}")
    return day_obs * 100_000 + seq_num


def obs_id(prefix: str, day_obs: int, seq_num: int, controller: str = "O") -> str:
    """Return the observation id a camera writes, e.g. ``AT_O_20220929_000001``.

    Parameters
    ----------
    prefix : `str`
        Two-letter camera code (``AT``, ``CC``, ``MC``).
    day_obs : `int`
        Observing day ``YYYYMMDD``.
    seq_num : `int`
        Sequence number within the day.
    controller : `str`, optional
        Controller code (``O`` for the OCS).
    """
    return f"{prefix}_{controller}_{day_obs:08d}_{seq_num:06d}"


def exposure_id_from_obs_id(obs_id: str) -> int:
    """Return the Rubin exposure id of an observation id.

    Parameters
    ----------
    obs_id
        Observation id as the camera writes it, ``<2 letters>_<controller>_
        <YYYYMMDD>_<NNNNNN>``, e.g. ``AT_O_20220929_000001``.

    Returns
    -------
    exposure_id
        ``int(YYYYMMDD + NNNNNN[1:])``, e.g. ``2022092900001``.

    Raises
    ------
    ValueError
        If ``obs_id`` does not have that form or the sequence number does
        not fit in five digits.
    """
    match = _OBS_ID_RE.match(obs_id)
    if match is None:
        raise ValueError(f"Observation id {obs_id!r} is not of the form AT_O_YYYYMMDD_NNNNNN.")
    day_obs, seq_num = match.groups()
    if seq_num[0] != "0":
        raise ValueError(f"Sequence number of {obs_id!r} does not fit in an exposure id (max 99999).")
    return int(day_obs + seq_num[1:])
