"""Fixtures for kernel tests: a small CSC and a Remote talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lsst.ts.calibscripts import sal

from .example_csc import ExampleOcps


@pytest.fixture
async def domain() -> AsyncIterator[sal.Domain]:
    async with sal.Domain() as domain:
        yield domain


@pytest.fixture
async def csc(domain: sal.Domain) -> AsyncIterator[ExampleOcps]:
    async with ExampleOcps(1, domain=domain, initial_state=sal.State.ENABLED) as csc:
        yield csc


@pytest.fixture
async def remote(domain: sal.Domain, csc: ExampleOcps) -> AsyncIterator[sal.Remote]:
    async with sal.Remote(domain, "OCPS", 1) as remote:
        yield remote
