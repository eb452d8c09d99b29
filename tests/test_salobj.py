"""The salobj namespace, and a CSC written for salobj tested the salobj way, over both transports.

``IdiomCscTestCase`` is written as a ts_salobj CSC package writes its tests:
only the import line differs.
"""

from __future__ import annotations

import logging
import unittest

import pydantic
import pytest

from lsst.ts.calibscripts import salobj
from tests.salobj_idiom import idiom_csc
from tests.salobj_idiom.idiom_csc import IdiomCsc
from tests.transports import redis_server, redis_transport  # noqa: F401

# The names scripts, CSCs and their tests use from lsst.ts.salobj.
SALOBJ_NAMES = [
    "AckError",
    "AckTimeoutError",
    "BaseCsc",
    "BaseCscTestCase",
    "BaseScript",
    "Controller",
    "DefaultingValidator",
    "Domain",
    "ExpectedError",
    "LOCAL_HOST",
    "MAX_SAL_INDEX",
    "Remote",
    "SalInfo",
    "SalLogHandler",
    "SalRetCode",
    "State",
    "TestScript",
    "WildcardIndexError",
    "as_salRetCode",
    "as_state",
    "assertRaisesAckError",
    "assertRaisesAckTimeoutError",
    "get_expected_summary_states",
    "get_user_host",
    "make_mock_write_topics",
    "make_state_transition_dict",
    "name_to_name_index",
    "set_random_lsst_dds_partition_prefix",
    "set_summary_state",
    "set_test_topic_subname",
    "topics",
]

TOPIC_CLASSES = [
    "AckCmdReader",
    "AckCmdWriter",
    "CommandInfo",
    "ControllerCommand",
    "ControllerEvent",
    "ControllerTelemetry",
    "MockWriteTopic",
    "ReadTopic",
    "RemoteCommand",
    "RemoteEvent",
    "RemoteTelemetry",
    "SetWriteResult",
    "WriteTopic",
]


def test_namespace() -> None:
    missing = [name for name in SALOBJ_NAMES if not hasattr(salobj, name)]
    assert missing == []
    assert [name for name in TOPIC_CLASSES if not hasattr(salobj.topics, name)] == []
    assert salobj.MAX_SAL_INDEX == 2**31 - 1


