"""Helpers for tests of components built on the kernel."""

from __future__ import annotations

__all__ = [
    "assertRaisesAckError",
    "assertRaisesAckTimeoutError",
    "assert_next_summary_state",
    "set_random_lsst_dds_partition_prefix",
    "set_random_topic_subname",
    "set_test_topic_subname",
]

import base64
import contextlib
import os
import secrets
import warnings
from collections.abc import Iterator

from .ack_errors import AckError, AckTimeoutError
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


def set_test_topic_subname(randomize: bool = False) -> None:
    """Set ``$LSST_TOPIC_SUBNAME`` for a test, as salobj does.

    Parameters
    ----------
    randomize : `bool`, optional
        A random sub-name (True), or one made from the process id (False:
        the tests of one process share it; give each test's components
        their own SAL indices).
    """
    if randomize:
        suffix = base64.urlsafe_b64encode(os.urandom(12)).decode()
    else:
        pid = os.getpid()
        suffix = base64.urlsafe_b64encode(pid.to_bytes((pid.bit_length() + 7) // 8, "big")).decode()
    os.environ[TOPIC_SUBNAME_ENV_VAR] = "test_" + suffix.replace("=", "").replace("-", "")


def set_random_lsst_dds_partition_prefix() -> None:
    """Do what `set_test_topic_subname` does (deprecated salobj name)."""
    warnings.warn("Call set_test_topic_subname instead", DeprecationWarning, stacklevel=2)
    set_test_topic_subname()


@contextlib.contextmanager
def assertRaisesAckError(
    ack: int | None = None, error: int | None = None, result_contains: str | None = None
) -> Iterator[None]:
    """Assert that the body raises `AckError` (or `AckTimeoutError`) with these values.

    Parameters
    ----------
    ack : `int`, optional
        Expected ``ackcmd.ack`` (a `SalRetCode`); not checked if None.
    error : `int`, optional
        Expected ``ackcmd.error``; not checked if None.
    result_contains : `str`, optional
        Text ``ackcmd.result`` must contain; not checked if None.
    """
    try:
        yield
    except AckError as e:
        if ack is not None and e.ackcmd.ack != ack:
            raise AssertionError(f"ackcmd.ack={e.ackcmd.ack} instead of {ack}") from e
        if error is not None and e.ackcmd.error != error:
            raise AssertionError(f"ackcmd.error={e.ackcmd.error} instead of {error}") from e
        if result_contains is not None and result_contains not in e.ackcmd.result:
            raise AssertionError(f"ackcmd.result={e.ackcmd.result} does not contain {result_contains}") from e
    else:
        raise AssertionError("AckError not raised")


@contextlib.contextmanager
def assertRaisesAckTimeoutError(ack: int | None = None, error: int | None = None) -> Iterator[None]:
    """Assert that the body raises `AckTimeoutError`; check the last acknowledgement seen.

    Parameters
    ----------
    ack : `int`, optional
        Expected ``ackcmd.ack`` (``CMD_NOACK`` if none was seen).
    error : `int`, optional
        Expected ``ackcmd.error``.
    """
    try:
        yield
    except AckTimeoutError as e:
        if ack is not None and e.ackcmd.ack != ack:
            raise AssertionError(f"ackcmd.ack={e.ackcmd.ack} instead of {ack}") from e
        if error is not None and e.ackcmd.error != error:
            raise AssertionError(f"ackcmd.error={e.ackcmd.error} instead of {error}") from e
    else:
        raise AssertionError("AckTimeoutError not raised")


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
