"""Fixtures for ScriptQueue tests: a queue over each transport, and an operator's client.

Over the in-process transport the queue runs scripts as tasks in the test's
process; over Redis (a private ``redis-server``) each script is a process.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue import ScriptQueue
from lsst.ts.calibscripts.resources import scripts_dir
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR

from .queue_client import QueueClient

#: Stop timeout of the queues under test (s): short, so that the test of a
#: script that ignores ``stop`` is quick.
STOP_TIMEOUT = 1.0

# A script that ignores the first request to stop (cancellation of run).
_STUBBORN = '''
#!/usr/bin/env python
import asyncio
import types

from lsst.ts.calibscripts.script import BaseScript


class StubbornScript(BaseScript):
    """Run until cancelled twice."""

    def __init__(self, index, *, domain=None):
        super().__init__(index, descr="Ignore the first stop.", domain=domain)

    @classmethod
    def get_schema(cls):
        return None

    async def configure(self, config: types.SimpleNamespace) -> None:
        pass

    def set_metadata(self, metadata: types.SimpleNamespace) -> None:
        metadata.duration = 1

    async def run(self) -> None:
        await self.checkpoint("started")
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            self.log.warning("Ignoring stop")
        await asyncio.Future()


if __name__ == "__main__":
    StubbornScript.main()
'''

_BROKEN = """
#!/usr/bin/env python
import no_such_module_for_calibscripts_tests
"""


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["local", "redis"])
def transport_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Select each transport in turn, through the environment."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
        monkeypatch.setenv(REDIS_URL_ENV_VAR, server.url)
    else:
        monkeypatch.delenv(sal.TRANSPORT_ENV_VAR, raising=False)
    return str(request.param)


@pytest.fixture
def external_dir(tmp_path: Path) -> Path:
    """External scripts: a copy of the sleep script, a stubborn one, a broken one, and non-scripts."""
    root = tmp_path / "external"
    (root / "more").mkdir(parents=True)
    (root / "_hidden").mkdir()
    shutil.copy2(scripts_dir() / "examples" / "sleep.py", root / "more" / "sleep_copy.py")
    for name, text in (
        ("stubborn.py", _STUBBORN),
        ("broken.py", _BROKEN),
        ("_private.py", _BROKEN),
        ("_hidden/hidden.py", _BROKEN),
    ):
        (root / name).write_text(textwrap.dedent(text).lstrip())
        (root / name).chmod(0o755)
    (root / "not_executable.py").write_text("")
    (root / "README.txt").write_text("not a script")
    return root


@pytest.fixture
async def queue(transport_name: str, external_dir: Path) -> AsyncIterator[ScriptQueue]:
    async with ScriptQueue(2, external_dir=external_dir, initial_state=sal.State.ENABLED) as queue:
        queue.model.stop_timeout = STOP_TIMEOUT
        yield queue


@pytest.fixture
async def client(queue: ScriptQueue) -> AsyncIterator[QueueClient]:
    # Its own domain: over Redis, the client's messages cross the server.
    async with sal.Domain() as domain:
        remote = sal.Remote(domain, "ScriptQueue", 2)
        client = QueueClient(remote)
        async with remote:
            await client.wait_queue(lambda q: q.enabled, "the queue to be enabled")
            yield client
