"""The controller side of a command: run the callback, acknowledge."""

from __future__ import annotations

__all__ = ["CommandCallback", "ControllerCommand"]

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .enums import SalRetCode
from .errors import ExpectedError
from .messages import AckCmd, BaseMessage
from .read_topic import DEFAULT_QUEUE_LEN, ReadTopic
from .sal_info import SalInfo
from .write_topic import AckCmdWriter

#: A ``do_<command>`` callback: returns None (CMD_COMPLETE, "Done"), or an
#: acknowledgement made with `SalInfo.make_ackcmd` to send instead.
CommandCallback = Callable[[BaseMessage], Awaitable[AckCmd | None] | AckCmd | None]


class ControllerCommand(ReadTopic):
    """Receive one command; with a callback, run it and acknowledge the outcome.

    The outcome of the callback decides the final acknowledgement, as in
    salobj:

    - returns None: ``CMD_COMPLETE``, result "Done" (or the acknowledgement
      it returns, made with `SalInfo.make_ackcmd`);
    - raises `TimeoutError`: ``CMD_TIMEOUT``, error 1, result "Timeout";
    - is cancelled: ``CMD_ABORTED``, error 1, result "Aborted";
    - raises anything else: ``CMD_FAILED``, error 1, "Failed: <message>",
      logged with a traceback unless it is an `ExpectedError`.

    Without a callback, commands are queued unacknowledged: read them with
    `next` and acknowledge them with `ack` (mock controllers do this).
    Callbacks run one at a time in arrival order, unless
    ``allow_multiple_callbacks`` is set.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    name : `str`
        Command name without prefix, e.g. ``start``.
    queue_len : `int`, optional
        Capacity of the queue `next` reads from.
    """

    _call_sync_callbacks_now = False

    def __init__(self, salinfo: SalInfo, name: str, queue_len: int = DEFAULT_QUEUE_LEN) -> None:
        super().__init__(salinfo=salinfo, attr_name=f"cmd_{name}", max_history=0, queue_len=queue_len)
        self.cmdtype = salinfo.sal_topic_names.index(self.sal_name)
        if salinfo._ackcmd_writer is None:
            salinfo._ackcmd_writer = AckCmdWriter(salinfo)
        self._ack_writer: AckCmdWriter = salinfo._ackcmd_writer

    def make_ackcmd(
        self, data: BaseMessage, ack: SalRetCode, result: str = "", error: int = 0, timeout: float = 0.0
    ) -> AckCmd:
        """Make an acknowledgement of a received command (shorthand of `SalInfo.make_ackcmd`).

        An extension; a callback may return it to end the command with it.
        """
        return self.salinfo.make_ackcmd(data.private_seqNum, ack, error=error, result=result, timeout=timeout)

    async def ack(self, data: BaseMessage, ackcmd: AckCmd) -> None:
        """Acknowledge a command.

        Parameters
        ----------
        data : `DataType`
            The command being acknowledged.
        ackcmd : `AckCmd`
            The acknowledgement, made with `SalInfo.make_ackcmd`.
        """
        await self._ack_writer.set_write(
            private_seqNum=data.private_seqNum,
            origin=data.private_origin,
            identity=data.private_identity,
            cmdtype=self.cmdtype,
            ack=int(ackcmd.ack),
            error=ackcmd.error,
            result=ackcmd.result,
            timeout=float(ackcmd.timeout),
        )

    async def ack_in_progress(self, data: BaseMessage, timeout: float, result: str = "") -> None:
        """Tell the caller the command is running and may take ``timeout`` s more.

        Each such acknowledgement extends the caller's wait by ``timeout``.
        """
        ackcmd = self.salinfo.make_ackcmd(
            private_seqNum=data.private_seqNum, ack=SalRetCode.CMD_INPROGRESS, result=result, timeout=timeout
        )
        await self.ack(data, ackcmd)

    async def next(self, *, timeout: float | None = None) -> BaseMessage:  # type: ignore[override]
        """Return the oldest unread command, waiting for one if needed.

        Unlike the `ReadTopic` version there is no ``flush`` argument.

        Raises
        ------
        TimeoutError
            If no command arrives in time.
        RuntimeError
            If a callback is set.
        """
        return await super().next(flush=False, timeout=timeout)

    def _queue_one_item(self, message: BaseMessage) -> None:
        if message.private_seqNum <= 0:
            self.log.warning("Ignoring %s with private_seqNum=%s", self.attr_name, message.private_seqNum)
            return
        super()._queue_one_item(message)

    async def _ack_if_running(self, data: BaseMessage, ackcmd: AckCmd) -> None:
        if not self.salinfo.isopen:
            self.log.warning("Cannot acknowledge %s: the component is closed", self.attr_name)
            return
        try:
            await self.ack(data, ackcmd)
        except Exception:
            self.log.exception("Could not acknowledge %s", self.attr_name)

    async def _run_callback(self, message: BaseMessage) -> None:
        callback = self._callback
        if callback is None:
            return
        make = self.salinfo.make_ackcmd
        seq_num = message.private_seqNum
        try:
            outcome: Any = callback(message)
            if inspect.isawaitable(outcome):
                outcome = await outcome
            ackcmd = outcome if outcome is not None else make(seq_num, SalRetCode.CMD_COMPLETE, result="Done")
        except asyncio.CancelledError:
            ackcmd = make(seq_num, SalRetCode.CMD_ABORTED, error=1, result="Aborted")
        except TimeoutError:
            ackcmd = make(seq_num, SalRetCode.CMD_TIMEOUT, error=1, result="Timeout")
        except Exception as e:
            ackcmd = make(seq_num, SalRetCode.CMD_FAILED, error=1, result=f"Failed: {e}")
            if isinstance(e, ExpectedError):
                self.log.error("%s failed: %s", self.attr_name, e)
            else:
                self.log.exception("Callback %s failed with data=%s", self._callback, message)
        # Shielded: a controller closing right after a command still acknowledges it.
        await asyncio.shield(self._ack_if_running(message, ackcmd))

    def is_callback_task(self, task: asyncio.Future[Any]) -> bool:
        """Is ``task`` one that runs this command's callback?"""
        return task is self._callback_task or task in self._callback_tasks

    def _close_callbacks(self) -> None:
        self.cancel_callbacks()

    def cancel_callbacks(self) -> list[asyncio.Task[None]]:
        """Cancel running callbacks and drop queued commands.

        Returns
        -------
        tasks : `list` [`asyncio.Task`]
            The cancelled callbacks: each acknowledges its command
            ``CMD_ABORTED`` before it ends, if the component is still open.
        """
        self._callback_queue.clear()
        tasks = [task for task in (self._callback_task, *self._callback_tasks) if task is not None]
        for task in tasks:
            task.cancel()
        return tasks
