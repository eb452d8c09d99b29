"""Controller: the component side of the messaging system."""

from __future__ import annotations

__all__ = ["Controller"]

import asyncio
import contextlib
import logging
import typing
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .controller_command import ControllerCommand
from .domain import Domain
from .errors import ExpectedError
from .log_handler import SalLogHandler
from .messages import BaseMessage
from .sal_info import SalInfo
from .write_topic import ControllerEvent, ControllerTelemetry

#: Time (s) a closing controller gives its cancelled command callbacks to
#: acknowledge ``CMD_ABORTED``.
_ABORT_ACK_TIMEOUT = 1.0


class Controller:
    """Serve a component: receive its commands, write its events and telemetry.

    Topics are attributes: ``cmd_<name>`` (`ControllerCommand`),
    ``evt_<name>`` (`ControllerEvent`) and ``tel_<name>``
    (`ControllerTelemetry`). Everything logged with ``self.log`` is written
    as ``logMessage``.

    As in salobj, ``do_<name>`` methods become the command callbacks only
    if ``do_callbacks`` is true (`BaseCsc` and `BaseScript` set it); a mock
    controller leaves it false and sets ``cmd_<name>.callback`` itself, or
    reads commands with ``cmd_<name>.next()``.

    Must be constructed inside a running event loop; `start_task` is done
    when the controller is ready. `start` first waits until every `Remote`
    made with the controller's domain has started, so late-joiner data is
    there when the controller first acts.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int`, optional
        SAL index; required (non-zero) for indexed components.
    do_callbacks : `bool`, optional
        Make each ``do_<command>`` method the callback of its command?
        Default False. There must then be exactly one ``do_`` method per
        command (see ``allow_missing_callbacks`` and ``extra_commands``).
    write_only : `bool`, optional
        Have no command topics and read nothing?
    allow_missing_callbacks : `bool`, optional
        With ``do_callbacks``: commands without a ``do_`` method fail with
        "This command is not supported" instead of raising `TypeError`.
    extra_commands : iterable of `str`, optional
        Commands whose ``do_`` methods may exist without the command being
        in the interface (to support old and new interfaces).
    domain : `Domain`, optional
        Domain to share (an extension: salobj's controllers always make
        their own). If not given the controller makes one, closes it when
        it closes, and its identity becomes the domain's default identity,
        so Remotes made with ``controller.domain`` act in its name.
    **kwargs
        salobj's Kafka options ``discard_out_of_order_telemetry`` and
        ``discard_out_of_order_events``: accepted and ignored.

    Raises
    ------
    ValueError
        If ``do_callbacks`` and ``write_only`` are both true, if
        ``allow_missing_callbacks`` is true without ``do_callbacks``, or if
        ``index`` is 0 for an indexed component.
    TypeError
        If ``do_callbacks`` and the ``do_`` methods do not match the
        commands.
    RuntimeError
        If the component has no ``logMessage`` or ``logLevel`` event.

    Attributes
    ----------
    log : `logging.Logger`
        The component's logger (``Name:index``).
    salinfo : `SalInfo`
        The component.
    isopen : `bool`
        False once `close` has been called.
    start_called : `bool`
        Has `start` been called?
    start_task : `asyncio.Task`
        Done when `start` is done. If `start` fails, the failure is logged
        and the controller closes: `done_task` then holds the exception.
    done_task : `asyncio.Future`
        Done when `close` is done; holds the exception given to `close`.
    delay_start_event : `asyncio.Event`
        `start` waits until this is set (it is at construction); tests
        clear it to start the controller later.
    """

    def __init__(
        self,
        name: str,
        index: int | None = None,
        *,
        do_callbacks: bool = False,
        write_only: bool = False,
        allow_missing_callbacks: bool = False,
        extra_commands: Iterable[str] = (),
        domain: Domain | None = None,
        **kwargs: Any,
    ) -> None:
        if do_callbacks and write_only:
            raise ValueError("Cannot specify do_callbacks and write_only both true")
        if allow_missing_callbacks and not do_callbacks:
            raise ValueError("allow_missing_callbacks true requires do_callbacks true")
        self.isopen = False
        self.start_called = False
        loop = asyncio.get_running_loop()
        self.done_task: asyncio.Future[None] = loop.create_future()
        self.delay_start_event = asyncio.Event()
        self.delay_start_event.set()
        self._do_callbacks = do_callbacks
        self._own_domain = domain is None
        domain = domain if domain is not None else Domain()
        self.salinfo = SalInfo(domain, name, index, write_only=write_only, **kwargs)
        try:
            if self.salinfo.indexed and self.salinfo.index == 0:
                raise ValueError(f"{name} is indexed: a controller needs a non-zero index")
            self.salinfo.identity = self.salinfo.name_index
            if self._own_domain:
                domain.default_identity = self.salinfo.name_index
            self.log = logging.getLogger(self.salinfo.name_index)
            self.salinfo.log = self.log
            self._commands: dict[str, ControllerCommand] = {}
            if not write_only:
                for cmd_name in self.salinfo.command_names:
                    command = ControllerCommand(self.salinfo, cmd_name)
                    self._commands[cmd_name] = command
                    setattr(self, command.attr_name, command)
            if do_callbacks:
                self._assert_do_methods_present(allow_missing_callbacks, set(extra_commands))
            for evt_name in self.salinfo.event_names:
                event = ControllerEvent(self.salinfo, evt_name)
                setattr(self, event.attr_name, event)
            for tel_name in self.salinfo.telemetry_names:
                telemetry = ControllerTelemetry(self.salinfo, tel_name)
                setattr(self, telemetry.attr_name, telemetry)
            for required in ("logMessage", "logLevel"):
                if required not in self.salinfo.event_names:
                    raise RuntimeError(f"{self.salinfo.name} has no {required} event")
            self._log_handler = SalLogHandler(self.evt_logMessage)
            self.log.addHandler(self._log_handler)
            if self.log.getEffectiveLevel() > logging.INFO:
                self.log.setLevel(logging.INFO)
        except BaseException:
            self.salinfo.basic_close()
            if self._own_domain:
                domain.basic_close()
            raise
        self.start_task: asyncio.Task[None] = asyncio.create_task(self._protected_start())
        self.isopen = True

    if typing.TYPE_CHECKING:
        # Topic attributes are made from the interface definition at run time.
        def __getattr__(self, name: str) -> Any: ...

    @property
    def domain(self) -> Domain:
        """The domain of this controller."""
        return self.salinfo.domain

    # --- do_ methods -----------------------------------------------------------

    def _assert_do_methods_present(self, allow_missing_callbacks: bool, extra_commands: set[str]) -> None:
        commands = set(self.salinfo.command_names)
        supported = {name[3:] for name in dir(self) if name.startswith("do_")}
        problems = []
        missing = commands - supported - self._optional_commands()
        if missing and not allow_missing_callbacks:
            problems.append(f"must add {', '.join(f'do_{n}' for n in sorted(missing))} methods")
        extra = supported - commands - extra_commands
        if extra:
            problems.append(f"must remove {', '.join(f'do_{n}' for n in sorted(extra))} methods")
        if problems:
            raise TypeError(
                f"{type(self).__name__} does not match the {self.salinfo.name} interface: "
                f"this class {' and '.join(problems)}"
            )

    def _optional_commands(self) -> set[str]:
        """Commands that may lack a ``do_`` method (refused as unsupported)."""
        return set()

    def _assign_cmd_callbacks(self) -> None:
        for name, command in self._commands.items():
            command.callback = getattr(self, f"do_{name}", self._unsupported_cmd_callback)

    def _is_command_task(self, task: asyncio.Future[typing.Any]) -> bool:
        """Is ``task`` running a command callback of this controller?"""
        return any(command.is_callback_task(task) for command in self._commands.values())

    async def _unsupported_cmd_callback(self, data: BaseMessage) -> None:
        raise ExpectedError("This command is not supported")

    # --- life cycle --------------------------------------------------------------

    async def _protected_start(self) -> None:
        if self.start_called:
            raise RuntimeError("Start already called")
        self.start_called = True
        try:
            await self.start()
            await self.start_phase2()
        except asyncio.CancelledError:
            self.log.warning("start canceled")
        except ExpectedError as e:
            self.log.error("start failed: %s", e)
            await self.close(exception=e, cancel_start=False)
        except Exception as e:
            self.log.exception("start failed: %r", e)
            await self.close(exception=e, cancel_start=False)

    async def start(self) -> None:
        """Start: wait for the domain's Remotes, subscribe, connect callbacks.

        Subclasses extend this (call ``await super().start()`` first).
        """
        # Let the Remotes made after this controller begin to start.
        await asyncio.sleep(0)
        await self.delay_start_event.wait()
        others = [
            salinfo.start_task
            for salinfo in self.domain.salinfo_set
            if salinfo is not self.salinfo and salinfo.start_called
        ]
        # A Remote that failed to start (or was closed) does not stop the controller.
        await asyncio.gather(*others, return_exceptions=True)
        if self._do_callbacks:
            self._assign_cmd_callbacks()
        await self.salinfo.start()
        await self.put_log_level()

    async def start_phase2(self) -> None:
        """Finish starting, after `start` (`BaseCsc` reaches its initial state here)."""

    async def put_log_level(self) -> None:
        """Write the ``logLevel`` event with the current level."""
        await self.evt_logLevel.set_write(level=self.log.getEffectiveLevel())

    async def do_setLogLevel(self, data: BaseMessage) -> None:
        """Set the log level of the component, or of a named sub-logger (``subsystem``)."""
        logger = self.log.getChild(data.subsystem) if data.subsystem else self.log
        logger.setLevel(data.level)
        await self.evt_logLevel.set_write(level=logger.getEffectiveLevel(), subsystem=data.subsystem)

    async def flush_log(self) -> None:
        """Wait until everything logged so far has been written as ``logMessage``.

        Call before writing an event that readers should see after the log
        messages that explain it (e.g. a final state after its error).
        """
        await self._log_handler.drain()

    async def close_tasks(self) -> None:
        """Cancel the component's own tasks; subclasses extend this."""

    async def close(self, exception: BaseException | None = None, cancel_start: bool = True) -> None:
        """Shut down: cancel tasks, flush log messages, stop reading.

        May be called any number of times; later calls wait for the first.

        Parameters
        ----------
        exception : `BaseException`, optional
            If given, ``done_task`` ends with this exception.
        cancel_start : `bool`, optional
            Cancel ``start_task`` if it is still running?
        """
        if not hasattr(self, "start_task"):
            return  # not fully constructed
        if cancel_start and not self.start_task.done():
            self.start_task.cancel()
        if not self.isopen:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.done_task)
            return
        self.isopen = False
        try:
            try:
                await self.close_tasks()
            except Exception:
                self.log.exception("close_tasks failed; close continues")
            aborted = [task for command in self._commands.values() for task in command.cancel_callbacks()]
            if aborted:
                # Let each cancelled callback acknowledge CMD_ABORTED.
                await asyncio.wait(aborted, timeout=_ABORT_ACK_TIMEOUT)
            self.log.removeHandler(self._log_handler)
            await self._log_handler.close_and_flush()
            if self._own_domain:
                await self.domain.close()
            else:
                await self.salinfo.close()
        except asyncio.CancelledError:
            self.salinfo.basic_close()
            raise
        except Exception:
            self.salinfo.basic_close()
            self.log.exception("close failed near the end; close continues")
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.salinfo.name}, {self.salinfo.index})"
