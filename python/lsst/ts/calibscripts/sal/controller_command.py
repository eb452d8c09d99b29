"""The controller side of a command: run the callback, acknowledge."""

from __future__ import annotations

__all__ = ["CommandCallback", "ControllerCommand"]

import asyncio
import collections
import inspect
import logging
import traceback
import typing
from collections.abc import Awaitable, Callable

from .enums import SalRetCode
from .errors import ExpectedError
from .interface import TopicDefinition
from .messages import AckCmd, BaseMessage
from .sal_info import SalInfo
from .timestamps import current_tai

#: A ``do_<command>`` callback: returns None (CMD_COMPLETE, "Done"), or an
#: acknowledgement made with `ControllerCommand.make_ackcmd` to send instead.
CommandCallback = Callable[[BaseMessage], Awaitable[AckCmd | None] | AckCmd | None]


class ControllerCommand:
    """Receive one command, call its callback and acknowledge the outcome.

    The outcome of the callback decides the final acknowledgement:

    - returns normally: ``CMD_COMPLETE`` with result "Done" (or the
      acknowledgement it returns);
    - raises `TimeoutError`: ``CMD_TIMEOUT``;
    - is cancelled: ``CMD_ABORTED``;
    - raises `ExpectedError`: ``CMD_FAILED``, "Failed: <message>", logged
      without traceback;
    - raises anything else: ``CMD_FAILED``, "Failed: <message>", logged with
      traceback.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    definition : `TopicDefinition`
        The command topic.
    log : `logging.Logger`
        The controller's logger.

    Attributes
    ----------
    allow_multiple_callbacks : `bool`
        Run callbacks of this command concurrently? Default False: one at a
        time, in arrival order.
    """

    def __init__(self, *, salinfo: SalInfo, definition: TopicDefinition, log: logging.Logger) -> None:
        self.salinfo = salinfo
        self.definition = definition
        self.log = log
        self.cmdtype = salinfo.command_names.index(definition.name)
        self.allow_multiple_callbacks = False
        self.callback: CommandCallback | None = None
        self._ack_model = salinfo.model(salinfo.interface.ackcmd)
        self._pending: collections.deque[BaseMessage] = collections.deque()
        self._serial_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """Short command name."""
        return self.definition.name

    def make_ackcmd(
        self, data: BaseMessage, ack: SalRetCode, result: str = "", error: int = 0, timeout: float = 0.0
    ) -> AckCmd:
        """Make an acknowledgement of a received command.

        Parameters
        ----------
        data : `BaseMessage`
            The command being acknowledged.
        ack : `SalRetCode`
            Acknowledgement code.
        result : `str`, optional
            Message for the caller.
        error : `int`, optional
            Error code.
        timeout : `float`, optional
            For in-progress acks: how much longer the command may take (s).
        """
        fields = dict(
            ack=int(ack),
            error=error,
            result=result,
            identity=data.private_identity,
            origin=data.private_origin,
            cmdtype=self.cmdtype,
            timeout=float(timeout),
            salIndex=self.salinfo.index,
            private_seqNum=data.private_seqNum,
            private_identity=self.salinfo.identity,
            private_origin=self.salinfo.domain.origin,
        )
        return self._ack_model.model_validate(fields)

    async def ack(
        self, data: BaseMessage, ack: SalRetCode, result: str = "", error: int = 0, timeout: float = 0.0
    ) -> None:
        """Send an acknowledgement of a received command."""
        await self.write_ackcmd(self.make_ackcmd(data, ack, result=result, error=error, timeout=timeout))

    async def ack_in_progress(self, data: BaseMessage, timeout: float, result: str = "") -> None:
        """Tell the caller the command is running and may take ``timeout`` s more.

        Each such acknowledgement extends the caller's wait.
        """
        await self.ack(data, SalRetCode.CMD_INPROGRESS, result=result, timeout=timeout)

    async def write_ackcmd(self, ackcmd: AckCmd) -> None:
        """Publish an acknowledgement."""
        message = ackcmd.model_copy(update={"private_sndStamp": current_tai()})
        await self.salinfo.publish(self.salinfo.interface.ackcmd, message)

    def _on_message(self, data: BaseMessage) -> None:
        if data.salIndex != self.salinfo.index:
            return
        if self.allow_multiple_callbacks:
            task = asyncio.create_task(self._run(data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._pending.append(data)
        if self._serial_task is None or self._serial_task.done():
            self._serial_task = asyncio.create_task(self._run_serially())

    async def _run_serially(self) -> None:
        while self._pending:
            await self._run(self._pending.popleft())

    async def _run(self, data: BaseMessage) -> None:
        try:
            ackcmd = await self._call(data)
        except asyncio.CancelledError:
            ackcmd = self.make_ackcmd(data, SalRetCode.CMD_ABORTED, result="Aborted")
        try:
            # Shielded: a controller closing right after a command must still acknowledge it.
            await asyncio.shield(self.write_ackcmd(ackcmd))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("Could not acknowledge %s", self.definition.attr_name)

    async def _call(self, data: BaseMessage) -> AckCmd:
        if self.callback is None:
            return self.make_ackcmd(data, SalRetCode.CMD_FAILED, result="Failed: no callback")
        try:
            outcome: typing.Any = self.callback(data)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            result = typing.cast(AckCmd | None, outcome)
        except TimeoutError as e:
            self.log.warning("%s timed out: %s", self.definition.attr_name, e)
            return self.make_ackcmd(data, SalRetCode.CMD_TIMEOUT, result=f"Timed out: {e}")
        except ExpectedError as e:
            self.log.error("%s failed: %s", self.definition.attr_name, e)
            return self.make_ackcmd(data, SalRetCode.CMD_FAILED, result=f"Failed: {e}", error=1)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.log.error("%s failed: %s\n%s", self.definition.attr_name, e, traceback.format_exc())
            return self.make_ackcmd(data, SalRetCode.CMD_FAILED, result=f"Failed: {e}", error=1)
        if result is None:
            return self.make_ackcmd(data, SalRetCode.CMD_COMPLETE, result="Done")
        return result

    def close(self) -> None:
        """Cancel running callbacks (their callers get ``CMD_ABORTED``)."""
        self._pending.clear()
        if self._serial_task is not None:
            self._serial_task.cancel()
        for task in self._tasks:
            task.cancel()
