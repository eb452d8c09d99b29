"""Reading events: late joiners, index 0, next/flush/aget/callback."""

import asyncio

import pytest

from lsst.ts.calibscripts import sal

from .example_csc import ExampleOcps


async def test_late_joiner_per_index(domain: sal.Domain) -> None:
    async with ExampleOcps(1, domain=domain) as c1, ExampleOcps(2, domain=domain) as c2:
        await c1.evt_job_result.set_write(job_id="one", exit_code=0)
        await c2.evt_job_result.set_write(job_id="two", exit_code=1)
        # Remotes created after the events were written.
        async with sal.Remote(domain, "OCPS", 2) as r2:
            data = r2.evt_job_result.get()
            assert data is not None and data.job_id == "two" and data.salIndex == 2
        async with sal.Remote(domain, "OCPS", 0) as everyone:
            seen = {(await everyone.evt_job_result.next(flush=False, timeout=1)).job_id for _ in range(2)}
            assert seen == {"one", "two"}
        async with sal.Remote(domain, "OCPS", 1, evt_max_history=0) as no_history:
            assert no_history.evt_job_result.get() is None


async def test_index_zero_receives_every_index(domain: sal.Domain) -> None:
    async with (
        ExampleOcps(1, domain=domain) as c1,
        ExampleOcps(2, domain=domain) as c2,
        sal.Remote(domain, "OCPS", 0, evt_max_history=0) as everyone,
        sal.Remote(domain, "OCPS", 1, evt_max_history=0) as only1,
    ):
        await c2.evt_job_result.set_write(job_id="b")
        await c1.evt_job_result.set_write(job_id="a")
        first = await everyone.evt_job_result.next(flush=False, timeout=1)
        second = await everyone.evt_job_result.next(flush=False, timeout=1)
        assert [(first.salIndex, first.job_id), (second.salIndex, second.job_id)] == [(2, "b"), (1, "a")]
        data = await only1.evt_job_result.next(flush=False, timeout=1)
        assert data.job_id == "a"
        assert only1.evt_job_result.nqueued == 0


async def test_next_flush_aget_and_order(csc: ExampleOcps, remote: sal.Remote) -> None:
    for i in range(5):
        await csc.evt_job_result.set_write(job_id=str(i))
    assert [(await remote.evt_job_result.next(flush=False, timeout=1)).job_id for _ in range(3)] == [
        "0",
        "1",
        "2",
    ]
    assert (await remote.evt_job_result.aget(timeout=1)).job_id == "4"
    with pytest.raises(TimeoutError):
        await remote.evt_job_result.next(flush=True, timeout=0.05)
    remote.evt_job_result.flush()
    assert remote.evt_job_result.nqueued == 0


async def test_aget_waits_for_first(domain: sal.Domain, csc: ExampleOcps) -> None:
    async with sal.Remote(domain, "OCPS", 1, evt_max_history=0) as remote:
        task = asyncio.create_task(remote.evt_job_result.aget(timeout=2))
        await asyncio.sleep(0.01)
        await csc.evt_job_result.set_write(job_id="x")
        assert (await task).job_id == "x"
        with pytest.raises(TimeoutError):
            await remote.evt_errorCode.aget(timeout=0.05)


async def test_callback(csc: ExampleOcps, remote: sal.Remote) -> None:
    received: list[str] = []
    done = asyncio.Event()

    async def callback(data: sal.BaseMessage) -> None:
        received.append(data.job_id)
        if len(received) == 3:
            done.set()

    remote.evt_job_result.callback = callback
    with pytest.raises(RuntimeError, match="callback"):
        await remote.evt_job_result.next(flush=False, timeout=0.1)
    for i in range(3):
        await csc.evt_job_result.set_write(job_id=str(i))
    await asyncio.wait_for(done.wait(), 2)
    assert received == ["0", "1", "2"]


async def test_set_write_only_writes_changes(csc: ExampleOcps, remote: sal.Remote) -> None:
    first = await csc.evt_job_result.set_write(job_id="same")
    again = await csc.evt_job_result.set_write(job_id="same")
    forced = await csc.evt_job_result.set_write(job_id="same", force_output=True)
    assert (first.was_written, again.was_written, forced.was_written) == (True, False, True)
    assert first.data.private_seqNum < forced.data.private_seqNum


async def test_private_fields(csc: ExampleOcps, remote: sal.Remote) -> None:
    await csc.evt_job_result.set_write(job_id="p")
    data = await remote.evt_job_result.next(flush=False, timeout=1)
    assert data.private_identity == "OCPS:1"
    assert data.private_rcvStamp >= data.private_sndStamp > 0
    assert data.salIndex == 1


def test_topic_naming(domain: sal.Domain) -> None:
    assert domain.topic_name("ATCamera", "command_takeImages") == (
        f"lsst.{domain.subname}.ATCamera.command_takeImages"
    )
