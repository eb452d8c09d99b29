"""BaseScript's state machine and salobj's details, through the example SleepScript."""

from __future__ import annotations

import asyncio
import logging
import unittest
from collections.abc import Sequence

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import MetadataCoordSys, MetadataDome, MetadataRotSys, ScriptState
from lsst.ts.calibscripts.script import base_script
from lsst.ts.calibscripts.script.sleep_script import SleepScript
from lsst.ts.calibscripts.script.testing import BaseScriptTestCase
from tests.sal.example_csc import ExampleOcps
from tests.transports import SlowSubscriptions, redis_server, redis_transport, transport_name  # noqa: F401


class SleepScriptTestCase(BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    async def basic_make_script(self, index: int) -> Sequence[sal.Controller | sal.Remote]:
        self.domain = sal.Domain()
        self.script = SleepScript(index=index, domain=self.domain)
        self.remote = sal.Remote(self.domain, "Script", index)
        self.states: list[ScriptState] = []
        self.reached: dict[ScriptState, asyncio.Event] = {state: asyncio.Event() for state in ScriptState}
        self.remote.evt_state.callback = self._record_state
        return [self.remote, self.script]

    def _record_state(self, data: sal.BaseMessage) -> None:
        state = ScriptState(data.state)
        self.reached[state].set()
        if not self.states or self.states[-1] != state:
            self.states.append(state)

    async def wait_state(self, state: ScriptState, timeout: float = 5) -> None:
        await asyncio.wait_for(self.reached[state].wait(), timeout)

    async def test_done(self) -> None:
        async with self.make_script():
            config = await self.configure_script(checkpoints=["a", "b"], sleep_time=0.01)
            assert config.checkpoints == ["a", "b"]  # the keywords, as standardscripts returns them
            await self.run_script()
            await asyncio.sleep(0.01)
            assert self.states == [
                ScriptState.UNCONFIGURED,
                ScriptState.CONFIGURED,
                ScriptState.RUNNING,
                ScriptState.ENDING,
                ScriptState.DONE,
            ]
            assert self.script.checkpoints_passed == ["a", "b"]
            assert self.script.cleanup_ran
            assert (self.script.last_checkpoint, self.script.num_checkpoints) == ("b", 2)
            assert (self.script.state.lastCheckpoint, self.script.state.numCheckpoints) == ("b", 2)
            assert self.script.group_id == self.script.state.groupId != ""
            assert set(self.script.timestamps) >= {ScriptState.RUNNING, ScriptState.DONE}

    async def test_configure_twice_and_metadata(self) -> None:
        async with self.make_script():
            description = self.script.evt_description.data
            assert description.classname == "SleepScript"
            await self.configure_script(checkpoints=["a"])
            # configure_script resets the state to UNCONFIGURED: it may be called again.
            await self.configure_script(checkpoints=["a", "b", "c"], sleep_time=2.5)
            metadata = self.remote.evt_metadata.get()
            assert metadata is not None
            assert metadata.duration == pytest.approx(7.5)
            assert metadata.totalCheckpoints == 3
            # salobj's defaults for what the script does not set.
            assert (metadata.coordinateSystem, metadata.rotationSystem, metadata.dome) == (
                MetadataCoordSys.NONE,
                MetadataRotSys.NONE,
                MetadataDome.EITHER,
            )

    async def test_configure_failed(self) -> None:
        async with self.make_script():
            with pytest.raises(sal.ExpectedError, match=r"config option 'sleep_time' = -1"):
                await self.configure_script(sleep_time=-1)
            await asyncio.wait_for(self.script.done_task, 2)
            assert self.script.state.state == ScriptState.CONFIGURE_FAILED
            # salobj's reason: config(<yaml>) failed: <error>
            assert self.script.state.reason.startswith(
                "config(sleep_time: -1\n) failed: line 1: config option"
            )
            assert self.states[-1] == ScriptState.CONFIGURE_FAILED

    async def test_bad_checkpoint_regex_in_configure_leaves_it_unconfigured(self) -> None:
        async with self.make_script():
            with pytest.raises(sal.ExpectedError, match=r"pause='\(' not a valid regex"):
                await self.configure_script_yaml("", pauseCheckpoint="(")
            assert self.script.state.state == ScriptState.UNCONFIGURED

    async def test_pause_and_resume(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml("checkpoints: [a, b, c]", pauseCheckpoint="b")
            with pytest.raises(sal.ExpectedError, match="Cannot resume: state=CONFIGURED instead of PAUSED"):
                await self.script.do_resume(self.script.cmd_resume.DataType())
            run = asyncio.create_task(self.run_script())
            await self.wait_state(ScriptState.PAUSED)
            assert self.script.checkpoints_passed == ["a"]
            assert self.script.state.lastCheckpoint == "b"
            await self.script.do_resume(self.script.cmd_resume.DataType())
            await run
            assert ScriptState.PAUSED in self.states
            assert self.script.checkpoints_passed == ["a", "b", "c"]

    async def test_stop_at_checkpoint(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml("checkpoints: [start, middle, end]", stopCheckpoint="mid.*")
            await self.run_script(expected_final_state=ScriptState.STOPPED)
            assert self.script.checkpoints_passed == ["start"]
            assert self.script.state.lastCheckpoint == "middle"
            assert self.script.cleanup_ran
            assert self.states[-2:] == [ScriptState.STOPPING, ScriptState.STOPPED]

    async def test_regex_must_match_fully(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml("checkpoints: [start, middle]", stopCheckpoint="mid")
            await self.run_script()
            assert self.script.checkpoints_passed == ["start", "middle"]

    async def test_empty_stop_pattern_stops_an_unnamed_checkpoint(self) -> None:
        # As in salobj: re.fullmatch("", "") matches, so with the default
        # (empty) stop expression an unnamed checkpoint stops the script.
        async with self.make_script():
            await self.configure_script(checkpoints=["named"])
            run = self.script.run

            async def run_then_unnamed() -> None:
                await run()
                await self.script.checkpoint()
                self.script.checkpoints_passed.append("unnamed")

            self.script.run = run_then_unnamed  # type: ignore[method-assign]
            await self.run_script(expected_final_state=ScriptState.STOPPED)
            assert self.script.checkpoints_passed == ["named"]
            assert self.script.state.lastCheckpoint == ""

    async def test_stop_while_running(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["a", "b"], sleep_time=30)
            run = asyncio.create_task(self.run_script(expected_final_state=ScriptState.STOPPED))
            await self.wait_state(ScriptState.RUNNING)
            await asyncio.sleep(0.05)
            await self.script.do_stop(self.script.cmd_stop.DataType())
            await asyncio.wait_for(run, 5)
            assert self.script.checkpoints_passed == ["a"]
            assert self.script.cleanup_ran

    async def test_stop_while_a_checkpoint_is_reported(self) -> None:
        # The stop reaches the code after the checkpoint, not the report.
        async with self.make_script():
            await self.configure_script(checkpoints=["a"], sleep_time=30)
            set_write = self.script.evt_state.set_write
            reporting = asyncio.Event()

            async def slow_set_write(**fields: object) -> object:
                if fields.get("force_output") and self.script.last_checkpoint == "a":
                    reporting.set()
                    await asyncio.sleep(0.05)
                return await set_write(**fields)

            self.script.evt_state.set_write = slow_set_write  # type: ignore[method-assign]
            run = asyncio.create_task(self.run_script(expected_final_state=ScriptState.STOPPED))
            await asyncio.wait_for(reporting.wait(), 5)
            await self.script.do_stop(self.script.cmd_stop.DataType())
            await asyncio.wait_for(run, 5)
            assert self.script.checkpoints_passed == ["a"]
            assert self.script.state.lastCheckpoint == "a"

    async def test_stop_before_run(self) -> None:
        async with self.make_script():
            await self.configure_script()
            await self.script.do_stop(self.script.cmd_stop.DataType())
            await asyncio.wait_for(self.script.done_task, 2)
            assert self.script.state.state == ScriptState.STOPPED
            assert not self.script.cleanup_ran
            # Exiting: every command but stop is refused, and stop does nothing.
            with pytest.raises(sal.ExpectedError, match="Cannot setCheckpoints: script is exiting"):
                await self.script.do_setCheckpoints(self.script.cmd_setCheckpoints.DataType(pause="x"))
            await self.script.do_stop(self.script.cmd_stop.DataType())

    async def test_failing_run(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["a"], fail_run=True)
            await self.run_script(expected_final_state=ScriptState.FAILED)
            assert self.script.state.reason == "Error in run: fail_run is true: failing as configured"
            assert self.states[-2:] == [ScriptState.FAILING, ScriptState.FAILED]
            assert self.script.cleanup_ran

    async def test_failing_cleanup_fails_done_task(self) -> None:
        # As in salobj: ENDING -> FAILED ("failed in _exit: ..."), and done_task raises.
        async with self.make_script():
            await self.configure_script(fail_cleanup=True)
            with pytest.raises(RuntimeError, match="fail_cleanup is true"):
                await self.run_script()
            assert self.script.state.state == ScriptState.FAILED
            assert self.script.state.reason == "failed in _exit: fail_cleanup is true: failing as configured"
            assert self.states[-2:] == [ScriptState.ENDING, ScriptState.FAILED]

    async def test_failing_run_and_cleanup_keeps_both_reasons(self) -> None:
        async with self.make_script():
            await self.configure_script(fail_run=True, fail_cleanup=True)
            with pytest.raises(RuntimeError, match="fail_cleanup"):
                await self.run_script()
            assert self.script.state.reason.startswith("Error in run: fail_run")
            assert self.script.state.reason.endswith(
                "; failed in _exit: fail_cleanup is true: failing as configured"
            )

    async def test_run_needs_group_id_and_configured(self) -> None:
        async with self.make_script():
            with pytest.raises(
                sal.ExpectedError, match="Cannot run: state=UNCONFIGURED instead of CONFIGURED"
            ):
                await self.script.do_run(self.script.cmd_run.DataType())
            with pytest.raises(sal.ExpectedError, match="Cannot setGroupId: state=UNCONFIGURED"):
                await self.script.do_setGroupId(self.script.cmd_setGroupId.DataType(groupId="g"))
            await self.configure_script()
            await self.script.do_setGroupId(self.script.cmd_setGroupId.DataType(groupId=""))
            with pytest.raises(sal.ExpectedError, match="Group ID not set"):
                await self.script.do_run(self.script.cmd_run.DataType())
            with pytest.raises(RuntimeError, match="No group ID"):
                self.script.next_supplemented_group_id()
            await self.script.do_setGroupId(self.script.cmd_setGroupId.DataType(groupId="g"))
            assert [self.script.next_supplemented_group_id() for _ in range(2)] == ["g#1", "g#2"]
            await self.script.do_setGroupId(self.script.cmd_setGroupId.DataType(groupId="h"))
            assert self.script.next_supplemented_group_id() == "h#1"
            await self.run_script()

    async def test_checkpoint_outside_run(self) -> None:
        async with self.make_script():
            with pytest.raises(RuntimeError, match="state=UNCONFIGURED instead of RUNNING"):
                await self.script.checkpoint("too early")

    async def test_commands_through_sal(self) -> None:
        async with self.make_script():
            await self.remote.cmd_configure.set_start(config="checkpoints: [x]", timeout=5)
            await self.remote.cmd_setCheckpoints.set_start(pause="x", timeout=5)
            await self.remote.cmd_setGroupId.set_start(groupId="g1", timeout=5)
            run = asyncio.create_task(self.remote.cmd_run.start(timeout=10))
            await self.wait_state(ScriptState.PAUSED)
            await self.remote.cmd_resume.start(timeout=5)
            ack = await run
            assert ack.ack == sal.SalRetCode.CMD_COMPLETE
            await asyncio.wait_for(self.script.done_task, 2)
            assert self.script.state.state == ScriptState.DONE

    async def test_state_name_and_attributes(self) -> None:
        async with self.make_script():
            assert self.script.state_name == "UNCONFIGURED"
            self.script.evt_state.data.state = 99
            assert self.script.state_name == "UNKNOWN(99)"
            self.script.evt_state.data.state = ScriptState.UNCONFIGURED
            assert self.script.config_validator is not None
            assert self.script.start_called and self.script.isopen
            assert self.script.final_state_delay == pytest.approx(0.3)
            with pytest.warns(DeprecationWarning, match="obs_id"):
                self.script.obs_id = "ignored"
            await self.configure_script_yaml("", blockId="BL1_O_20240101_000001")
            assert self.script.obs_id == "BL1_O_20240101_000001"

    async def test_set_state_keeps_or_forces(self) -> None:
        async with self.make_script():
            self.remote.evt_state.callback = None
            self.remote.evt_state.flush()
            await self.script.set_state(reason="first")
            await self.script.set_state(reason="second", keep_old_reason=True)
            await self.script.set_state()  # nothing changed: not written
            await self.script.set_state(force_output=True)
            reasons = [(await self.remote.evt_state.next(flush=False, timeout=1)).reason for _ in range(3)]
            assert reasons == ["first", "first; second", "first; second"]
            assert self.remote.evt_state.nqueued == 0

    async def test_unknown_metadata_is_ignored(self) -> None:
        async with self.make_script():
            original = self.script.set_metadata

            def set_metadata(metadata: object) -> None:
                original(metadata)  # type: ignore[arg-type]
                metadata.not_a_field = 1  # type: ignore[attr-defined]

            self.script.set_metadata = set_metadata  # type: ignore[method-assign]
            with self.assertLogs(self.script.log, logging.WARNING) as logs:
                await self.configure_script(checkpoints=["a"])
            assert "not_a_field" in logs.output[0]

    async def test_log_messages_published(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["seen"], report={"level": "WARNING"})
            await self.run_script()
            messages = []
            while self.remote.evt_logMessage.nqueued:
                messages.append(await self.remote.evt_logMessage.next(flush=False))
            assert ("Reached checkpoint seen", 30) in [(m.message, m.level) for m in messages]


class StartupTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_heartbeat_interval_and_description(self) -> None:
        assert base_script.HEARTBEAT_INTERVAL == 5
        async with sal.Domain() as domain:
            script = SleepScript(index=7, domain=domain)
            sal.Remote(domain, "OCPS", 1, readonly=True)
            await script.start_task
            assert script.evt_description.data.remotes == "OCPS:1"
            await script.close()


async def test_index_zero_refused() -> None:
    with pytest.raises(ValueError, match="index must be nonzero"):
        SleepScript(index=0)


class WatchingScript(SleepScript):
    """A SleepScript with a Remote of OCPS:1, made in its constructor."""

    def __init__(self, index: int, domain: sal.Domain | None = None) -> None:
        super().__init__(index, domain=domain)
        self.ocps = sal.Remote(self.domain, "OCPS", 1, readonly=True, include=["job_result"])

    async def start(self) -> None:
        await super().start()
        self.job_seen_at_start = self.ocps.evt_job_result.get()


async def test_start_waits_for_the_remotes() -> None:
    """The script is UNCONFIGURED only once its Remotes have their late-joiner data."""
    async with sal.Domain() as domain, ExampleOcps(1, domain=domain) as ocps:
        await ocps.evt_job_result.set_write(job_id="before the script")
        async with sal.Domain(SlowSubscriptions("OCPS")) as script_domain:
            script = WatchingScript(index=41, domain=script_domain)
            await script.start_task
            assert script.state.state == ScriptState.UNCONFIGURED
            assert script.job_seen_at_start is not None
            assert script.job_seen_at_start.job_id == "before the script"
            assert script.evt_description.data.remotes == "OCPS:1"
            await script.close()


async def test_late_joiner_data_over_each_transport(transport_name: str) -> None:  # noqa: F811
    async with sal.Domain() as domain, ExampleOcps(1, domain=domain) as ocps:
        await ocps.evt_job_result.set_write(job_id="before the script")
        script = WatchingScript(index=42)
        try:
            await script.start_task
            assert script.job_seen_at_start is not None
        finally:
            await script.close()
