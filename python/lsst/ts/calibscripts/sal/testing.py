"""Helpers for tests of components built on the kernel."""

from __future__ import annotations

__all__ = ["assert_next_summary_state", "set_random_topic_subname"]

import os
import secrets

from .domain import TOPIC_SUBNAME_ENV_VAR
from .enums import State
from .read_topic import ReadTopic


def set_random_topic_subname() -> str:
    """Set ``$LSST_TOPIC_SUBNAME`` to a random value and return it.

    Components created afterwards see only each other, not those of
    earlier tests (late-joiner data included).
    """
    subname = f"test_{secrets.token_hex(6)}"
    os.environ[TOPIC_SUBNAME_ENV_VAR] = subname
    return subname


async def assert_next_summary_state(
    topic: ReadTopic, state: State, *, flush: bool = False, timeout: float = 5.0
) -> None:
    """Assert that the next ``summaryState`` message reports ``state``.

    Raises
    ------
    AssertionError
        If the state differs.
    TimeoutError
        If no message arrives in time.
    """
    data = await topic.next(flush=flush, timeout=timeout)
    actual = State(data.summaryState)
    assert actual == state, f"summaryState is {actual.name}, expected {state.name}"
