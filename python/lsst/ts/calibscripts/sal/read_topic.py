"""Readers of events, telemetry and commands (salobj's ``topics.ReadTopic``)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_QUEUE_LEN",
    "MIN_QUEUE_LEN",
    "ReadCallback",
    "ReadTopic",
    "RemoteEvent",
    "RemoteTelemetry",
]

import asyncio
import collections
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .base_topic import BaseTopic
from .errors import ExpectedError
from .messages import BaseMessage
from .sal_info import SalInfo

#: Messages kept for `ReadTopic.next` before the oldest is dropped. salobj
#: keeps 100; more here, because a slow reader of an in-process transport
#: (LOVE's page, a script printing its log) should not lose messages.
DEFAULT_QUEUE_LEN = 1000
#: Smallest allowed ``queue_len``.
MIN_QUEUE_LEN = 10

ReadCallback = Callable[[BaseMessage], Awaitable[Any] | Any]


class ReadTopic(BaseTopic):
    """Read one topic: the latest value, a queue of new ones, or a callback.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    attr_name : `str`
        Attribute name of the topic: ``evt_<name>``, ``tel_<name>``,
        ``cmd_<name>`` or ``ack_ackcmd``.
    max_history : `int`
        Late-joiner data: 1 to receive the most recent message (per index)
        when reading starts, 0 for live messages only.
    queue_len : `int`, optional
        Capacity of the queue `next` and `get_oldest` read from.

    Raises
    ------
    ValueError
        If ``max_history`` is negative (or above 1 for an indexed component
        read with index 0), ``queue_len`` is below `MIN_QUEUE_LEN`, or the
        component has no such topic.

    Notes
    -----
    A reader of index 0 receives the messages of every index; otherwise
    only messages whose ``salIndex`` matches are seen. Each reader gets its
    own copy of every message: changing one changes no other reader's.
    """

    #: Run a plain-function callback as soon as a message arrives (in order)?
    #: Command readers run every callback in a task, to acknowledge it.
    _call_sync_callbacks_now = True

    def __init__(
        self,
        *,
        salinfo: SalInfo,
        attr_name: str,
        max_history: int,
        queue_len: int = DEFAULT_QUEUE_LEN,
    ) -> None:
        if max_history < 0:
            raise ValueError(f"max_history={max_history} must be >= 0")
        if salinfo.indexed and salinfo.index == 0 and max_history > 1:
            raise ValueError(
                f"max_history={max_history} must be 0 or 1 for an indexed component read with index=0"
            )
        if queue_len < MIN_QUEUE_LEN:
            raise ValueError(f"queue_len={queue_len} must be >= MIN_QUEUE_LEN={MIN_QUEUE_LEN}")
        if max_history > queue_len:
            raise ValueError(f"max_history={max_history} must be <= queue_len={queue_len}")
        super().__init__(salinfo=salinfo, attr_name=attr_name)
        self.max_history = int(max_history)
        self.allow_multiple_callbacks = False
        self._latest: BaseMessage | None = None
        self._queue: collections.deque[BaseMessage] = collections.deque(maxlen=queue_len)
        self._next_waiters: collections.deque[asyncio.Future[BaseMessage]] = collections.deque()
        self._data_waiters: list[asyncio.Future[BaseMessage]] = []
        self._callback: ReadCallback | None = None
        self._callback_queue: collections.deque[BaseMessage] = collections.deque()
        self._callback_task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._warned_overflow = False
        salinfo.add_reader(self)

    @property
    def has_data(self) -> bool:
        """Has any message been received?"""
        return self._latest is not None

    @property
    def nqueued(self) -> int:
        """Number of messages waiting to be read by `next` or `get_oldest`."""
        return len(self._queue)

    @property
    def has_callback(self) -> bool:
        """Is a callback set?"""
        return self._callback is not None

    @property
    def callback(self) -> ReadCallback | None:
        """Function called with each new message, or None.

        A coroutine function is awaited, one message at a time in arrival
        order (concurrently if `allow_multiple_callbacks`); a plain function
        is called as each message arrives. Setting a callback flushes the
        queue; while one is set, `next`, `get_oldest`, `aget` and `flush`
        raise `RuntimeError`. An exception in a callback is logged (without
        traceback for `ExpectedError`).
        """
        return self._callback

    @callback.setter
    def callback(self, func: ReadCallback | None) -> None:
        if func is not None and not callable(func):
            raise TypeError(f"callback {func!r} is not callable")
        self._cancel_callbacks()
        self._callback = func
        if func is not None:
            self._queue.clear()

    def get(self) -> BaseMessage | None:
        """Return the most recent message, or None if none has arrived."""
        return self._latest

    def get_oldest(self) -> BaseMessage | None:
        """Pop and return the oldest queued message, or None if the queue is empty.

        Raises
        ------
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback("get_oldest")
        return self._queue.popleft() if self._queue else None

    async def aget(self, timeout: float | None = None) -> BaseMessage:
        """Return the most recent message, waiting for one if none has arrived.

        Raises
        ------
        TimeoutError
            If no message arrives within ``timeout`` seconds.
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback("aget")
        if self._latest is not None:
            return self._latest
        future: asyncio.Future[BaseMessage] = asyncio.get_running_loop().create_future()
        self._data_waiters.append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if future in self._data_waiters:
                self._data_waiters.remove(future)

    async def next(self, *, flush: bool, timeout: float | None = None) -> BaseMessage:
        """Pop and return the oldest queued message, waiting for one if needed.

        Parameters
        ----------
        flush : `bool`
            Discard queued messages first, so only a new one is returned?
        timeout : `float`, optional
            Time limit in seconds; None waits forever.

        Raises
        ------
        RuntimeError
            If a callback is set.
        TimeoutError
            If no message arrives in time.
        """
        self._assert_no_callback("next")
        if flush:
            self._queue.clear()
        return await self._next(timeout)

    async def _next(self, timeout: float | None) -> BaseMessage:
        if self._queue:
            return self._queue.popleft()
        future: asyncio.Future[BaseMessage] = asyncio.get_running_loop().create_future()
        self._next_waiters.append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if not future.done():
                future.cancel()

    def flush(self) -> None:
        """Discard all queued messages.

        Raises
        ------
        RuntimeError
            If a callback is set.
        """
        self._assert_no_callback("flush")
        self._queue.clear()

    def _assert_no_callback(self, action: str) -> None:
        if self._callback is not None:
            raise RuntimeError(f"{self.attr_name}.{action} is not allowed while a callback is set")

    def _accepts(self, message: BaseMessage) -> bool:
        return self.salinfo.index == 0 or message.salIndex == self.salinfo.index

    def _on_message(self, message: BaseMessage) -> None:
        """Take a message from the transport (called in publication order)."""
        if not self.isopen or not self._accepts(message):
            return
        self._latest = message
        if self._data_waiters:
            for future in self._data_waiters:
                if not future.done():
                    future.set_result(message)
            self._data_waiters.clear()
        if self._callback is not None:
            self._queue_for_callback(message)
            return
        while self._next_waiters:
            future = self._next_waiters.popleft()
            if not future.done():
                future.set_result(message)
                return
        self._queue_one_item(message)

    def _queue_one_item(self, message: BaseMessage) -> None:
        if len(self._queue) == self._queue.maxlen and not self._warned_overflow:
            self._warned_overflow = True
            self.log.warning("Queue of %s is full; dropping the oldest messages", self.attr_name)
        self._queue.append(message)

    def _queue_for_callback(self, message: BaseMessage) -> None:
        callback = self._callback
        assert callback is not None
        if self.allow_multiple_callbacks:
            task = asyncio.create_task(self._run_callback(message))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)
            return
        if (
            self._call_sync_callbacks_now
            and not self._callback_queue
            and not inspect.iscoroutinefunction(callback)
            and not inspect.iscoroutinefunction(type(callback).__call__)
        ):
            # A plain function runs at once, in order: no task, nothing left pending.
            self._call_now(message)
            return
        self._callback_queue.append(message)
        if self._callback_task is None or self._callback_task.done():
            self._callback_task = asyncio.create_task(self._callback_loop())

    def _call_now(self, message: BaseMessage) -> None:
        assert self._callback is not None
        try:
            result = self._callback(message)
            if inspect.isawaitable(result):
                # A callable object whose __call__ is not declared async.
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
        except Exception as e:
            self._log_callback_error(e, message)

    async def _callback_loop(self) -> None:
        while self._callback_queue and self._callback is not None:
            await self._run_callback(self._callback_queue.popleft())

    async def _run_callback(self, message: BaseMessage) -> None:
        callback = self._callback
        if callback is None:
            return
        try:
            result = callback(message)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._log_callback_error(e, message)

    def _log_callback_error(self, error: Exception, message: BaseMessage) -> None:
        if isinstance(error, ExpectedError):
            self.log.error("Callback %s failed on %s: %s", self._callback, self.attr_name, error)
        else:
            self.log.exception("Callback %s failed on %s", self._callback, self.attr_name)

    def _cancel_callbacks(self) -> None:
        self._callback_queue.clear()
        if self._callback_task is not None:
            self._callback_task.cancel()
            self._callback_task = None
        while self._callback_tasks:
            self._callback_tasks.pop().cancel()

    def basic_close(self) -> None:
        """Stop reading: blocked reads are cancelled, callbacks stop. Idempotent."""
        if not self.isopen:
            return
        self.isopen = False
        for future in (*self._next_waiters, *self._data_waiters):
            if not future.done():
                future.cancel()
        self._next_waiters.clear()
        self._data_waiters.clear()
        self._close_callbacks()
        self._queue.clear()

    def _close_callbacks(self) -> None:
        self._callback = None
        self._cancel_callbacks()

    async def close(self) -> None:
        """Stop reading (see `basic_close`)."""
        self.basic_close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.salinfo.name}, {self.salinfo.index}, {self.attr_name})"


class RemoteEvent(ReadTopic):
    """Read one event of a component.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    name : `str`
        Event name without prefix, e.g. ``summaryState``.
    max_history : `int`, optional
        1 (the default) for late-joiner data, 0 for live messages only.
    queue_len : `int`, optional
        Capacity of the read queue.
    """

    def __init__(
        self, salinfo: SalInfo, name: str, max_history: int = 1, queue_len: int = DEFAULT_QUEUE_LEN
    ) -> None:
        super().__init__(
            salinfo=salinfo, attr_name=f"evt_{name}", max_history=max_history, queue_len=queue_len
        )


class RemoteTelemetry(ReadTopic):
    """Read one telemetry topic of a component (live messages only, as in salobj).

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    name : `str`
        Telemetry topic name without prefix.
    queue_len : `int`, optional
        Capacity of the read queue.
    max_history : `int`, optional
        1 for late-joiner data; default 0.
    """

    def __init__(
        self, salinfo: SalInfo, name: str, queue_len: int = DEFAULT_QUEUE_LEN, *, max_history: int = 0
    ) -> None:
        super().__init__(
            salinfo=salinfo, attr_name=f"tel_{name}", max_history=max_history, queue_len=queue_len
        )
