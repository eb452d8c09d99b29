"""BaseScript's state machine, through the example SleepScript."""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Sequence

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.script.sleep_script import SleepScript
from lsst.ts.calibscripts.script.testing import BaseScriptTestCase


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
            await self.configure_script(checkpoints=["a", "b"], sleep_time=0.01)
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
            assert self.script.state.lastCheckpoint == "b"
            assert self.script.state.numCheckpoints == 2
            assert self.script.state.groupId == "test-group"

    async def test_metadata_and_description(self) -> None:
        async with self.make_script():
            description = self.script.evt_description.data
            assert description.classname == "SleepScript"
            await self.configure_script(checkpoints=["a", "b", "c"], sleep_time=2.5)
            metadata = self.remote.evt_metadata.get()
            assert metadata is not None
            assert metadata.duration == pytest.approx(7.5)
            assert metadata.totalCheckpoints == 3

    async def test_configure_failed(self) -> None:
        async with self.make_script():
            with pytest.raises(sal.ExpectedError, match=r"config option 'sleep_time' = -1"):
                await self.configure_script(sleep_time=-1)
            await asyncio.wait_for(self.script.done_task, 2)
            assert self.script.state.state == ScriptState.CONFIGURE_FAILED
            assert "sleep_time" in self.script.state.reason
            assert self.states[-1] == ScriptState.CONFIGURE_FAILED

    async def test_pause_and_resume(self) -> None:
        async with self.make_script():
            await self.configure_script_yaml("checkpoints: [a, b, c]", pauseCheckpoint="b")
            with pytest.raises(sal.ExpectedError, match="Cannot resume: state is CONFIGURED"):
                await self.script.do_resume(self._command_data("resume"))
            run = asyncio.create_task(self.run_script())
            await self.wait_state(ScriptState.PAUSED)
            assert self.script.checkpoints_passed == ["a"]
            assert self.script.state.lastCheckpoint == "b"
            await self.script.do_resume(self._command_data("resume"))
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

    async def test_stop_while_running(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["a", "b"], sleep_time=30)
            run = asyncio.create_task(self.run_script(expected_final_state=ScriptState.STOPPED))
            await self.wait_state(ScriptState.RUNNING)
            await asyncio.sleep(0.05)
            await self.script.do_stop(self._command_data("stop"))
            await asyncio.wait_for(run, 5)
            assert self.script.checkpoints_passed == ["a"]
            assert self.script.cleanup_ran

    async def test_stop_before_run(self) -> None:
        async with self.make_script():
            await self.configure_script()
            await self.script.do_stop(self._command_data("stop"))
            await asyncio.wait_for(self.script.done_task, 2)
            assert self.script.state.state == ScriptState.STOPPED
            assert not self.script.cleanup_ran

    async def test_failing_run(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["a"], fail_run=True)
            await self.run_script(expected_final_state=ScriptState.FAILED)
            assert self.script.state.reason == "Error in run: fail_run is true: failing as configured"
            assert self.states[-2:] == [ScriptState.FAILING, ScriptState.FAILED]
            assert self.script.cleanup_ran

    async def test_failing_cleanup(self) -> None:
        async with self.make_script():
            await self.configure_script(fail_cleanup=True)
            await self.run_script(expected_final_state=ScriptState.FAILED)
            assert "Error in cleanup: fail_cleanup is true" in self.script.state.reason

    async def test_failing_run_and_cleanup_keeps_both_reasons(self) -> None:
        async with self.make_script():
            await self.configure_script(fail_run=True, fail_cleanup=True)
            await self.run_script(expected_final_state=ScriptState.FAILED)
            assert self.script.state.reason.startswith("Error in run: fail_run")
            assert "Error in cleanup: fail_cleanup" in self.script.state.reason

    async def test_run_needs_group_id_and_configured(self) -> None:
        async with self.make_script():
            with pytest.raises(sal.ExpectedError, match="Cannot run: state is UNCONFIGURED"):
                await self.script.do_run(self._command_data("run"))
            with pytest.raises(sal.ExpectedError, match="Cannot set group id"):
                await self.script.do_setGroupId(self._command_data("setGroupId", groupId="g"))
            await self.configure_script()
            with pytest.raises(sal.ExpectedError, match="group id not set"):
                await self.script.do_run(self._command_data("run"))
            await self.run_script()

    async def test_checkpoint_outside_run(self) -> None:
        async with self.make_script():
            with pytest.raises(RuntimeError, match="must be RUNNING"):
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
            with pytest.raises(sal.ExpectedError, match="Cannot set checkpoints: state is DONE"):
                await self.script.do_setCheckpoints(self._command_data("setCheckpoints", pause="x"))

    async def test_bad_checkpoint_regex(self) -> None:
        async with self.make_script():
            with pytest.raises(sal.ExpectedError, match="Invalid checkpoint regular expression"):
                await self.script.do_setCheckpoints(self._command_data("setCheckpoints", pause="("))

    async def test_log_messages_published(self) -> None:
        async with self.make_script():
            await self.configure_script(checkpoints=["seen"], report={"level": "WARNING"})
            await self.run_script()
            messages = []
            while self.remote.evt_logMessage.nqueued:
                messages.append(await self.remote.evt_logMessage.next(flush=False))
            assert ("Reached checkpoint seen", 30) in [(m.message, m.level) for m in messages]


async def test_index_zero_refused() -> None:
    with pytest.raises(ValueError, match="index must be non-zero"):
        SleepScript(index=0)
