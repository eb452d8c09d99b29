"""The remote side of a command: send it and wait for acknowledgements."""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT", "AckRouter", "RemoteCommand"]

import asyncio
import collections
import time
from typing import Any

from .ack_errors import AckError, AckTimeoutError
from .enums import SalRetCode
from .interface import TopicDefinition
from .messages import AckCmd, BaseMessage
from .sal_info import SalInfo
from .timestamps import current_tai

#: Default time limit (s) for a command to finish, as in salobj.
DEFAULT_TIMEOUT = 3600.0


class _CommandInfo:
    """Acknowledgements of one sent command, in arrival order."""

    def __init__(self, seq_num: int, base_timeout: float) -> None:
        self.seq_num = seq_num
        self.base_timeout = base_timeout
        self.deadline = time.monotonic() + base_timeout
        self.acks: collections.deque[AckCmd] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.last_ack: AckCmd | None = None

    def add(self, ackcmd: AckCmd) -> None:
        if ackcmd.timeout > 0 and not SalRetCode(ackcmd.ack).is_final:
            # An in-progress ack says how much longer to wait.
            self.deadline = max(self.deadline, time.monotonic() + ackcmd.timeout + self.base_timeout)
        self.acks.append(ackcmd)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class AckRouter:
    """Deliver ``ackcmd`` messages to the commands they acknowledge.

    One per Remote: it keeps the commands in flight by sequence number and
    ignores acknowledgements of other callers' commands.
    """

    def __init__(self, salinfo: SalInfo) -> None:
        self.salinfo = salinfo
        self._in_flight: dict[int, _CommandInfo] = {}

    def register(self, seq_num: int, timeout: float) -> _CommandInfo:
        """Start collecting acknowledgements of a command about to be sent."""
        info = _CommandInfo(seq_num, timeout)
        self._in_flight[seq_num] = info
        return info

    def forget(self, seq_num: int) -> None:
        """Stop collecting acknowledgements of a command."""
        self._in_flight.pop(seq_num, None)

    def on_message(self, message: BaseMessage) -> None:
        """Route one ``ackcmd`` message (transport callback)."""
        info = self._in_flight.get(message.private_seqNum)
        if (
            info is None
            or message.identity != self.salinfo.identity
            or message.origin != self.salinfo.domain.origin
        ):
            return
        info.add(message)


class RemoteCommand:
    """Send one command of a component and wait for its acknowledgement.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component (its index is the target; it must not be 0 for an
        indexed component).
    definition : `TopicDefinition`
        The command topic.
    router : `AckRouter`
        The Remote's acknowledgement router.
    """

    def __init__(self, *, salinfo: SalInfo, definition: TopicDefinition, router: AckRouter) -> None:
        self.salinfo = salinfo
        self.definition = definition
        self._router = router
        self._model = salinfo.model(definition)
        self._data = self._model()

    @property
    def name(self) -> str:
        """Short command name."""
        return self.definition.name

    @property
    def data(self) -> BaseMessage:
        """Field values the next `start` without data sends."""
        return self._data

    def set(self, **kwargs: Any) -> bool:
        """Set field values for the next `start`; return whether any changed.

        Raises
        ------
        pydantic.ValidationError
            If a field name is unknown or a value has the wrong type.
        """
        did_change = any(getattr(self._data, k, None) != v for k, v in kwargs.items())
        self._data = self._model.model_validate({**self._data.model_dump(), **kwargs})
        return did_change

    async def set_start(
        self, *, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True, **kwargs: Any
    ) -> AckCmd:
        """Set field values (others are reset to defaults) and send the command.

        Parameters
        ----------
        timeout : `float`, optional
            Seconds to wait for the final acknowledgement; each
            in-progress acknowledgement extends the wait by its own timeout.
        wait_done : `bool`, optional
            Wait for the final acknowledgement (True) or return the first
            one, whatever it is (False)?
        **kwargs
            Command fields. Unknown names raise at once.

        Returns
        -------
        ackcmd : `AckCmd`
            The final acknowledgement (or the first, if not ``wait_done``).

        Raises
        ------
        pydantic.ValidationError
            If a field name is unknown or a value has the wrong type.
        AckError
            If the command failed, was aborted or timed out at the controller.
        AckTimeoutError
            If no (final) acknowledgement arrived in time.
        """
        self._data = self._model(**kwargs)
        return await self.start(timeout=timeout, wait_done=wait_done)

    async def start(
        self, data: BaseMessage | None = None, *, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True
    ) -> AckCmd:
        """Send the command with ``data`` (or the fields set with `set`).

        See `set_start` for the parameters, return value and exceptions.
        """
        if self.salinfo.interface.indexed and self.salinfo.index == 0:
            raise RuntimeError(
                f"Cannot command {self.salinfo.name} with index 0: that would command every instance"
            )
        if data is None:
            data = self._data
        elif not isinstance(data, self._model):
            raise TypeError(f"data is a {type(data).__name__}, not a {self._model.__name__}")
        seq_num = self.salinfo.next_seq_num()
        message = data.model_copy(
            update={
                "salIndex": self.salinfo.index,
                "private_sndStamp": current_tai(),
                "private_seqNum": seq_num,
                "private_identity": self.salinfo.identity,
                "private_origin": self.salinfo.domain.origin,
            }
        )
        info = self._router.register(seq_num, timeout)
        try:
            await self.salinfo.publish(self.definition, message)
            return await self._wait(info, wait_done=wait_done)
        finally:
            if wait_done:
                self._router.forget(seq_num)

    async def next_ackcmd(
        self, ackcmd: AckCmd, *, timeout: float = DEFAULT_TIMEOUT, wait_done: bool = True
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
        AckError, AckTimeoutError
            As for `set_start`.
        """
        info = self._router._in_flight.get(ackcmd.private_seqNum)
        if info is None:
            raise RuntimeError(f"Command with seqNum {ackcmd.private_seqNum} is not awaiting acknowledgement")
        info.base_timeout = timeout
        info.deadline = time.monotonic() + timeout
        try:
            return await self._wait(info, wait_done=wait_done)
        finally:
            if wait_done:
                self._router.forget(info.seq_num)

    async def _wait(self, info: _CommandInfo, *, wait_done: bool) -> AckCmd:
        loop = asyncio.get_running_loop()
        while True:
            while info.acks:
                ackcmd = info.acks.popleft()
                info.last_ack = ackcmd
                code = SalRetCode(ackcmd.ack)
                if code.is_final:
                    self._router.forget(info.seq_num)
                    if code.is_failure:
                        raise AckError(f"Command {self.salinfo.name_index}.{self.name} failed", ackcmd)
                    return ackcmd
                if not wait_done:
                    return ackcmd
            remaining = info.deadline - time.monotonic()
            if remaining <= 0:
                self._router.forget(info.seq_num)
                raise AckTimeoutError(
                    f"Timed out waiting for {self.salinfo.name_index}.{self.name}", self._noack(info)
                )
            info.waiter = loop.create_future()
            try:
                async with asyncio.timeout(remaining):
                    await info.waiter
            except TimeoutError:
                pass
            finally:
                info.waiter = None

    def _noack(self, info: _CommandInfo) -> AckCmd:
        if info.last_ack is not None:
            return info.last_ack
        model = self.salinfo.model(self.salinfo.interface.ackcmd)
        fields = dict(
            ack=int(SalRetCode.CMD_NOACK),
            result="No acknowledgement seen",
            identity=self.salinfo.identity,
            origin=self.salinfo.domain.origin,
            salIndex=self.salinfo.index,
            private_seqNum=info.seq_num,
        )
        return model.model_validate(fields)
