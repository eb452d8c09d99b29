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
