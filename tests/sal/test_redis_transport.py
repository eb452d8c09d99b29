"""The kernel's behaviours over the Redis Streams transport.

Every test runs its own components on a private ``redis-server`` (no
persistence) on 127.0.0.1; the controller and the remote side use separate
transports, so every message crosses the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import SalRetCode
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR, RedisTransport

from .example_csc import ExampleOcps

pytestmark = pytest.mark.skipif(
    not RedisServer.available(), reason="redis-server is not installed (Debian: apt-get install redis-server)"
)

_TRANSPORT_LOGGER = "lsst.ts.calibscripts.sal.redis_transport"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_env(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Select the Redis transport through the environment, as a user would."""
    monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_server.url)
    return redis_server.url


@pytest.fixture
async def csc_domain(redis_env: str) -> AsyncIterator[sal.Domain]:
    async with sal.Domain() as domain:
        yield domain


@pytest.fixture
async def remote_domain(redis_env: str) -> AsyncIterator[sal.Domain]:
    async with sal.Domain() as domain:
        yield domain


@pytest.fixture
async def csc(csc_domain: sal.Domain) -> AsyncIterator[ExampleOcps]:
    async with ExampleOcps(1, domain=csc_domain, initial_state=sal.State.ENABLED) as csc:
        yield csc


@pytest.fixture
async def remote(remote_domain: sal.Domain, csc: ExampleOcps) -> AsyncIterator[sal.Remote]:
    async with sal.Remote(remote_domain, "OCPS", 1) as remote:
        yield remote


