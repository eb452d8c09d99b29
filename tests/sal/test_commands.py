"""Command acknowledgement: every outcome a caller can see."""

import asyncio
import time

import pydantic
import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import SalRetCode

from .example_csc import ExampleOcps


async def test_complete(remote: sal.Remote, csc: ExampleOcps) -> None:
    ack = await remote.cmd_execute.set_start(pipeline="ok", timeout=5)
    assert ack.ack == SalRetCode.CMD_COMPLETE
    assert ack.result == "Done"
    # As in salobj: the position of the command among the sorted SAL topic names.
    assert ack.cmdtype == csc.salinfo.sal_topic_names.index("command_execute")
    assert csc.executed == ["ok"]


@pytest.mark.parametrize("pipeline", ["fail", "expected"])
async def test_failed_with_message(remote: sal.Remote, pipeline: str) -> None:
    with pytest.raises(sal.AckError) as info:
        await remote.cmd_execute.set_start(pipeline=pipeline, timeout=5)
    ack = info.value.ackcmd
    assert ack.ack == SalRetCode.CMD_FAILED
    expected = "Failed: something broke" if pipeline == "fail" else "Failed: not possible now"
    assert ack.result == expected
    assert expected in str(info.value)


async def test_timeout_reported_by_controller(remote: sal.Remote) -> None:
    with pytest.raises(sal.AckError) as info:
        await remote.cmd_execute.set_start(pipeline="timeout", timeout=5)
    assert not isinstance(info.value, sal.AckTimeoutError)
    # As salobj: error 1, result "Timeout".
    ack = info.value.ackcmd
    assert (ack.ack, ack.error, ack.result) == (SalRetCode.CMD_TIMEOUT, 1, "Timeout")


async def test_aborted(remote: sal.Remote) -> None:
    with pytest.raises(sal.AckError) as info:
        await remote.cmd_execute.set_start(pipeline="cancel", timeout=5)
    ack = info.value.ackcmd
    assert (ack.ack, ack.error, ack.result) == (SalRetCode.CMD_ABORTED, 1, "Aborted")


async def test_ack_with_an_ackcmd(domain: sal.Domain) -> None:
    # ack(data, ackcmd) and a callback that returns its own final acknowledgement.
    async with (
        sal.Controller("Test", 8, domain=domain) as controller,
        sal.Remote(domain, "Test", 8) as remote,
    ):

        async def wait(data: sal.BaseMessage) -> sal.AckCmd:
            await controller.cmd_wait.ack(
                data, controller.salinfo.make_ackcmd(data.private_seqNum, SalRetCode.CMD_ACK, result="queued")
            )
            return controller.salinfo.make_ackcmd(data.private_seqNum, data.ack, error=9, result="custom")

        controller.cmd_wait.callback = wait
        first = await remote.cmd_wait.set_start(ack=SalRetCode.CMD_COMPLETE, wait_done=False, timeout=5)
        assert (first.ack, first.result) == (SalRetCode.CMD_ACK, "queued")
        final = await remote.cmd_wait.next_ackcmd(first, timeout=5)
        assert (final.ack, final.error, final.result) == (SalRetCode.CMD_COMPLETE, 9, "custom")
        with pytest.raises(RuntimeError, match="unknown or finished"):
            await remote.cmd_wait.next_ackcmd(final, timeout=1)
        with sal.assertRaisesAckError(ack=SalRetCode.CMD_STALLED, error=9):
            await remote.cmd_wait.set_start(ack=SalRetCode.CMD_STALLED, timeout=5)


async def test_aborted_when_controller_closes(remote: sal.Remote, csc: ExampleOcps) -> None:
    task = asyncio.create_task(remote.cmd_execute.set_start(pipeline="sleep:10", timeout=5))
    await asyncio.sleep(0.05)
    for command in csc._commands.values():
        command.cancel_callbacks()
    with pytest.raises(sal.AckError) as info:
        await task
    assert info.value.ackcmd.ack == SalRetCode.CMD_ABORTED


async def test_in_progress_extends_the_wait(remote: sal.Remote) -> None:
    # 0.2 s would time out; the in-progress ack asks for 2 s more.
    t0 = time.monotonic()
    ack = await remote.cmd_execute.set_start(pipeline="progress:2:0.5", timeout=0.2)
    assert ack.ack == SalRetCode.CMD_COMPLETE
    assert time.monotonic() - t0 >= 0.5


async def test_no_ack_times_out(remote: sal.Remote) -> None:
    with pytest.raises(sal.AckTimeoutError) as info:
        await remote.cmd_execute.set_start(pipeline="sleep:1", timeout=0.2)
    assert info.value.ackcmd.ack == SalRetCode.CMD_NOACK


async def test_timeout_after_in_progress_keeps_last_ack(remote: sal.Remote) -> None:
    with pytest.raises(sal.AckTimeoutError) as info:
        await remote.cmd_execute.set_start(pipeline="progress:0.1:2", timeout=0.1)
    assert info.value.ackcmd.ack == SalRetCode.CMD_INPROGRESS


async def test_wait_done_false_and_next_ackcmd(remote: sal.Remote) -> None:
    ack = await remote.cmd_execute.set_start(pipeline="progress:5:0.1", timeout=5, wait_done=False)
    assert ack.ack == SalRetCode.CMD_INPROGRESS
    assert ack.result == '{"job_id": "1"}'
    final = await remote.cmd_execute.next_ackcmd(ack, timeout=5)
    assert final.ack == SalRetCode.CMD_COMPLETE


async def test_unknown_field_raises_at_once(remote: sal.Remote, csc: ExampleOcps) -> None:
    with pytest.raises(AttributeError, match="pipline"):
        await remote.cmd_execute.set_start(pipline="ok", timeout=5)
    with pytest.raises(pydantic.ValidationError, match="pipeline"):
        await remote.cmd_execute.set_start(pipeline=3, timeout=5)
    assert csc.executed == []


async def test_concurrent_commands_each_get_their_ack(remote: sal.Remote) -> None:
    acks = await asyncio.gather(
        remote.cmd_execute.set_start(pipeline="sleep:0.2", timeout=5),
        remote.cmd_execute.set_start(pipeline="ok", timeout=5),
        return_exceptions=True,
    )
    assert [a.ack for a in acks] == [SalRetCode.CMD_COMPLETE, SalRetCode.CMD_COMPLETE]  # type: ignore[union-attr]


async def test_acks_of_other_remotes_are_ignored(domain: sal.Domain, remote: sal.Remote) -> None:
    async with sal.Remote(domain, "OCPS", 1) as other:
        slow = asyncio.create_task(other.cmd_execute.set_start(pipeline="sleep:0.3", timeout=5))
        ack = await remote.cmd_execute.set_start(pipeline="ok", timeout=5)
        assert ack.ack == SalRetCode.CMD_COMPLETE
        assert not slow.done()
        assert (await slow).ack == SalRetCode.CMD_COMPLETE


async def test_index_zero_remote_cannot_command(domain: sal.Domain, csc: ExampleOcps) -> None:
    async with sal.Remote(domain, "OCPS", 0) as everyone:
        with pytest.raises(RuntimeError, match="index 0"):
            await everyone.cmd_execute.set_start(pipeline="ok", timeout=1)
