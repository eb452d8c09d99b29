"""Fixtures of the queue page tests: a queue in this process, the bridge, the server, a page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import ScriptQueue
from lsst.ts.calibscripts.ui.queue_bridge import QueueBridge
from lsst.ts.calibscripts.ui.server import make_app

from .page_client import PageClient


@pytest.fixture
def local_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)


@pytest.fixture
async def queue(local_transport: None) -> AsyncIterator[ScriptQueue]:
    async with ScriptQueue(2, initial_state=sal.State.ENABLED) as queue:
        queue.model.stop_timeout = 1.0
        yield queue


@pytest.fixture
async def bridge(queue: ScriptQueue) -> AsyncIterator[QueueBridge]:
    async with sal.Domain() as domain, QueueBridge(domain, 2, name="ATQueue") as bridge:
        yield bridge


@pytest.fixture
async def page(bridge: QueueBridge) -> AsyncIterator[PageClient]:
    async with TestClient(TestServer(make_app(bridge))) as client:
        page = PageClient(client)
        await page.connect()
        try:
            yield page
        finally:
            await page.close()
