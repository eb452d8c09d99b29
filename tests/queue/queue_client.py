"""QueueClient: drive a ScriptQueue through its Remote, and wait on its events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import yaml

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import Location, ScriptProcessState, ScriptState

#: Generous limit for anything the tests wait for (s); never reached when all is well.
TIMEOUT = 60.0


class QueueClient:
    """What an operator's panel does: send commands, follow ``queue`` and ``script``.

    Parameters
    ----------
    remote : `sal.Remote`
        Remote of the ScriptQueue.
    """

    def __init__(self, remote: sal.Remote) -> None:
        self.remote = remote
        self.queue: sal.BaseMessage | None = None
        self.scripts: dict[int, sal.BaseMessage] = {}
        #: Every ``script`` event, in arrival order.
        self.script_events: list[sal.BaseMessage] = []
        #: SAL indices of the scripts the queue ran, in the order it ran them.
        self.run_order: list[int] = []
        self._changed = asyncio.Condition()
        remote.evt_queue.callback = self._on_queue
        remote.evt_script.callback = self._on_script

    async def _on_queue(self, data: sal.BaseMessage) -> None:
        self.queue = data
        if data.currentSalIndex and data.currentSalIndex not in self.run_order:
            self.run_order.append(data.currentSalIndex)
        async with self._changed:
            self._changed.notify_all()

    async def _on_script(self, data: sal.BaseMessage) -> None:
        self.scripts[data.scriptSalIndex] = data
        self.script_events.append(data)
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        """Wait until ``predicate()`` is true (checked at each event)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), TIMEOUT)
            except TimeoutError:
                raise AssertionError(f"Timed out waiting for {what}; {self.summary()}") from None

    def summary(self) -> str:
        """Describe the queue and its scripts, for failure messages."""
        if self.queue is None:
            return "no queue event"
        scripts = ", ".join(
            f"{index}: {ScriptProcessState(data.processState).name}/{ScriptState(data.scriptState).name}"
            for index, data in self.scripts.items()
        )
        return (
            f"running={self.queue.running} current={self.queue.currentSalIndex} waiting={self.waiting} "
            f"past={self.past}; scripts {scripts}"
        )

    # --- the queue event -----------------------------------------------------

    @property
    def waiting(self) -> list[int]:
        assert self.queue is not None
        return list(self.queue.salIndices[: self.queue.length])

    @property
    def past(self) -> list[int]:
        assert self.queue is not None
        return list(self.queue.pastSalIndices[: self.queue.pastLength])

    async def wait_queue(self, predicate: Callable[[sal.BaseMessage], bool], what: str) -> sal.BaseMessage:
        await self.wait_for(lambda: self.queue is not None and predicate(self.queue), what)
        assert self.queue is not None
        return self.queue

    async def wait_finished(self, *indices: int) -> None:
        """Wait until these scripts are in the history and none is running."""
        await self.wait_queue(
            lambda q: set(indices) <= set(self.past) and q.currentSalIndex == 0, f"{indices} to finish"
        )

    # --- the script event ----------------------------------------------------

    async def wait_script(
        self,
        index: int,
        *,
        script_state: ScriptState | None = None,
        process_state: ScriptProcessState | None = None,
    ) -> sal.BaseMessage:
        def reached() -> bool:
            data = self.scripts.get(index)
            return (
                data is not None
                and (script_state is None or data.scriptState == script_state)
                and (process_state is None or data.processState == process_state)
            )

        await self.wait_for(reached, f"script {index} to reach {script_state!r}, {process_state!r}")
        return self.scripts[index]

    # --- commands ------------------------------------------------------------

    async def add(
        self,
        config: dict[str, Any] | str = "",
        *,
        path: str = "examples/sleep.py",
        is_standard: bool = True,
        location: int = Location.LAST,
        location_sal_index: int = 0,
        **fields: Any,
    ) -> int:
        """Add a script; return its SAL index."""
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        ack = await self.remote.cmd_add.set_start(
            isStandard=is_standard,
            path=path,
            config=text,
            location=int(location),
            locationSalIndex=location_sal_index,
            timeout=TIMEOUT,
            **fields,
        )
        return int(ack.result)

    async def command(self, name: str, **fields: Any) -> sal.BaseMessage:
        return await getattr(self.remote, f"cmd_{name}").set_start(timeout=TIMEOUT, **fields)

    async def stop_scripts(self, *indices: int, terminate: bool = False) -> None:
        await self.command("stopScripts", length=len(indices), salIndices=list(indices), terminate=terminate)
