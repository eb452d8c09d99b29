"""The Redis Streams transport: components in separate processes and hosts.

Each topic is one Redis stream named like the topic
(``lsst.<subname>.<Component>.<sal_name>``); each entry holds one message,
serialised as JSON from its pydantic model. Beside each stream, a hash
``<topic>:latest`` keeps the most recent message per SAL index for late
joiners, and a sorted set ``<topic>:latest_order`` remembers when each
index last wrote, so that the hash keeps only the most recently active
indices. A Lua script appends to the stream and updates both in one atomic
step, so a reader that takes the hash and the stream's last entry id in one
transaction knows exactly which live entries come after its history.

Streams are trimmed to about ``maxlen`` entries (``XADD MAXLEN ~``): a
reader that falls that far behind loses the oldest messages, as a reader of
the in-process transport would once its queue overflowed.

One task per transport reads every subscribed stream with a single blocking
``XREAD`` and calls subscribers' callbacks on the event loop, one at a time,
in stream order. One task writes: publishes are queued and sent in
pipelined batches, in call order, so a burst costs one round trip.

If the server goes away, both tasks log it once and retry with backoff;
readers resume from the last entry they delivered and queued publishes are
sent when the server is back (delivery is at least once: a batch whose
reply was lost is sent again). If the server restarted without its data,
the transport writes the latest message it had published on each topic back
into the late-joiner hashes, so components started after the restart still
see, e.g., each CSC's summary state.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_INDICES",
    "DEFAULT_REDIS_URL",
    "REDIS_URL_ENV_VAR",
    "RedisTransport",
]

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import pydantic
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .messages import BaseMessage, copy_message
from .timestamps import current_tai
from .transport import TRANSPORT_ENV_VAR, MessageCallback, Subscription, Transport, register_transport

_log = logging.getLogger(__name__)

#: Environment variable with the URL of the Redis server.
REDIS_URL_ENV_VAR = "CALIBSCRIPTS_REDIS_URL"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"

#: Approximate number of entries kept per stream.
DEFAULT_MAXLEN = 1000
#: Number of SAL indices per topic whose latest message is kept for late
#: joiners (the least recently written are forgotten first).
DEFAULT_MAX_INDICES = 1000

# How long one XREAD blocks (ms) before it is sent again; short enough that
# a silently dead connection is noticed, long enough to cost nothing.
_BLOCK_MS = 5000
# Socket timeout (s): must exceed the XREAD block time.
_SOCKET_TIMEOUT = _BLOCK_MS / 1000 + 5
_CONNECT_TIMEOUT = 2.0
# Entries read per stream per XREAD, and messages per write batch.
_READ_COUNT = 500
_WRITE_BATCH = 500
# Retry delays while the server is unreachable (s).
_RETRY_INITIAL = 0.05
_RETRY_MAX = 1.0
# Time close() gives queued publishes to go out (s).
_CLOSE_FLUSH_TIMEOUT = 2.0

# Errors that mean "the server cannot be reached now", as opposed to errors
# the server reports about a command.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)

# KEYS: stream, latest hash, latest order; ARGV: payload, salIndex, maxlen,
# max indices. Returns the new entry id.
_PUBLISH_LUA = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], id .. ' ' .. ARGV[1])
-- Forget the least recently written indices beyond the limit, never this one.
redis.call('ZREM', KEYS[3], ARGV[2])
local excess = redis.call('ZCARD', KEYS[3]) - (tonumber(ARGV[4]) - 1)
if excess > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], excess)
  for i = 1, #popped, 2 do
    redis.call('HDEL', KEYS[2], popped[i])
  end
end
redis.call('ZADD', KEYS[3], tonumber(string.match(id, '^%d+')), ARGV[2])
return id
"""

_StreamId = tuple[int, int]
_T = TypeVar("_T")


