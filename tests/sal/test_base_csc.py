"""The summary-state machine, generic commands, heartbeat and log messages."""

import asyncio
import inspect
import logging
import sys
import unittest

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import State
from lsst.ts.calibscripts.sal.testing import assert_next_summary_state

from .example_csc import ExampleOcps


async def test_state_transitions(domain: sal.Domain) -> None:
    async with (
        ExampleOcps(3, domain=domain) as csc,
        sal.Remote(domain, "OCPS", 3) as remote,
    ):
        state = remote.evt_summaryState
        await assert_next_summary_state(state, State.STANDBY)
        for command, expected in [
            ("start", State.DISABLED),
            ("enable", State.ENABLED),
            ("disable", State.DISABLED),
            ("standby", State.STANDBY),
        ]:
            await getattr(remote, f"cmd_{command}").start(timeout=2)
            await assert_next_summary_state(state, expected)
            assert csc.summary_state == expected
        with pytest.raises(sal.AckError, match="enable not allowed in state STANDBY"):
            await remote.cmd_enable.start(timeout=2)
        await remote.cmd_exitControl.start(timeout=2)
        await assert_next_summary_state(state, State.OFFLINE)
        await asyncio.wait_for(csc.done_task, 2)


async def test_fault_and_recovery(csc: ExampleOcps, remote: sal.Remote) -> None:
    remote.evt_summaryState.flush()
    await csc.fault(code=7, report="camera on fire")
    await assert_next_summary_state(remote.evt_summaryState, State.FAULT)
    error = await remote.evt_errorCode.aget(timeout=1)
    assert (error.errorCode, error.errorReport) == (7, "camera on fire")
    with pytest.raises(sal.AckError, match="not ENABLED"):
        await remote.cmd_abort_job.set_start(job_id="x", timeout=2)
    await remote.cmd_standby.start(timeout=2)
    assert csc.summary_state == State.STANDBY


async def test_heartbeat_and_versions(csc: ExampleOcps, remote: sal.Remote) -> None:
    await remote.evt_heartbeat.next(flush=True, timeout=3)
    versions = await remote.evt_softwareVersions.aget(timeout=1)
    assert versions.cscVersion == csc.version


async def test_log_messages_published(csc: ExampleOcps, remote: sal.Remote) -> None:
    remote.evt_logMessage.flush()
    csc.log.warning("Something to see: %d", 42)
    message = await remote.evt_logMessage.next(flush=False, timeout=2)
    assert message.message == "Something to see: 42"
    assert message.level == logging.WARNING
    assert message.functionName == "test_log_messages_published"


async def test_set_log_level(csc: ExampleOcps, remote: sal.Remote) -> None:
    await remote.cmd_setLogLevel.set_start(level=logging.DEBUG, timeout=2)
    level = remote.evt_logLevel.get()
    assert level is not None and level.level == logging.DEBUG
    assert csc.log.getEffectiveLevel() == logging.DEBUG


async def test_missing_do_method_is_a_type_error(domain: sal.Domain) -> None:
    class Incomplete(sal.BaseCsc):
        pass

    with pytest.raises(TypeError, match=r"must add do_abort_job, do_execute methods"):
        Incomplete("OCPS", 1, domain=domain)


async def test_controller_needs_index(domain: sal.Domain) -> None:
    with pytest.raises(ValueError, match="non-zero index"):
        ExampleOcps(0, domain=domain)


class RecordingOcps(ExampleOcps):
    """Records what the state machine does, in order."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.heartbeat_interval = 0.05
        self.seen: list[str] = []

    async def handle_summary_state(self) -> None:
        written = State(self.evt_summaryState.data.summaryState) if self.evt_summaryState.has_data else None
        self.seen.append(f"handle {self.summary_state.name} (written: {written.name if written else None})")
        if self.summary_state == State.FAULT:
            await self.fault(code=2, report="again")  # not re-entrant: ignored


async def test_constructor_and_transition_order(domain: sal.Domain) -> None:
    # salobj's positional order.
    parameters = list(inspect.signature(sal.BaseCsc.__init__).parameters)[1:7]
    assert parameters == [
        "name",
        "index",
        "check_if_duplicate",
        "initial_state",
        "override",
        "simulation_mode",
    ]
    async with RecordingOcps(2, initial_state=State.DISABLED, override="o.yaml", domain=domain) as csc:
        # handle_summary_state runs before summaryState is written.
        assert csc.seen == ["handle STANDBY (written: None)", "handle DISABLED (written: STANDBY)"]
        with pytest.raises(ValueError, match="initial_state cannot be FAULT"):
            ExampleOcps(2, initial_state=State.FAULT, domain=domain)
        with pytest.raises(ValueError, match="simulation_mode=1"):
            ExampleOcps(2, simulation_mode=1, domain=domain)


async def test_fault_is_not_reentrant_and_logs_critical(domain: sal.Domain) -> None:
    async with RecordingOcps(2, initial_state=State.ENABLED, domain=domain) as csc:
        with unittest.TestCase().assertLogs(csc.log, logging.CRITICAL) as logs:
            await csc.fault(code=1, report="first")
        assert logs.output == ["CRITICAL:OCPS:2:Fault! errorCode=1, errorReport='first'"]
        assert csc.evt_errorCode.data.errorReport == "first"
        assert csc.seen[-1].startswith("handle FAULT")


async def test_duplicate_csc_quits(domain: sal.Domain) -> None:
    async with RecordingOcps(6, domain=domain):
        duplicate = RecordingOcps(6, check_if_duplicate=True)
        await duplicate.start_task
        with pytest.raises(sal.ExpectedError, match="found another instance"):
            await asyncio.wait_for(duplicate.done_task, 5)


async def test_make_from_cmd_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class CommandLineOcps(ExampleOcps):
        enable_cmdline_state = True
        valid_simulation_modes = (0, 1)

    monkeypatch.setattr(
        sys, "argv", ["run_ocps", "4", "--state", "disabled", "--simulate", "--loglevel", "10"]
    )
    csc = CommandLineOcps.make_from_cmd_line(index=True)
    try:
        await csc.start_task
        assert (csc.salinfo.index, csc.summary_state, csc.simulation_mode) == (4, State.DISABLED, 1)
        assert csc.log.level == logging.DEBUG
    finally:
        await csc.close()
