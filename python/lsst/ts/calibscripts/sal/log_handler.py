"""Publish a controller's log records as ``logMessage`` events."""

from __future__ import annotations

__all__ = ["SalLogHandler"]

import asyncio
import logging
import os
import threading
import traceback
import typing

from .timestamps import tai_from_utc

if typing.TYPE_CHECKING:
    from .write_topic import WriteTopic


class SalLogHandler(logging.Handler):
    """A logging handler that writes each record as a ``logMessage`` event.

    Records are queued and written in order by a task on the controller's
    event loop, so logging never blocks and can be called from any thread.
    `close_and_flush` writes everything still queued, so the last words of
    a component (e.g. why a script failed) are never lost.

    Parameters
    ----------
    topic : `WriteTopic`
        The ``evt_logMessage`` writer.
    """

    def __init__(self, topic: WriteTopic) -> None:
        super().__init__()
        self.topic = topic
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._queue: asyncio.Queue[dict[str, typing.Any] | None] = asyncio.Queue()
        self._task = self._loop.create_task(self._write_loop())
        self._closing = False

    def emit(self, record: logging.LogRecord) -> None:
        """Queue a record for writing."""
        if self._closing:
            return
        try:
            self.format(record)
            tb = ""
            if record.exc_info:
                tb = "".join(traceback.format_exception(*record.exc_info))
            fields = dict(
                name=record.name,
                level=record.levelno,
                message=record.getMessage(),
                traceback=tb,
                filePath=record.pathname,
                functionName=record.funcName,
                lineNumber=record.lineno,
                process=record.process or os.getpid(),
                timestamp=tai_from_utc(record.created),
            )
            if threading.get_ident() == self._thread_id:
                self._queue.put_nowait(fields)
            else:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, fields)
        except Exception:
            self.handleError(record)

    async def _write_loop(self) -> None:
        while True:
            fields = await self._queue.get()
            if fields is None:
                self._queue.task_done()
                return
            try:
                await self.topic.set_write(force_output=True, **fields)
            except Exception:
                # Nowhere left to report a failure to publish a log message.
                traceback.print_exc()
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every record logged so far has been written."""
        if not self._task.done():
            await self._queue.join()

    async def close_and_flush(self) -> None:
        """Write every queued record, then stop."""
        self._closing = True
        self._queue.put_nowait(None)
        await self._task
