"""Remote: the client side of a component."""

from __future__ import annotations

__all__ = ["Remote"]

import asyncio
import typing
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .domain import Domain
from .read_topic import ReadTopic
from .remote_command import AckRouter, RemoteCommand
from .sal_info import SalInfo


class Remote:
    """Talk to a component: read its events and telemetry, send it commands.

    Topics are attributes: ``evt_<name>`` and ``tel_<name>`` (`ReadTopic`),
    ``cmd_<name>`` (`RemoteCommand`).

    Must be constructed inside a running event loop; `start_task` is done
    when every topic is subscribed (await it, or use ``async with``).

    Parameters
    ----------
    domain : `Domain`
        The process's domain.
    name : `str`
        Component name.
    index : `int`, optional
        SAL index; for an indexed component 0 (or None) reads every index
        (and cannot send commands).
    readonly : `bool`, optional
        Omit commands?
    include, exclude : iterable of `str`, optional
        Only these event/telemetry names, or all but these (not both).
    evt_max_history : `int`, optional
        1 to receive the most recent value of each event on start (late
        joiner), 0 for none.
    tel_max_history : `int`, optional
        The same for telemetry.
    start : `bool`, optional
        Start automatically? If False, call `start` yourself.
    """

    def __init__(
        self,
        domain: Domain,
        name: str,
        index: int | None = None,
        *,
        readonly: bool = False,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        evt_max_history: int = 1,
        tel_max_history: int = 1,
        start: bool = True,
    ) -> None:
        if include is not None and exclude is not None:
            raise ValueError("Specify include or exclude, not both")
        self.salinfo = SalInfo(domain, name, index)
        interface = self.salinfo.interface
        names = set(interface.events) | set(interface.telemetry)
        for given in (include, exclude):
            unknown = set(given or ()) - names
            if unknown:
                raise ValueError(f"{name} has no events or telemetry named {sorted(unknown)}")
        include_set = set(include) if include is not None else None
        exclude_set = set(exclude or ())

        def wanted(topic_name: str) -> bool:
            return (include_set is None or topic_name in include_set) and topic_name not in exclude_set

        for topic in interface.events.values():
            if wanted(topic.name):
                reader = ReadTopic(salinfo=self.salinfo, definition=topic, max_history=evt_max_history)
                setattr(self, topic.attr_name, reader)
        for topic in interface.telemetry.values():
            if wanted(topic.name):
                reader = ReadTopic(salinfo=self.salinfo, definition=topic, max_history=tel_max_history)
                setattr(self, topic.attr_name, reader)
        self._router: AckRouter | None = None
        if not readonly:
            self._router = AckRouter(self.salinfo)
            for topic in interface.commands.values():
                command = RemoteCommand(salinfo=self.salinfo, definition=topic, router=self._router)
                setattr(self, topic.attr_name, command)
        self.start_task: asyncio.Future[None] = (
            asyncio.ensure_future(self.start()) if start else asyncio.get_running_loop().create_future()
        )

    if typing.TYPE_CHECKING:
        # Topic attributes are made from the interface definition at run time.
        def __getattr__(self, name: str) -> Any: ...

    async def start(self) -> None:
        """Subscribe every topic. Called automatically unless ``start=False``."""
        if self._router is not None:
            await self.salinfo.subscribe(
                self.salinfo.interface.ackcmd, self._router.on_message, history=False
            )
        await self.salinfo.start()
        if not self.start_task.done() and not isinstance(self.start_task, asyncio.Task):
            self.start_task.set_result(None)

    async def close(self) -> None:
        """Stop reading; blocked reads are cancelled. Idempotent."""
        await self.salinfo.close()

    async def __aenter__(self) -> typing.Self:
        await self.start_task
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
