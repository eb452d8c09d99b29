"""Component names, SAL index limits and the user's identity (salobj's ``base`` module)."""

from __future__ import annotations

__all__ = [
    "LOCAL_HOST",
    "MAX_SAL_INDEX",
    "WildcardIndexError",
    "get_user_host",
    "name_to_name_index",
]

import getpass
import re
import socket

#: The loopback address.
LOCAL_HOST = "127.0.0.1"

#: Largest SAL index (inclusive): indices are 32-bit signed ints.
MAX_SAL_INDEX = (1 << 31) - 1

_NAME_REGEX = re.compile(r"(?P<name>[a-zA-Z_-][a-zA-Z0-9_-]*)(:(?P<index>\d+|\*))?$")


class WildcardIndexError(ValueError):
    """A component name was given with the wildcard index ``*``.

    Parameters
    ----------
    name : `str`
        The component name (without the index).
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"The index for component {name!r} is a wildcard ('*').")
        self.name = name


def get_user_host() -> str:
    """Return ``user@host``, the identity of a process's Remotes."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def name_to_name_index(name: str) -> tuple[str, int]:
    """Split ``"Name"`` or ``"Name:index"`` into the name and the index (0 if none).

    Parameters
    ----------
    name : `str`
        Component name, optionally followed by ``:index``.

    Returns
    -------
    name, index : `tuple` [`str`, `int`]
        The name and the index.

    Raises
    ------
    WildcardIndexError
        If the index is ``*``.
    ValueError
        If ``name`` has another form (spaces, an empty or non-numeric index).
    """
    match = _NAME_REGEX.match(name)
    if not match:
        raise ValueError(f"name {name!r} is not of the form 'name' or 'name:index'")
    if match["index"] is None:
        return match["name"], 0
    if match["index"] == "*":
        raise WildcardIndexError(match["name"])
    return match["name"], int(match["index"])