def _parse_id(raw: bytes | str) -> _StreamId:
    """Parse a stream entry id ``b"<ms>-<seq>"`` into comparable integers."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _latest_key(topic_name: str) -> str:
    return f"{topic_name}:latest"


def _order_key(topic_name: str) -> str:
    return f"{topic_name}:latest_order"


class _Backoff:
    """Delays between retries while the server is unreachable: doubling, capped."""

    def __init__(self) -> None:
        self._delay = _RETRY_INITIAL

    async def wait(self) -> None:
        await asyncio.sleep(self._delay)
        self._delay = min(2 * self._delay, _RETRY_MAX)

    def reset(self) -> None:
        self._delay = _RETRY_INITIAL


class _RedisSubscription(Subscription):
    """One callback on one stream, delivered entries after ``start_after``."""

    def __init__(
        self,
        stream: _Stream,
        model: type[BaseMessage],
        callback: MessageCallback,
        start_after: _StreamId,
    ) -> None:
        self.stream = stream
        self.model = model
        self.callback = callback
        # Entries up to this id were part of the history snapshot (or
        # predate the subscription): never deliver them live.
        self.start_after = start_after

    def close(self) -> None:
        self.stream.remove(self)


class _Stream:
    """Read state of one subscribed stream: cursor and subscriptions."""

    def __init__(self, transport: RedisTransport, key: str, cursor: _StreamId) -> None:
        self.transport = transport
        self.key = key
        self.cursor = cursor
        self.subscriptions: list[_RedisSubscription] = []

    @property
    def cursor_text(self) -> str:
        return f"{self.cursor[0]}-{self.cursor[1]}"

    def remove(self, subscription: _RedisSubscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        if not self.subscriptions:
            self.transport._forget_stream(self)


@dataclasses.dataclass
class _Outgoing:
    """A message waiting to be written, and the future its publisher awaits."""

    topic_name: str
    sal_index: int
    payload: bytes
    future: asyncio.Future[None]


class RedisTransport(Transport):
    """Move messages through Redis Streams, between processes and hosts.

    Parameters
    ----------
    url : `str`, optional
        Server URL, e.g. ``redis://host:6379/0``; defaults to
        ``$CALIBSCRIPTS_REDIS_URL``, else ``redis://localhost:6379/0``.
    maxlen : `int`, optional
        Approximate number of entries kept per stream.
    max_indices : `int`, optional
        Number of SAL indices per topic whose latest message is kept for
        late joiners.

    Notes
    -----
    Guarantees, beyond those of `Transport`: delivery is at least once (a
    batch of publishes whose reply was lost in a disconnection is sent
    again); messages of different topics arrive roughly in publication
    order (ordered by server time, then send time, within each read), which
    is all the in-process transport's callers rely on across topics.
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        max_indices: int = DEFAULT_MAX_INDICES,
    ) -> None:
        if maxlen < 1 or max_indices < 1:
            raise ValueError(f"maxlen={maxlen} and max_indices={max_indices} must both be positive")
        self.url = url or os.environ.get(REDIS_URL_ENV_VAR, "") or DEFAULT_REDIS_URL
        self.maxlen = maxlen
        self.max_indices = max_indices
        self._client: redis.asyncio.Redis | None = None
        self._publish_sha = ""
        self._streams: dict[str, _Stream] = {}
        # A private stream the reader always watches: writing to it wakes a
        # blocked XREAD so that it picks up new subscriptions.
        self._wake_key = f"calibscripts:wake:{uuid.uuid4().hex}"
        self._wake_cursor: _StreamId = (0, 0)
        self._reading = False
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        # The batch the writer is sending (taken from the outbox).
        self._sending: list[_Outgoing] = []
        # The latest message this transport published per topic and index,
        # to restore late-joiner data after a server restart that lost it.
        self._own_latest: dict[str, collections.OrderedDict[int, bytes]] = {}
        self._run_id = ""
        self._connected = False
        self._lost_at = 0.0
        self._reconnect_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- connection ----------------------------------------------------------

    async def start(self) -> None:
        """Connect to the server and start reading and writing.

        Raises
        ------
        ConnectionError
            If the server cannot be reached (the message names the URL).
        """
        if self._client is not None:
            raise RuntimeError("RedisTransport already started")
        # Retries are ours (with logging and backoff), not the client's.
        self._client = redis.asyncio.Redis.from_url(
            self.url,
            socket_timeout=_SOCKET_TIMEOUT,
            socket_connect_timeout=_CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            self._run_id = await self._server_run_id()
            await self._load_scripts()
        except _CONNECTION_ERRORS as e:
            await self._client.aclose()
            raise ConnectionError(
                f"Cannot connect to Redis at {self.url}: {e}. Start redis-server, or set "
                f"{REDIS_URL_ENV_VAR} to the URL of a running server."
            ) from e
        self._connected = True
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"{self._wake_key} reader"),
            asyncio.create_task(self._write_loop(), name=f"{self._wake_key} writer"),
        ]

    async def close(self) -> None:
        """Send queued messages (briefly), stop reading and disconnect. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._client is None:
            return
        if self._connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), _CLOSE_FLUSH_TIMEOUT)
        sending = self._sending
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Whatever could not be sent: its publishers must not wait forever.
        unsent = sending + [self._outbox.get_nowait() for _ in range(self._outbox.qsize())]
        for outgoing in unsent:
            if not outgoing.future.done():
                outgoing.future.set_exception(
                    ConnectionError(f"RedisTransport to {self.url} closed before the message was sent")
                )
        if self._connected:
            # Failing to delete is harmless: the key holds one tiny entry and expires.
            with contextlib.suppress(redis.exceptions.RedisError, ConnectionError, TimeoutError):
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    await self._client.delete(self._wake_key)
        await self._client.aclose()

    def child_environment(self) -> dict[str, str]:
        """Select this transport and server in a child process."""
        return {TRANSPORT_ENV_VAR: self.name, REDIS_URL_ENV_VAR: self.url}

    @property
    def connected(self) -> bool:
        """Was the last exchange with the server successful?"""
        return self._connected

    def _require_client(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise RuntimeError("RedisTransport not started: call start() (Domain.start does)")
        if self._closed:
            raise RuntimeError(f"RedisTransport to {self.url} is closed")
        return self._client

    async def _server_run_id(self) -> str:
        info = await self._require_client().info("server")
        return str(info.get("run_id", ""))

    async def _load_scripts(self) -> None:
        self._publish_sha = await self._require_client().script_load(_PUBLISH_LUA)

    def _connection_lost(self, error: BaseException) -> None:
        if self._connected:
            self._connected = False
            self._lost_at = time.monotonic()
            _log.warning(
                "Lost connection to Redis at %s (%s); readers will resume and publishes will be "
                "retried every %s s at most until it is back",
                self.url,
                str(error) or type(error).__name__,
                _RETRY_MAX,
            )

    async def _connection_ok(self) -> None:
        """Note a successful exchange; after an outage, repair what a restart lost."""
        if self._connected:
            return
        async with self._reconnect_lock:
            if self._connected:
                return
            try:
                run_id = await self._server_run_id()
                restarted = run_id != self._run_id
                if restarted:
                    await self._load_scripts()
                    await self._restore_latest()
            except _CONNECTION_ERRORS as e:
                self._connection_lost(e)
                return
            self._run_id = run_id
            self._connected = True
            outage = time.monotonic() - self._lost_at
            if restarted:
                _log.warning(
                    "Reconnected to Redis at %s after %.1f s; the server had restarted, so the latest "
                    "message of %d topic(s) published here was written back for late joiners",
                    self.url,
                    outage,
                    len(self._own_latest),
                )
            else:
                _log.warning("Reconnected to Redis at %s after %.1f s", self.url, outage)

    async def _restore_latest(self) -> None:
        """Write back the late-joiner data a restarted server lost (never overwriting)."""
        if not self._own_latest:
            return
        async with self._require_client().pipeline(transaction=False) as pipe:
            for topic_name, by_index in self._own_latest.items():
                for sal_index, payload in by_index.items():
                    # Id 0-0: older than anything written since the restart.
                    pipe.hsetnx(_latest_key(topic_name), str(sal_index), b"0-0 " + payload)
                    pipe.zadd(_order_key(topic_name), {str(sal_index): 0}, nx=True)
            await pipe.execute()

    async def _retry(self, func: Callable[[], Awaitable[_T]]) -> _T:
        """Call ``func`` until the server answers it."""
        backoff = _Backoff()
        while True:
            try:
                result = await func()
            except _CONNECTION_ERRORS as e:
                self._connection_lost(e)
                await backoff.wait()
                continue
            await self._connection_ok()
            return result

    # --- publishing ----------------------------------------------------------

    async def publish(self, topic_name: str, message: BaseMessage) -> None:
        """Queue a message for the writer and wait until the server has it.

        Once called, the message is sent even if the caller is cancelled
        while waiting, as with the in-process transport.

        Raises
        ------
        redis.exceptions.ResponseError
            If the server refused the message (e.g. out of memory).
        ConnectionError
            If the transport was closed before the message could be sent.
        """
        self._require_client()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        payload = message.model_dump_json().encode()
        self._outbox.put_nowait(_Outgoing(topic_name, message.salIndex, payload, future))
        await future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < _WRITE_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            self._sending = batch
            try:
                # Messages whose publisher was cancelled meanwhile are sent too:
                # a component that closes right after acknowledging a command
                # (exitControl, a script's last command) cancels the publisher
                # of that ack, which must still arrive, as it would in process.
                await self._send(batch)
            except Exception as e:
                _log.exception("Could not publish %d message(s) to Redis at %s", len(batch), self.url)
                for outgoing in batch:
                    if not outgoing.future.done():
                        outgoing.future.set_exception(e)
            finally:
                self._sending = []
                for _ in batch:
                    self._outbox.task_done()

    async def _send(self, batch: list[_Outgoing]) -> None:
        """Write a batch in one pipelined round trip, retrying while disconnected."""
        backoff = _Backoff()
        reload_script = False
        while batch:
            try:
                if reload_script:
                    await self._load_scripts()
                    reload_script = False
                results = await self._pipeline_publish(batch)
            except _CONNECTION_ERRORS as e:
                self._connection_lost(e)
                _log.debug("Could not publish %d message(s) (%s); retrying", len(batch), e)
                await backoff.wait()
                continue
            await self._connection_ok()
            retry: list[_Outgoing] = []
            for outgoing, result in zip(batch, results, strict=True):
                if isinstance(result, redis.exceptions.NoScriptError):
                    retry.append(outgoing)  # the server restarted and forgot the script
                elif isinstance(result, Exception):
                    if not outgoing.future.done():
                        outgoing.future.set_exception(result)
                else:
                    self._remember(outgoing)
                    if not outgoing.future.done():
                        outgoing.future.set_result(None)
            reload_script = bool(retry)
            batch = retry

    async def _pipeline_publish(self, batch: Sequence[_Outgoing]) -> list[Any]:
        async with self._require_client().pipeline(transaction=False) as pipe:
            for outgoing in batch:
                name = outgoing.topic_name
                pipe.evalsha(
                    self._publish_sha,
                    3,
                    name,
                    _latest_key(name),
                    _order_key(name),
                    outgoing.payload,
                    outgoing.sal_index,
                    self.maxlen,
                    self.max_indices,
                )
            return list(await pipe.execute(raise_on_error=False))

    def _remember(self, outgoing: _Outgoing) -> None:
        by_index = self._own_latest.setdefault(outgoing.topic_name, collections.OrderedDict())
        by_index[outgoing.sal_index] = outgoing.payload
        by_index.move_to_end(outgoing.sal_index)
        if len(by_index) > self.max_indices:
            by_index.popitem(last=False)

    # --- subscribing and reading ---------------------------------------------

    async def subscribe(
        self,
        topic_name: str,
        model: type[BaseMessage],
        callback: MessageCallback,
        *,
        history: bool,
    ) -> Subscription:
        """Subscribe; history (if asked for) is delivered before this returns.

        Live messages are those written after the history snapshot; they
        are delivered by the reader task, in stream order.
        """
        client = self._require_client()

        async def snapshot() -> tuple[dict[bytes, bytes], list[Any]]:
            async with client.pipeline(transaction=True) as pipe:
                if history:
                    pipe.hgetall(_latest_key(topic_name))
                pipe.xrevrange(topic_name, count=1)
                results = await pipe.execute()
            return (results[0] if history else {}), results[-1]

        latest, last_entry = await self._retry(snapshot)
        start_after = _parse_id(last_entry[0][0]) if last_entry else (0, 0)
        if history:
            entries = []
            for value in latest.values():
                raw_id, _, payload = value.partition(b" ")
                entries.append((_parse_id(raw_id), payload))
            for _, payload in sorted(entries, key=lambda entry: entry[0]):
                message = self._decode(topic_name, model, payload)
                if message is not None:
                    message.private_rcvStamp = current_tai()
                    self._call(topic_name, callback, message)
        stream = self._streams.get(topic_name)
        if stream is None:
            stream = self._streams[topic_name] = _Stream(self, topic_name, start_after)
        subscription = _RedisSubscription(stream, model, callback, start_after)
        stream.subscriptions.append(subscription)
        if self._reading:
            # The reader is blocked in an XREAD that does not include this stream.
            await self._wake_reader()
        return subscription

    def _forget_stream(self, stream: _Stream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]

    async def _wake_reader(self) -> None:
        try:
            async with self._require_client().pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": b""}, maxlen=1, approximate=False)
                pipe.expire(self._wake_key, 86400)
                await pipe.execute()
        except _CONNECTION_ERRORS as e:
            # The reader is failing too; it rebuilds its stream list when it reconnects.
            self._connection_lost(e)

    async def _read_loop(self) -> None:
        client = self._require_client()
        backoff = _Backoff()
        while True:
            streams: dict[Any, Any] = {self._wake_key: "{}-{}".format(*self._wake_cursor)}
            streams.update({key: stream.cursor_text for key, stream in self._streams.items()})
            self._reading = True
            try:
                response = await client.xread(streams, count=_READ_COUNT, block=_BLOCK_MS)
            except _CONNECTION_ERRORS as e:
                self._connection_lost(e)
                await backoff.wait()
                continue
            except redis.exceptions.RedisError:
                # E.g. a key of ours overwritten with another type: keep reading the rest.
                _log.exception("Reading from Redis at %s failed; retrying", self.url)
                await backoff.wait()
                continue
            finally:
                self._reading = False
            backoff.reset()
            await self._connection_ok()
            if response:
                self._deliver(response)

    def _deliver(self, response: Iterable[Any]) -> None:
        """Deliver one XREAD response: every stream's entries, merged by time."""
        per_stream: list[list[tuple[tuple[int, float], _Stream, _StreamId, bytes, BaseMessage]]] = []
        for raw_key, entries in response:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if key == self._wake_key:
                self._wake_cursor = _parse_id(entries[-1][0])
                continue
            stream = self._streams.get(key)
            if stream is None or not entries:
                continue  # unsubscribed meanwhile
            stream.cursor = _parse_id(entries[-1][0])
            model = stream.subscriptions[0].model
            decoded = []
            for raw_id, fields in entries:
                entry_id, payload = _parse_id(raw_id), fields.get(b"m", b"")
                message = self._decode(key, model, payload)
                if message is not None:
                    decoded.append(
                        ((entry_id[0], message.private_sndStamp), stream, entry_id, payload, message)
                    )
            per_stream.append(decoded)
        # Each stream's entries stay in stream order (merge only compares
        # heads); across streams, server milliseconds then send time.
        merged = per_stream[0] if len(per_stream) == 1 else heapq.merge(*per_stream, key=lambda e: e[0])
        for _, stream, entry_id, payload, message in merged:
            message.private_rcvStamp = current_tai()
            # Each reader gets its own copy, which it may change (messages are
            # mutable, as in salobj).
            received: dict[type[BaseMessage], BaseMessage | None] = {type(message): message}
            for subscription in tuple(stream.subscriptions):
                if entry_id <= subscription.start_after:
                    continue
                if subscription.model not in received:
                    other = self._decode(stream.key, subscription.model, payload)
                    if other is not None:
                        other.private_rcvStamp = message.private_rcvStamp
                    received[subscription.model] = other
                delivered = received[subscription.model]
                if delivered is not None:
                    self._call(stream.key, subscription.callback, copy_message(delivered))

    @staticmethod
    def _decode(topic_name: str, model: type[BaseMessage], payload: bytes | str) -> BaseMessage | None:
        try:
            return model.model_validate_json(payload)
        except pydantic.ValidationError:
            _log.exception("Dropping a message on %s that is not a valid %s", topic_name, model.__name__)
            return None

    @staticmethod
    def _call(topic_name: str, callback: MessageCallback, message: BaseMessage) -> None:
        try:
            callback(message)
        except Exception:
            _log.exception("Subscriber of %s failed on a message", topic_name)


register_transport(RedisTransport.name, RedisTransport)
