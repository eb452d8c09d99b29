"""The remote side of a command: send it and wait for acknowledgements."""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT", "AckCmdReader", "CommandInfo", "RemoteCommand"]

import asyncio
import collections
import time
from typing import Any

from .ack_errors import AckError, AckTimeoutError
from .enums import SalRetCode
from .messages import AckCmd, BaseMessage
from .read_topic import DEFAULT_QUEUE_LEN, ReadTopic
from .sal_info import SalInfo
from .write_topic import SetWriteResult, WriteTopic

#: Default time limit (s) for a command to finish, as in salobj.
DEFAULT_TIMEOUT = 3600.0

_DONE_ACKS = frozenset(code for code in SalRetCode if code.is_final)
_FAILED_ACKS = frozenset(code for code in SalRetCode if code.is_failure)


class AckCmdReader(ReadTopic):
    """Read a component's ``ackcmd`` topic, keeping only acknowledgements of our commands.

    Acknowledgements whose ``identity`` and ``origin`` are not those of
    this `SalInfo` answer someone else's commands and are ignored.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    queue_len : `int`, optional
        Capacity of the read queue.
    """

    def __init__(self, salinfo: SalInfo, queue_len: int = DEFAULT_QUEUE_LEN) -> None:
        super().__init__(salinfo=salinfo, attr_name="ack_ackcmd", max_history=0, queue_len=queue_len)

    def _accepts(self, message: BaseMessage) -> bool:
        return (
            super()._accepts(message)
            and message.identity == self.salinfo.identity
            and message.origin == self.salinfo.domain.origin
        )


class CommandInfo:
    """The acknowledgements of one command sent, in arrival order.

    Parameters
    ----------
    remote_command : `RemoteCommand`
        The command topic.
    seq_num : `int`
        ``private_seqNum`` of the command.
    wait_done : `bool`
        Wait for the final acknowledgement (or only the next one)?
    """

    def __init__(self, remote_command: RemoteCommand, seq_num: int, wait_done: bool) -> None:
        self.remote_command = remote_command
        self.seq_num = int(seq_num)
        self.wait_done = bool(wait_done)
        self._acks: collections.deque[AckCmd] = collections.deque()
        self._next_ack_event = asyncio.Event()
        self._last_ackcmd: AckCmd | None = None
        # The task waiting in next_ackcmd, if any: close cancels it.
        self._waiter: asyncio.Task[Any] | None = None

    def add_ackcmd(self, ackcmd: AckCmd) -> bool:
        """Add an acknowledgement; return whether it is final."""
        self._acks.append(ackcmd)
        self._next_ack_event.set()
        return ackcmd.ack in _DONE_ACKS

    def close(self) -> None:
        """Stop waiting: a caller waiting in `next_ackcmd` gets `asyncio.CancelledError`."""
        if self._waiter is not None:
            self._waiter.cancel()

    async def next_ackcmd(self, timeout: float = DEFAULT_TIMEOUT) -> AckCmd:
        """Return the next acknowledgement of interest (the final one if ``wait_done``).

        Each ``CMD_INPROGRESS`` acknowledgement extends ``timeout`` by its
        own ``timeout`` while waiting for the final one.

        Raises
        ------
        AckError
            If the acknowledgement reports a failure.
        AckTimeoutError
            If it does not arrive in time.
        """
        self._waiter = asyncio.current_task()
        try:
            ackcmd = await self._basic_next_ackcmd(timeout)
        except asyncio.CancelledError:
            self.remote_command.salinfo._running_cmds.pop(self.seq_num, None)
            raise
        except TimeoutError:
            self.remote_command.salinfo._running_cmds.pop(self.seq_num, None)
            last = self._last_ackcmd
            if last is None:
                last = self.remote_command.salinfo.make_ackcmd(
                    private_seqNum=self.seq_num,
                    ack=SalRetCode.CMD_NOACK,
                    result="No command acknowledgement seen",
                )
            raise AckTimeoutError(
                f"Timed out waiting for command acknowledgement of {self.remote_command.describe()}", last
            ) from None
        finally:
            self._waiter = None
        if ackcmd.ack in _DONE_ACKS:
            # Forgotten once its final acknowledgement is read, not when it
            # arrives: a caller may still be reading the earlier ones.
            self.remote_command.salinfo._running_cmds.pop(self.seq_num, None)
        if ackcmd.ack in _FAILED_ACKS:
            raise AckError(f"Command {self.remote_command.describe()} failed", ackcmd)
        return ackcmd

    async def _basic_next_ackcmd(self, timeout: float) -> AckCmd:
        t0 = time.monotonic()
        while True:
            async with asyncio.timeout(max(0.0, timeout - (time.monotonic() - t0))):
                ackcmd = await self._get_next_ackcmd()
            if not self.wait_done or ackcmd.ack in _DONE_ACKS:
                return ackcmd
            if ackcmd.ack == SalRetCode.CMD_INPROGRESS:
                timeout += ackcmd.timeout

    async def _get_next_ackcmd(self) -> AckCmd:
        while not self._acks:
            self._next_ack_event.clear()
            await self._next_ack_event.wait()
        ackcmd = self._acks.popleft()
        self._last_ackcmd = ackcmd
        return ackcmd

    def __repr__(self) -> str:
        return f"CommandInfo({self.remote_command!r}, seq_num={self.seq_num}, wait_done={self.wait_done})"


