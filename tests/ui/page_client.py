"""PageClient: use the queue page's API as the page does, and wait on its event stream.

`serving` runs ``calibscripts ui`` itself as a task.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from lsst.ts.calibscripts.ui.cli import UiOptions, run_ui

#: Generous limit for anything the tests wait for (s); never reached when all is well.
TIMEOUT = 60.0


class PageClient:
    """Follow ``/api/events`` (a snapshot, then updates) and send requests.

    Parameters
    ----------
    client : `aiohttp.test_utils.TestClient` or `aiohttp.ClientSession`
        Client of the page's server (a session with its ``base_url``).
    """

    def __init__(self, client: TestClient | aiohttp.ClientSession) -> None:
        self.client = client
        self.queue: dict[str, Any] = {}
        self.available: dict[str, list[str]] | None = None
        self.scripts: dict[int, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []
        self.kinds: list[str] = []
        self._response: aiohttp.ClientResponse | None = None

    async def connect(self) -> None:
        """Open the event stream and read its snapshot."""
        self._response = await self.client.get("/api/events")
        assert self._response.status == 200
        assert self._response.headers["Content-Type"] == "text/event-stream"
        kind = await self._read_event()
        assert kind == "snapshot"

    async def close(self) -> None:
        if self._response is not None:
            self._response.close()

    async def _read_event(self) -> str:
        assert self._response is not None
        kind, data = "", ""
        while True:
            line = (await self._response.content.readline()).decode()
            assert line, "the event stream ended"
            line = line.rstrip("\n")
            if line.startswith(":"):
                continue  # keep-alive comment
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data += line.removeprefix("data: ")
            elif not line and kind:
                self._apply(kind, json.loads(data))
                return kind

    def _apply(self, kind: str, data: dict[str, Any]) -> None:
        self.kinds.append(kind)
        if kind == "snapshot":
            self.queue = data["queue"]
            self.available = data["available"]
            self.scripts = {script["salIndex"]: script for script in data["scripts"]}
        elif kind == "queue":
            self.queue = data
        elif kind == "script":
            self.scripts[data["salIndex"]] = data
        elif kind == "log":
            self.logs.append(data)
        elif kind == "available":
            self.available = data

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        """Read events until ``predicate()`` is true."""

        async def read_until() -> None:
            while not predicate():
                await self._read_event()

        try:
            await asyncio.wait_for(read_until(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"Timed out waiting for {what}; queue={self.queue}") from None

    async def wait_script(self, index: int, state: str, *, field: str = "scriptState") -> dict[str, Any]:
        """Wait until a script's ``field`` is ``state``; return the script."""
        await self.wait_for(
            lambda: self.scripts.get(index, {}).get(field) == state, f"script {index} {field}={state}"
        )
        return self.scripts[index]

    def log_of(self, index: int) -> list[str]:
        """Messages of one script (or the queue) received live."""
        return [log["message"] for log in self.logs if log["salIndex"] == index]

    # --- requests -----------------------------------------------------------------

    async def get(self, path: str, status: int = 200) -> dict[str, Any]:
        response = await self.client.get(path)
        body = await response.json()
        assert response.status == status, body
        return body

    async def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
        response = await self.client.post(path, json=body or {})
        answer = await response.json()
        assert response.status == status, answer
        return answer

    async def add(self, config: str, *, status: int = 200, **fields: Any) -> dict[str, Any]:
        return await self.post(
            "/api/queue/add", {"path": "examples/sleep.py", "config": config, **fields}, status=status
        )


class Banner(io.StringIO):
    """Collects what the command prints; `url` is set once the page is served."""

    def __init__(self) -> None:
        super().__init__()
        self.served = asyncio.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        if "Queue page: " in self.getvalue():
            self.served.set()
        return count

    @property
    def url(self) -> str:
        match = re.search(r"Queue page: (\S+)", self.getvalue())
        assert match, self.getvalue()
        return match.group(1)


@asynccontextmanager
async def serving(options: UiOptions) -> AsyncIterator[Banner]:
    """Run the command as a task until the block ends; yield what it printed."""
    banner, stop = Banner(), asyncio.Event()
    task = asyncio.create_task(run_ui(options, stream=banner, stop=stop))
    try:
        served = asyncio.create_task(banner.served.wait())
        done, _ = await asyncio.wait([task, served], timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        served.cancel()
        if task in done:
            task.result()  # raises the error that ended it
        assert banner.served.is_set(), f"the page was not served: {banner.getvalue()}"
        yield banner
    finally:
        stop.set()
        assert await asyncio.wait_for(task, TIMEOUT) == 0
