"""The page follows a queue in another process, over Redis."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR
from lsst.ts.calibscripts.ui.queue_bridge import QueueBridge
from lsst.ts.calibscripts.ui.server import make_app

from .page_client import TIMEOUT, PageClient


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with RedisServer() as server:
        yield server


async def test_page_follows_a_queue_process(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_server.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsst.ts.calibscripts.queue", "ATQueue", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = b""
        while b"Ctrl-C" not in line:
            line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
            assert line, "the queue exited early"
        async with (
            sal.Domain() as domain,
            QueueBridge(domain, 2, name="ATQueue") as bridge,
            TestClient(TestServer(make_app(bridge))) as client,
        ):
            page = PageClient(client)
            await page.connect()
            try:
                await page.wait_for(lambda: page.queue["alive"], "the queue's heartbeat")
                index = (await page.add("checkpoints: [one]\nreport: {level: WARNING}\n"))["salIndex"]
                await page.wait_script(index, "DONE", field="processState")
                await page.wait_for(lambda: page.log_of(index) == ["Reached checkpoint one"], "the log")
                assert page.scripts[index]["scriptState"] == "DONE"
            finally:
                await page.close()
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