def _route_ackcmd(salinfo: SalInfo, ackcmd: BaseMessage) -> None:
    """Give an acknowledgement to the command it acknowledges (the ackcmd reader's callback)."""
    info = salinfo._running_cmds.get(ackcmd.private_seqNum)
    if info is not None:
        info.add_ackcmd(ackcmd)


class RemoteCommand(WriteTopic):
    """Send one command of a component and wait for its acknowledgement.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component (its index is the target).
    name : `str`
        Command name without prefix, e.g. ``start``.
    """

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo=salinfo, attr_name=f"cmd_{name}", min_seq_num=None)
        self._in_start = False
        if salinfo._ackcmd_reader is None:
            reader = AckCmdReader(salinfo)
            reader.callback = lambda ackcmd: _route_ackcmd(salinfo, ackcmd)
            salinfo._ackcmd_reader = reader

    def describe(self) -> str:
        """Return ``Name:index.command`` for messages."""
        return f"{self.salinfo.name_index}.{self.name}"

    def set(self, **kwargs: Any) -> bool:
        """Set field values for the next `start`, starting from default values.

        Unlike an event's `WriteTopic.set`, fields not given return to their
        defaults, as in salobj.

        Raises
        ------
        AttributeError
            If the command has no such field.
        pydantic.ValidationError
            If a value has the wrong type.
        """
        if not self._in_start:
            self.data = self.DataType()
            self._has_data = False
        return super().set(**kwargs)

    async def set_start(
        self, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True, **kwargs: Any
    ) -> AckCmd:
        """Set field values (the others to their defaults) and send the command.

        Parameters
        ----------
        timeout : `float`, optional
            Seconds to wait for the final acknowledgement (the first one if
            not ``wait_done``); each ``CMD_INPROGRESS`` acknowledgement
            extends the wait by its own timeout.
        wait_done : `bool`, optional
            Wait for the final acknowledgement (True) or return the first
            one, whatever it is (False)?
        **kwargs
            Command fields. Unknown names and bad values raise at once.

        Returns
        -------
        ackcmd : `AckCmd`
            The final acknowledgement (or the first, if not ``wait_done``).

        Raises
        ------
        AttributeError
            If a field name is unknown.
        pydantic.ValidationError
            If a value has the wrong type.
        AckError
            If the command failed, was aborted or timed out at the controller.
        AckTimeoutError
            If no (final) acknowledgement arrived in time.
        """
        self.set(**kwargs)
        return await self.start(timeout=timeout, wait_done=wait_done)

    async def start(
        self, data: BaseMessage | None = None, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True
    ) -> AckCmd:
        """Send the command with ``data`` (or ``self.data``) and wait as `set_start` does.

        Raises
        ------
        TypeError
            If ``data`` is not a `DataType`.
        RuntimeError
            If the Remote reads every index (index 0 of an indexed component:
            that would command every instance), or is closed.
        """
        if self.salinfo.indexed and self.salinfo.index == 0:
            raise RuntimeError(
                f"Cannot command {self.salinfo.name} with index 0: that would command every instance"
            )
        if not self.salinfo.isopen:
            raise RuntimeError(f"Cannot command {self.describe()}: the Remote is closed")
        try:
            self._in_start = True
            if data is not None:
                self.data = data
            self._data.private_seqNum = self.salinfo.next_seq_num()
            message = self._prepare_data_to_write()
        finally:
            self._in_start = False
        info = CommandInfo(remote_command=self, seq_num=message.private_seqNum, wait_done=wait_done)
        self.salinfo._running_cmds[info.seq_num] = info
        try:
            await self.salinfo.publish(self.definition, message)
        except BaseException:
            self.salinfo._running_cmds.pop(info.seq_num, None)
            raise
        return await info.next_ackcmd(timeout=timeout)

    async def next_ackcmd(
        self, ackcmd: AckCmd, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True
    ) -> AckCmd:
        """Wait for the next acknowledgement of a command sent earlier.

        Parameters
        ----------
        ackcmd : `AckCmd`
            An acknowledgement of the command (as returned by `start` with
            ``wait_done=False``).
        timeout : `float`, optional
            Seconds to wait.
        wait_done : `bool`, optional
            Wait for the final acknowledgement?

        Raises
        ------
        RuntimeError
            If the command is unknown or already finished.
        AckError, AckTimeoutError
            As for `set_start`.
        """
        info = self.salinfo._running_cmds.get(ackcmd.private_seqNum)
        if info is None:
            raise RuntimeError(f"Command private_seqNum={ackcmd.private_seqNum} is unknown or finished")
        info.wait_done = wait_done
        return await info.next_ackcmd(timeout=timeout)

    async def set_write(self, *, force_output: bool | None = None, **kwargs: Any) -> SetWriteResult:
        """Not available for commands: call `set_start`."""
        raise NotImplementedError("Call set_start instead")

    async def write(self) -> BaseMessage:
        """Not available for commands: call `start`."""
        raise NotImplementedError("Call start instead")