class IdiomCscTestCase(salobj.BaseCscTestCase, unittest.IsolatedAsyncioTestCase):
    csc: IdiomCsc

    def basic_make_csc(self, initial_state, config_dir, simulation_mode, **kwargs):
        return IdiomCsc(
            index=self.next_index(),
            initial_state=initial_state,
            simulation_mode=simulation_mode,
            **kwargs,
        )

    async def test_standard_state_transitions(self):
        async with self.make_csc(initial_state=salobj.State.STANDBY):
            await self.check_standard_state_transitions(
                enabled_commands=("setScalars", "setArrays", "fault", "wait")
            )

    async def test_initial_state_runs_the_transition_hooks(self):
        async with self.make_csc(initial_state=salobj.State.ENABLED, override="startup.yaml"):
            await self.assert_next_summary_state(salobj.State.ENABLED)
            assert self.csc.history == [
                "handle_summary_state(STANDBY)",
                "begin_start(startup.yaml)",
                "end_start",
                "handle_summary_state(DISABLED)",
                "begin_enable",
                "end_enable",
                "handle_summary_state(ENABLED)",
            ]
            versions = await self.assert_next_sample(self.remote.evt_softwareVersions, cscVersion="1.2.3")
            assert "openSpliceVersion" not in vars(versions)
            await self.assert_next_sample(self.remote.evt_simulationMode, mode=0)

    async def test_simulation_mode(self):
        async with self.make_csc(initial_state=salobj.State.STANDBY, simulation_mode=1):
            assert self.csc.simulation_mode == 1
            await self.assert_next_sample(self.remote.evt_simulationMode, mode=1)
        with pytest.raises(ValueError, match="simulation_mode=2"):
            IdiomCsc(index=1, simulation_mode=2)
        with pytest.raises(ValueError, match="initial_state cannot be FAULT"):
            IdiomCsc(index=1, initial_state=salobj.State.FAULT)

    async def test_data_type(self):
        async with self.make_csc(initial_state=salobj.State.ENABLED):
            data = self.remote.cmd_setScalars.DataType()
            assert (data.int0, data.string0, data.boolean0) == (0, "", False)
            data.int0 = 5
            data.string0 = "five"
            data.double0 = 2.5
            await self.remote.cmd_setScalars.start(data, timeout=10)
            await self.assert_next_sample(self.remote.evt_scalars, int0=5, string0="five", double0=2.5)
            # A bad value assigned directly is caught when the command is sent.
            data.int0 = "not an int"
            with pytest.raises(pydantic.ValidationError, match="int0"):
                await self.remote.cmd_setScalars.start(data, timeout=5)
            # set_start begins from defaults: string0 is blank again.
            await self.remote.cmd_setArrays.set_start(int0=[1, 2, 3, 4, 5], timeout=5)
            arrays = await self.assert_next_sample(self.remote.evt_arrays)
            assert arrays.int0 == [1, 2, 3, 4, 5]
            assert arrays.double0 == [0.0] * 5

    async def test_fault_and_recovery(self):
        async with self.make_csc(initial_state=salobj.State.ENABLED):
            await self.assert_next_summary_state(salobj.State.ENABLED)
            await self.remote.evt_errorCode.next(flush=False, timeout=5)  # errorCode 0 at start
            with self.assertLogs(self.csc.log, logging.CRITICAL):
                await self.remote.cmd_fault.start(timeout=5)
            await self.assert_next_summary_state(salobj.State.FAULT)
            await self.assert_next_sample(self.remote.evt_errorCode, errorCode=17)
            with salobj.assertRaisesAckError(
                ack=salobj.SalRetCode.CMD_FAILED, result_contains="errorCode=17"
            ):
                await self.remote.cmd_setScalars.start(timeout=5)
            await self.remote.cmd_standby.start(timeout=5)
            await self.assert_next_summary_state(salobj.State.STANDBY)
            # Leaving FAULT clears the error.
            await self.assert_next_sample(self.remote.evt_errorCode, errorCode=0)

    async def test_failing_end_reverts_the_state(self):
        async with self.make_csc(initial_state=salobj.State.DISABLED):
            await self.assert_next_summary_state(salobj.State.DISABLED)
            self.csc.fail_end_enable = True
            with salobj.assertRaisesAckError(ack=salobj.SalRetCode.CMD_FAILED, result_contains="end_enable"):
                await self.remote.cmd_enable.start(timeout=5)
            assert self.csc.summary_state == salobj.State.DISABLED
            assert "handle_summary_state(ENABLED)" not in self.csc.history

    async def test_acks_and_set_summary_state(self):
        async with self.make_csc(initial_state=salobj.State.STANDBY):
            states = await salobj.set_summary_state(self.remote, salobj.State.ENABLED, override="a.yaml")
            assert states == [salobj.State.STANDBY, salobj.State.DISABLED, salobj.State.ENABLED]
            assert "begin_start(a.yaml)" in self.csc.history
            assert self.remote.cmd_start.data.configurationOverride == ""
            with salobj.assertRaisesAckError(
                ack=salobj.SalRetCode.CMD_FAILED, error=3, result_contains="as asked"
            ):
                await self.remote.cmd_wait.set_start(ack=salobj.SalRetCode.CMD_FAILED, duration=0, timeout=5)
            with salobj.assertRaisesAckTimeoutError(ack=salobj.SalRetCode.CMD_NOACK):
                await self.remote.cmd_wait.set_start(duration=1, timeout=0.1)
            states = await salobj.set_summary_state(self.remote, salobj.State.STANDBY)
            assert states == [salobj.State.ENABLED, salobj.State.DISABLED, salobj.State.STANDBY]

    async def test_bin_script(self):
        # Needs a transport that reaches another process: skipped in-process.
        await self.check_bin_script(
            name="Test",
            index=self.next_index(),
            exe_name=idiom_csc.__file__.replace("idiom_csc.py", "run_idiom_csc.py"),
            initial_state=salobj.State.ENABLED,
        )


@pytest.mark.usefixtures("redis_transport")
class IdiomCscRedisTestCase(IdiomCscTestCase):
    """The same tests, every message through a Redis server."""
