"""Remote: the client side of a component."""

from __future__ import annotations

__all__ = ["Remote"]

import asyncio
import logging
import typing
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .domain import Domain
from .read_topic import RemoteEvent, RemoteTelemetry
from .remote_command import RemoteCommand
from .sal_info import SalInfo

_log = logging.getLogger(__name__)


class Remote:
    """Talk to a component: read its events and telemetry, send it commands.

    Topics are attributes: ``evt_<name>`` (`RemoteEvent`), ``tel_<name>``
    (`RemoteTelemetry`) and ``cmd_<name>`` (`RemoteCommand`).

    Must be constructed inside a running event loop. With ``start=True``
    `start_task` is done when every topic is subscribed and late-joiner data
    delivered (await it, or use ``async with``); with ``start=False`` there
    is no ``start_task``: call `start` yourself.

    Parameters
    ----------
    domain : `Domain`
        The process's domain (a controller's ``domain`` to act in its name).
    name : `str`
        Component name.
    index : `int`, optional
        SAL index; for an indexed component 0 (or None) reads every index
        (and cannot send commands).
    readonly : `bool`, optional
        Omit commands?
    include, exclude : iterable of `str`, optional
        Only these event/telemetry names, or all but these (not both).
        Names the component does not have are ignored, as in salobj (with
        a warning in the log).
    evt_max_history : `int`, optional
        1 (default) to receive the most recent value of each event on
        start (late joiner), 0 for none.
    start : `bool`, optional
        Start automatically?
    tel_max_history : `int`, optional
        The same for telemetry; default 0 (salobj's telemetry readers have
        no history). An extension.
    **kwargs
        salobj's Kafka options (``num_messages``,
        ``consume_messages_timeout``, ``discard_out_of_order_telemetry``,
        ``discard_out_of_order_events``): accepted and ignored.

    Raises
    ------
    ValueError
        If both ``include`` and ``exclude`` are given.
    TypeError
        If ``domain`` is not a `Domain`.

    Attributes
    ----------
    salinfo : `SalInfo`
        The component.
    start_called : `bool`
        Was `start` called (by the constructor if ``start``)?
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
        start: bool = True,
        tel_max_history: int = 0,
        **kwargs: Any,
    ) -> None:
        if include is not None and exclude is not None:
            raise ValueError("Cannot specify both include and exclude")
        if not isinstance(domain, Domain):
            raise TypeError(f"domain {domain!r} must be a Domain")
        include_set = set(include) if include is not None else None
        exclude_set = set(exclude or ())
        self.salinfo = SalInfo(domain, name, index, **kwargs)
        try:
            known = set(self.salinfo.event_names) | set(self.salinfo.telemetry_names)
            unknown = ((include_set or set()) | exclude_set) - known
            if unknown:
                _log.warning("%s has no events or telemetry named %s; ignored", name, sorted(unknown))
            if not readonly:
                for cmd_name in self.salinfo.command_names:
                    command = RemoteCommand(self.salinfo, cmd_name)
                    setattr(self, command.attr_name, command)

            def wanted(topic_name: str) -> bool:
                return (include_set is None or topic_name in include_set) and topic_name not in exclude_set

            for evt_name in filter(wanted, self.salinfo.event_names):
                event = RemoteEvent(self.salinfo, evt_name, max_history=evt_max_history)
                setattr(self, event.attr_name, event)
            for tel_name in filter(wanted, self.salinfo.telemetry_names):
                telemetry = RemoteTelemetry(self.salinfo, tel_name, max_history=tel_max_history)
                setattr(self, telemetry.attr_name, telemetry)
            self.start_called = start
            if start:
                self.start_task: asyncio.Task[None] = asyncio.create_task(self.start())
        except BaseException:
            self.salinfo.basic_close()
            raise

    if typing.TYPE_CHECKING:
        # Topic attributes are made from the interface definition at run time.
        def __getattr__(self, name: str) -> Any: ...

    async def start(self) -> None:
        """Subscribe every topic (called by the constructor unless ``start=False``).

        Raises
        ------
        RuntimeError
            If already started, or closed.
        """
        self.start_called = True
        await self.salinfo.start()

    async def close(self) -> None:
        """Stop reading; blocked reads are cancelled. The domain stays open. Idempotent."""
        await self.salinfo.close()

    async def __aenter__(self) -> typing.Self:
        if self.start_called:
            await self.salinfo.start_task
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Remote(name={self.salinfo.name}, index={self.salinfo.index})"
