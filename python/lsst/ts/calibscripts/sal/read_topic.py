"""Readers of events and telemetry (and the base of command readers)."""

from __future__ import annotations

__all__ = ["DEFAULT_QUEUE_LEN", "ReadCallback", "ReadTopic"]

import asyncio
import collections
import inspect
import logging
from collections.abc import Awaitable, Callable

from .interface import TopicDefinition
from .messages import BaseMessage
from .sal_info import SalInfo

#: Messages kept for `ReadTopic.next` before the oldest is dropped.
DEFAULT_QUEUE_LEN = 1000

ReadCallback = Callable[[BaseMessage], Awaitable[None] | None]


class ReadTopic:
    """Read one topic: the latest value, a queue of new ones, or a callback.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    definition : `TopicDefinition`
        The topic.
    max_history : `int`
        1 to receive the most recent message per index on start (late
        joiner), 0 for live messages only.
    queue_len : `int`, optional
        Capacity of the queue `next` reads from.

    Notes
    -----
    A Remote of index 0 receives the messages of every index; otherwise
    only messages whose ``salIndex`` matches are seen.
    """

    def __init__(
        self,
        *,
        salinfo: SalInfo,
        definition: TopicDefinition,
        max_history: int,
        queue_len: int = DEFAULT_QUEUE_LEN,
    ) -> None:
        self.salinfo = salinfo
        self.definition = definition
        self.max_history = max_history
        self.log = logging.getLogger(f"{salinfo.name}.{definition.attr_name}")
        self._latest: BaseMessage | None = None
        self._queue: collections.deque[BaseMessage] = collections.deque(maxlen=queue_len)
        self._next_waiters: collections.deque[asyncio.Future[BaseMessage]] = collections.deque()
        self._data_waiters: list[asyncio.Future[BaseMessage]] = []
        self._callback: ReadCallback | None = None
        self._callback_queue: collections.deque[BaseMessage] = collections.deque()
        self._callback_task: asyncio.Task[None] | None = None
        self._warned_overflow = False
        salinfo.add_reader(self)

    @property
    def name(self) -> str:
        """Short topic name."""
        return self.definition.name

    @property
    def has_data(self) -> bool:
        """Has any message been received?"""
        return self._latest is not None

    @property
    def nqueued(self) -> int:
        """Number of messages waiting to be read by `next`."""
        return len(self._queue)

    @property
    def callback(self) -> ReadCallback | None:
        """Function called with each new message, or None.

        A plain function is called as the message arrives; a coroutine
        function is awaited, one message at a time, in arrival order. While
        a callback is set, `next` may not be used.
        """
        return self._callback

    @callback.setter
    def callback(self, func: ReadCallback | None) -> None:
        if func is not None and not callable(func):
            raise TypeError(f"callback {func!r} is not callable")
        self._callback = func
        if func is not None:
            self._queue.clear()

    def get(self) -> BaseMessage | None:
        """Return the most recent message, or None if none has arrived."""
        return self._latest

    async def aget(self, timeout: float | None = None) -> BaseMessage:
        """Return the most recent message, waiting for one if needed.

        Raises
        ------
        TimeoutError
            If no message arrives within ``timeout`` seconds.
        """
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
        """Return the next unread message, waiting for one if needed.

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
        if self._callback is not None:
            raise RuntimeError(f"{self.definition.attr_name}.next is not allowed while a callback is set")
        if flush:
            self._queue.clear()
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
        """Discard all queued messages."""
        self._queue.clear()

    def _accepts(self, message: BaseMessage) -> bool:
        return self.salinfo.index == 0 or message.salIndex == self.salinfo.index

    def _on_message(self, message: BaseMessage) -> None:
        """Take a message from the transport (called in publication order)."""
        if not self._accepts(message):
            return
        self._latest = message
        if self._data_waiters:
            for future in self._data_waiters:
                if not future.done():
                    future.set_result(message)
            self._data_waiters.clear()
        if self._callback is not None:
            if not self._callback_queue and not inspect.iscoroutinefunction(self._callback):
                # A plain function runs at once, in order: no task, nothing left pending.
                self._call_now(message)
                return
            self._callback_queue.append(message)
            if self._callback_task is None or self._callback_task.done():
                self._callback_task = asyncio.create_task(self._run_callbacks())
            return
        while self._next_waiters:
            future = self._next_waiters.popleft()
            if not future.done():
                future.set_result(message)
                return
        if len(self._queue) == self._queue.maxlen and not self._warned_overflow:
            self._warned_overflow = True
            self.log.warning("Queue of %s is full; dropping the oldest messages", self.definition.attr_name)
        self._queue.append(message)

    def _call_now(self, message: BaseMessage) -> None:
        assert self._callback is not None
        try:
            result = self._callback(message)
            if inspect.isawaitable(result):
                raise TypeError("a plain-function callback returned an awaitable; use an async def callback")
        except Exception:
            self.log.exception("Callback %s failed on %s", self._callback, self.definition.attr_name)

    async def _run_callbacks(self) -> None:
        while self._callback_queue and self._callback is not None:
            message = self._callback_queue.popleft()
            try:
                result = self._callback(message)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("Callback %s failed on %s", self._callback, self.definition.attr_name)

    def _close(self) -> None:
        for future in (*self._next_waiters, *self._data_waiters):
            if not future.done():
                future.cancel()
        self._next_waiters.clear()
        self._data_waiters.clear()
        if self._callback_task is not None:
            self._callback_task.cancel()
