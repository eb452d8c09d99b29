"""Controller as salobj's: defaults, options, mock commands, start-up and close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import SalRetCode
from tests.transports import SlowSubscriptions

from .example_csc import ExampleOcps


async def test_commands_are_queued_without_callbacks() -> None:
    # do_callbacks defaults to False: a mock controller reads commands itself.
    async with sal.Controller("Test", 3) as controller, sal.Remote(controller.domain, "Test", 3) as remote:
        task = asyncio.create_task(remote.cmd_setScalars.set_start(int0=4, timeout=5))
        data = await controller.cmd_setScalars.next(timeout=2)
        assert data.int0 == 4
        ackcmd = controller.salinfo.make_ackcmd(
            data.private_seqNum, SalRetCode.CMD_COMPLETE, result="by hand"
        )
        await controller.cmd_setScalars.ack(data, ackcmd)
        assert (await task).result == "by hand"


async def test_callbacks_set_by_hand() -> None:
    async with sal.Controller("Test", 3) as controller, sal.Remote(controller.domain, "Test", 3) as remote:
        seen = []

        async def callback(data: sal.BaseMessage) -> None:
            seen.append(data.duration)

        controller.cmd_wait.callback = callback
        assert controller.cmd_wait.has_callback
        ack = await remote.cmd_wait.set_start(duration=0.5, timeout=5)
        assert (ack.ack, ack.result, seen) == (SalRetCode.CMD_COMPLETE, "Done", [0.5])
        with pytest.raises(RuntimeError, match="callback"):
            await controller.cmd_wait.next(timeout=0.1)


async def test_do_methods_must_match_the_commands() -> None:
    class Mock(sal.Controller):
        async def do_setScalars(self, data: sal.BaseMessage) -> None:
            pass

        async def do_renamed(self, data: sal.BaseMessage) -> None:
            pass

    with pytest.raises(
        TypeError, match=r"must add do_disable, .* methods and must remove do_renamed methods"
    ):
        Mock("Test", 3, do_callbacks=True)
    with pytest.raises(TypeError, match="must remove do_renamed"):
        Mock("Test", 3, do_callbacks=True, allow_missing_callbacks=True)
    async with (
        Mock("Test", 3, do_callbacks=True, allow_missing_callbacks=True, extra_commands={"renamed"}) as mock,
        sal.Remote(mock.domain, "Test", 3) as remote,
    ):
        await remote.cmd_setScalars.start(timeout=5)
        with sal.assertRaisesAckError(
            ack=SalRetCode.CMD_FAILED, result_contains="This command is not supported"
        ):
            await remote.cmd_setArrays.start(timeout=5)


async def test_option_combinations() -> None:
    with pytest.raises(ValueError, match="do_callbacks and write_only"):
        sal.Controller("Test", 3, do_callbacks=True, write_only=True)
    with pytest.raises(ValueError, match="requires do_callbacks"):
        sal.Controller("Test", 3, allow_missing_callbacks=True)
    with pytest.raises(ValueError, match="non-zero index"):
        sal.Controller("Test", 0)
    with pytest.raises(TypeError, match="no_such_option"):
        sal.Controller("Test", 3, no_such_option=1)
    # Kafka-only options are accepted.
    async with sal.Controller("Test", 3, write_only=True, discard_out_of_order_events=False) as writer:
        assert not hasattr(writer, "cmd_setScalars")
        await writer.evt_scalars.set_write(int0=1)


async def test_delayed_start_and_identity() -> None:
    async with sal.Domain() as domain, ExampleOcps(1, domain=domain, initial_state=sal.State.ENABLED) as ocps:
        await ocps.evt_job_result.set_write(job_id="earlier")
        # A controller that makes its domain: Remotes made with it act in its name, and close with it.
        controller = sal.Controller("Test", 4)
        remote = sal.Remote(controller.domain, "OCPS", 1)
        controller.delay_start_event.clear()
        await asyncio.sleep(0.05)
        assert not controller.start_task.done()  # delayed until the event is set
        controller.delay_start_event.set()
        await controller.start_task
        assert remote.evt_job_result.get().job_id == "earlier"
        assert remote.salinfo.identity == "Test:4"
        await controller.close()
        assert not remote.salinfo.isopen


async def test_start_waits_for_the_domains_remotes() -> None:
    """A controller's Remotes have their late-joiner data before it starts."""
    async with sal.Domain() as domain, ExampleOcps(1, domain=domain, initial_state=sal.State.ENABLED) as ocps:
        await ocps.evt_job_result.set_write(job_id="earlier")
        async with sal.Domain(SlowSubscriptions("OCPS")) as slow:
            controller = sal.Controller("Test", 3, domain=slow)
            remote = sal.Remote(slow, "OCPS", 1, readonly=True, include=["job_result"])
            await controller.start_task
            assert remote.evt_job_result.get().job_id == "earlier"
            await controller.close()


async def test_failed_start_ends_done_task() -> None:
    class Failing(sal.Controller):
        async def start(self) -> None:
            await super().start()
            raise RuntimeError("cannot start")

    controller = Failing("Test", 3)
    await controller.start_task
    with pytest.raises(RuntimeError, match="cannot start"):
        await asyncio.wait_for(controller.done_task, 5)
    assert not controller.isopen


async def test_close_aborts_running_commands() -> None:
    async with sal.Controller("Test", 3) as controller, sal.Remote(controller.domain, "Test", 3) as remote:
        controller.cmd_wait.callback = lambda data: asyncio.sleep(data.duration)
        task = asyncio.create_task(remote.cmd_wait.set_start(duration=30, timeout=5))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(controller.close())
        with sal.assertRaisesAckError(ack=SalRetCode.CMD_ABORTED, error=1, result_contains="Aborted"):
            await task
        await closing


async def test_log_level_and_logger() -> None:
    async with sal.Controller("Test", 3) as controller, sal.Remote(controller.domain, "Test", 3) as remote:
        level = await remote.evt_logLevel.aget(timeout=2)
        assert level.level <= logging.INFO
        controller.cmd_setLogLevel.callback = controller.do_setLogLevel
        await remote.cmd_setLogLevel.set_start(level=logging.DEBUG, timeout=5)
        assert controller.log.getEffectiveLevel() == logging.DEBUG
        assert repr(controller) == "Controller(Test, 3)"


async def test_a_closed_remote_does_not_stop_the_start() -> None:
    async with sal.Domain(SlowSubscriptions("OCPS")) as slow:
        remote = sal.Remote(slow, "OCPS", 1, readonly=True, include=["job_result"])
        controller = sal.Controller("Test", 3, domain=slow)
        await asyncio.sleep(0.05)
        assert remote.salinfo.start_called and not remote.salinfo.started
        await remote.close()  # cancels its start
        await asyncio.wait_for(controller.start_task, 5)
        assert controller.salinfo.started
        await controller.close()
