"""Controller: the component side of the messaging system."""

from __future__ import annotations

__all__ = ["Controller"]

import asyncio
import logging
import typing
from types import TracebackType
from typing import Any

from .controller_command import ControllerCommand
from .domain import Domain
from .log_handler import SalLogHandler
from .messages import BaseMessage
from .sal_info import SalInfo
from .write_topic import WriteTopic


class Controller:
    """Serve a component: receive its commands, write its events and telemetry.

    For each command ``name`` the subclass must define a method
    ``do_<name>(data)``, sync or async (see `ControllerCommand` for how the
    outcome is acknowledged). Topics are attributes: ``cmd_<name>``
    (`ControllerCommand`), ``evt_<name>`` and ``tel_<name>`` (`WriteTopic`).
    Everything logged with ``self.log`` is written as ``logMessage``.

    Must be constructed inside a running event loop; `start_task` is done
    when the controller is ready.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int`, optional
        SAL index; required (non-zero) for indexed components.
    domain : `Domain`, optional
        Domain to use; one is created (and closed with the controller) if
        not given.
    do_callbacks : `bool`, optional
        Connect ``do_<name>`` methods to the commands? Default True.

    Raises
    ------
    TypeError
        If ``do_callbacks`` and ``do_<name>`` methods are missing for some
        commands, or exist for commands the component does not have.
    ValueError
        If ``index`` is 0 for an indexed component.
    """

    def __init__(
        self,
        name: str,
        index: int | None = None,
        *,
        domain: Domain | None = None,
        do_callbacks: bool = True,
    ) -> None:
        self._own_domain = domain is None
        self.domain = domain if domain is not None else Domain()
        self.salinfo = SalInfo(self.domain, name, index, identity=None)
        if self.salinfo.interface.indexed and self.salinfo.index == 0:
            raise ValueError(f"{name} is indexed: a controller needs a non-zero index")
        self.salinfo.identity = self.salinfo.name_index
        self.log = logging.getLogger(self.salinfo.name_index)
        self._closing = False
        self.done_task: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        for topic in self.salinfo.interface.events.values():
            setattr(self, topic.attr_name, WriteTopic(salinfo=self.salinfo, definition=topic))
        for topic in self.salinfo.interface.telemetry.values():
            setattr(self, topic.attr_name, WriteTopic(salinfo=self.salinfo, definition=topic))
        self._commands: dict[str, ControllerCommand] = {}
        for topic in self.salinfo.interface.commands.values():
            command = ControllerCommand(salinfo=self.salinfo, definition=topic, log=self.log)
            self._commands[topic.name] = command
            setattr(self, topic.attr_name, command)
        if do_callbacks:
            self._connect_callbacks()

        self._log_handler: SalLogHandler | None = None
        if "logMessage" in self.salinfo.interface.events:
            self._log_handler = SalLogHandler(self.evt_logMessage)
            self.log.addHandler(self._log_handler)
        if self.log.level == logging.NOTSET:
            self.log.setLevel(logging.INFO)
        self.start_task: asyncio.Task[None] = asyncio.create_task(self._start_wrapper())

    if typing.TYPE_CHECKING:
        # Topic attributes are made from the interface definition at run time.
        def __getattr__(self, name: str) -> Any: ...

    def _connect_callbacks(self) -> None:
        commands = set(self._commands)
        do_methods = {name[3:] for name in dir(type(self)) if name.startswith("do_")}
        missing = sorted(commands - do_methods)
        extra = sorted(do_methods - commands)
        if missing or extra:
            raise TypeError(
                f"{type(self).__name__} does not match the {self.salinfo.name} interface: "
                f"missing do_ methods for {missing}; do_ methods for unknown commands {extra}"
            )
        for name, command in self._commands.items():
            command.callback = getattr(self, f"do_{name}")

    async def _start_wrapper(self) -> None:
        for command in self._commands.values():
            await self.salinfo.subscribe(command.definition, command._on_message, history=False)
        await self.salinfo.start()
        await self.start()

    async def start(self) -> None:
        """Finish starting; subclasses extend this (call super first)."""
        if "logLevel" in self.salinfo.interface.events:
            await self.put_log_level()

    async def put_log_level(self) -> None:
        """Write the ``logLevel`` event with the current level."""
        await self.evt_logLevel.set_write(level=self.log.getEffectiveLevel(), subsystem="")

    async def do_setLogLevel(self, data: BaseMessage) -> None:
        """Set the log level of the component or of a named sub-logger."""
        logger = self.log.getChild(data.subsystem) if data.subsystem else self.log
        logger.setLevel(data.level)
        await self.evt_logLevel.set_write(level=logger.getEffectiveLevel(), subsystem=data.subsystem)

    async def flush_log(self) -> None:
        """Wait until everything logged so far has been written as ``logMessage``.

        Call before writing an event that readers should see after the log
        messages that explain it (e.g. a final state after its error).
        """
        if self._log_handler is not None:
            await self._log_handler.drain()

    async def close_tasks(self) -> None:
        """Cancel the component's own tasks; subclasses extend this."""
        for command in self._commands.values():
            command.close()

    async def close(self, exception: BaseException | None = None, cancel_start: bool = True) -> None:
        """Shut down: cancel tasks, flush log messages, stop reading.

        Parameters
        ----------
        exception : `BaseException`, optional
            If given, ``done_task`` ends with this exception.
        cancel_start : `bool`, optional
            Cancel ``start_task`` if it is still running?
        """
        if self._closing:
            return
        self._closing = True
        try:
            if cancel_start and not self.start_task.done():
                self.start_task.cancel()
            await self.close_tasks()
            if self._log_handler is not None:
                self.log.removeHandler(self._log_handler)
                await self._log_handler.close_and_flush()
            await self.salinfo.close()
            if self._own_domain:
                await self.domain.close()
        finally:
            if not self.done_task.done():
                if exception is not None:
                    self.done_task.set_exception(exception)
                else:
                    self.done_task.set_result(None)

    async def __aenter__(self) -> typing.Self:
        await self.start_task
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
