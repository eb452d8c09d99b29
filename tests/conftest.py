"""Fixtures shared by all tests."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.sal.testing import set_random_topic_subname


@pytest.fixture(autouse=True)
def random_topic_subname(monkeypatch: pytest.MonkeyPatch) -> str:
    """Give every test its own topic namespace (no late-joiner leaks)."""
    # monkeypatch restores the variable after the test.
    monkeypatch.setenv("LSST_TOPIC_SUBNAME", "placeholder")
    return set_random_topic_subname()


@pytest.fixture(autouse=True)
def no_bootstrap_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """New simulated repositories get no reference calibrations unless a test asks.

    Making them runs three pipelines (tens of seconds); tests that want
    them pass ``bootstrap=True``. Subprocesses inherit the variable.
    """
    monkeypatch.setenv("CALIBSCRIPTS_BOOTSTRAP", "0")
