"""Mock write topics: record messages instead of writing them (for unit tests)."""

from __future__ import annotations

__all__ = ["make_mock_write_topics"]

import contextlib
import types
from collections.abc import AsyncIterator

from .domain import Domain
from .interface import ComponentInterface
from .sal_info import SalInfo
from .write_topic import MockWriteTopic


@contextlib.asynccontextmanager
async def make_mock_write_topics(
    name: str, attr_names: list[str], index: int | None = None
) -> AsyncIterator[types.SimpleNamespace]:
    """Make a namespace of `MockWriteTopic` by attribute name, to test code that writes topics.

    Parameters
    ----------
    name : `str`
        Component name.
    attr_names : `list` [`str`]
        Topics, e.g. ``["tel_temperature", "evt_lightningStrike"]``.
    index : `int` or None, optional
        SAL index; None means 0 for a non-indexed component, 1 otherwise.

    Raises
    ------
    ValueError
        If ``attr_names`` is empty.
    """
    if not attr_names:
        raise ValueError("You must provide one or more topic attr_names")
    if index is None:
        index = 1 if ComponentInterface.load(name).indexed else 0
    async with Domain() as domain, SalInfo(domain, name, index) as salinfo:
        yield types.SimpleNamespace(
            **{attr_name: MockWriteTopic(salinfo=salinfo, attr_name=attr_name) for attr_name in attr_names}
        )