class _LogWaiter(logging.Handler):
    """Let a test wait for a log record containing some text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self._waiters: list[tuple[str, asyncio.Event]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.records.append(message)
        for text, event in self._waiters:
            if text in message:
                event.set()

    async def wait_for(self, text: str, timeout: float = 20) -> None:
        event = asyncio.Event()
        if any(text in message for message in self.records):
            return
        self._waiters.append((text, event))
        await asyncio.wait_for(event.wait(), timeout)


@pytest.fixture
def transport_log() -> Iterator[_LogWaiter]:
    logger = logging.getLogger(_TRANSPORT_LOGGER)
    handler = _LogWaiter()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_selected_by_name_without_import(redis_env: str) -> None:
    transport = sal.make_transport()
    assert isinstance(transport, RedisTransport)
    assert transport.url == redis_env
    assert transport.child_environment() == {sal.TRANSPORT_ENV_VAR: "redis", REDIS_URL_ENV_VAR: redis_env}
    assert sal.LocalTransport().child_environment() is None
    with pytest.raises(ValueError, match="known: local, redis"):
        sal.make_transport("kafka")


async def test_unreachable_server_is_a_clear_error() -> None:
    unused = RedisServer()  # not started: nothing listens on its port
    transport = RedisTransport(unused.url)
    with pytest.raises(
        ConnectionError, match=rf"Cannot connect to Redis at {unused.url}.*CALIBSCRIPTS_REDIS_URL"
    ):
        await transport.start()


async def test_command_round_trip_and_acks(remote: sal.Remote, csc: ExampleOcps) -> None:
    ack = await remote.cmd_execute.set_start(pipeline="ok", timeout=10)
    assert (ack.ack, ack.result) == (SalRetCode.CMD_COMPLETE, "Done")
    with pytest.raises(sal.AckError) as info:
        await remote.cmd_execute.set_start(pipeline="expected", timeout=10)
    assert info.value.ackcmd.ack == SalRetCode.CMD_FAILED
    assert info.value.ackcmd.result == "Failed: not possible now"
    first = await remote.cmd_execute.set_start(pipeline="progress:10:0.1", timeout=10, wait_done=False)
    assert first.ack == SalRetCode.CMD_INPROGRESS
    final = await remote.cmd_execute.next_ackcmd(first, timeout=10)
    assert final.ack == SalRetCode.CMD_COMPLETE
    assert csc.executed == ["ok", "expected", "progress:10:0.1"]


async def test_late_joiner_per_index_and_index_zero(
    csc_domain: sal.Domain, remote_domain: sal.Domain
) -> None:
    async with ExampleOcps(1, domain=csc_domain) as c1, ExampleOcps(2, domain=csc_domain) as c2:
        await c1.evt_job_result.set_write(job_id="one", exit_code=0)
        await c2.evt_job_result.set_write(job_id="two-old", exit_code=1)
        await c2.evt_job_result.set_write(job_id="two", exit_code=1)
        async with sal.Remote(remote_domain, "OCPS", 2) as r2:
            data = r2.evt_job_result.get()
            assert data is not None
            assert (data.job_id, data.salIndex) == ("two", 2)
            assert data.private_rcvStamp >= data.private_sndStamp > 0
        async with sal.Remote(remote_domain, "OCPS", 0) as everyone:
            history = [await everyone.evt_job_result.next(flush=False, timeout=5) for _ in range(2)]
            # History comes in publication order.
            assert [d.job_id for d in history] == ["one", "two"]
            await c1.evt_job_result.set_write(job_id="one-live")
            live = await everyone.evt_job_result.next(flush=False, timeout=5)
            assert (live.job_id, live.salIndex) == ("one-live", 1)
        async with sal.Remote(remote_domain, "OCPS", 1, evt_max_history=0) as no_history:
            assert no_history.evt_job_result.get() is None


async def test_order_of_a_burst(csc: ExampleOcps, remote: sal.Remote) -> None:
    n = 300
    # Concurrent writes: publication order is the order of the calls.
    await asyncio.gather(*(csc.evt_job_result.set_write(job_id=str(i)) for i in range(n)))
    received = [(await remote.evt_job_result.next(flush=False, timeout=10)).job_id for _ in range(n)]
    assert received == [str(i) for i in range(n)]


async def test_history_then_live_without_gap_or_duplicate(redis_env: str) -> None:
    model = sal.message_model(sal.ComponentInterface.load("OCPS").events["job_result"])
    topic = "lsst.test.OCPS.logevent_job_result"
    publisher, subscriber = RedisTransport(), RedisTransport()
    await publisher.start()
    await subscriber.start()
    try:
        await publisher.publish(topic, model(salIndex=1, exit_code=0))  # something to join late
        stop = asyncio.Event()

        async def publish_until_stopped() -> int:
            count = 1
            while not stop.is_set():
                await publisher.publish(topic, model(salIndex=1, exit_code=count))
                count += 1
            return count

        received: list[int] = []
        enough = asyncio.Event()
        last_seen = asyncio.Event()
        last = -1

        def on_message(message: sal.BaseMessage) -> None:
            received.append(message.exit_code)
            if len(received) >= 20:
                enough.set()
            if message.exit_code == last:
                last_seen.set()

        task = asyncio.create_task(publish_until_stopped())
        # Subscribe while messages are being written: whatever the
        # interleaving, each message is seen once, in order, history first.
        subscription = await subscriber.subscribe(topic, model, on_message, history=True)
        await asyncio.wait_for(enough.wait(), 20)
        stop.set()
        last = await task - 1
        if received[-1] != last:
            await asyncio.wait_for(last_seen.wait(), 20)
        subscription.close()
        assert received == list(range(received[0], last + 1))
    finally:
        await publisher.close()
        await subscriber.close()


async def test_streams_and_late_joiner_data_are_bounded(redis_env: str) -> None:
    model = sal.message_model(sal.ComponentInterface.load("OCPS").events["job_result"])
    topic = "lsst.test.OCPS.logevent_job_result"
    transport = RedisTransport(maxlen=10, max_indices=3)
    await transport.start()
    client = redis.asyncio.Redis.from_url(redis_env)
    try:
        await client.delete(topic, f"{topic}:latest", f"{topic}:latest_order")
        for i in range(600):
            await transport.publish(topic, model(salIndex=i % 5 + 1, exit_code=i))
        # MAXLEN ~ trims whole nodes of up to 100 entries at a time.
        assert await client.xlen(topic) <= 10 + 100
        # Indices 1..5 wrote in turn, so the last three written are kept.
        assert sorted(await client.hkeys(f"{topic}:latest")) == [b"3", b"4", b"5"]
        received: list[int] = []
        subscription = await transport.subscribe(
            topic, model, lambda m: received.append(m.exit_code), history=True
        )
        subscription.close()
        assert received == [597, 598, 599]
    finally:
        await client.aclose()
        await transport.close()


async def test_reconnects_after_server_restart(
    monkeypatch: pytest.MonkeyPatch, transport_log: _LogWaiter
) -> None:
    with RedisServer() as server:
        monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
        monkeypatch.setenv(REDIS_URL_ENV_VAR, server.url)
        async with (
            sal.Domain() as csc_domain,
            sal.Domain() as remote_domain,
            ExampleOcps(1, domain=csc_domain, initial_state=sal.State.ENABLED) as csc,
            sal.Remote(remote_domain, "OCPS", 1) as remote,
        ):
            await remote.cmd_execute.set_start(pipeline="before", timeout=10)

            server.kill()
            await transport_log.wait_for("Lost connection to Redis")
            # Sent while the server is down: both publishes wait and retry.
            command = asyncio.create_task(remote.cmd_execute.set_start(pipeline="during", timeout=60))
            event = asyncio.create_task(csc.evt_job_result.set_write(job_id="during", force_output=True))
            await transport_log.wait_for("Could not publish")
            await asyncio.to_thread(server.start)

            ack = await asyncio.wait_for(command, 30)
            assert ack.ack == SalRetCode.CMD_COMPLETE
            await asyncio.wait_for(event, 30)
            seen = []
            while "during" not in seen:
                seen.append((await remote.evt_job_result.next(flush=False, timeout=30)).job_id)
            await transport_log.wait_for("the server had restarted")
            assert csc.executed[-1] == "during"

            # The restarted server lost everything; the CSC wrote its latest
            # events back, so a component started now still sees its state.
            async with sal.Domain() as late_domain, sal.Remote(late_domain, "OCPS", 1) as late:
                state = await late.evt_summaryState.aget(timeout=10)
                assert state.summaryState == sal.State.ENABLED
                ack = await late.cmd_execute.set_start(pipeline="after", timeout=10)
                assert ack.ack == SalRetCode.CMD_COMPLETE


async def test_close_fails_a_publish_the_server_never_took(transport_log: _LogWaiter) -> None:
    model = sal.message_model(sal.ComponentInterface.load("OCPS").events["job_result"])
    with RedisServer() as server:
        transport = RedisTransport(server.url)
        await transport.start()
        server.kill()
        publish = asyncio.create_task(transport.publish("lsst.test.OCPS.logevent_job_result", model()))
        await transport_log.wait_for("Could not publish")
        await transport.close()
        with pytest.raises(ConnectionError, match="closed before the message was sent"):
            await asyncio.wait_for(publish, 10)


async def test_bad_entries_and_failing_callbacks_do_not_stop_the_reader(
    redis_env: str, transport_log: _LogWaiter
) -> None:
    model = sal.message_model(sal.ComponentInterface.load("OCPS").events["job_result"])
    topic = "lsst.test.OCPS.logevent_job_result"
    transport = RedisTransport()
    await transport.start()
    client = redis.asyncio.Redis.from_url(redis_env)
    try:
        received: list[str] = []
        got_last = asyncio.Event()

        def fail(message: sal.BaseMessage) -> None:
            raise RuntimeError("callback bug")

        def keep(message: sal.BaseMessage) -> None:
            received.append(message.job_id)
            if message.job_id == "last":
                got_last.set()

        await transport.subscribe(topic, model, fail, history=False)
        await transport.subscribe(topic, model, keep, history=False)
        await client.xadd(topic, {"m": b'{"job_id": 3}'})  # wrong type
        await client.xadd(topic, {"other": b"x"})  # not a message at all
        await transport.publish(topic, model(job_id="last"))
        await asyncio.wait_for(got_last.wait(), 10)
        assert received == ["last"]
        await transport_log.wait_for("Subscriber of lsst.test.OCPS.logevent_job_result failed")
        await transport_log.wait_for("that is not a valid OCPS_logevent_job_result")
    finally:
        await client.aclose()
        await transport.close()
