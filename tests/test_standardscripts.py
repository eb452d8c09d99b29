"""A script written for salobj, tested as ts_standardscripts tests its scripts, over both transports.

``IdiomScriptTestCase`` is written as a ts_standardscripts test module is:
only the import lines differ.
"""

from __future__ import annotations

import pathlib
import unittest

import pytest

from lsst.ts.calibscripts import salobj, utils
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.standardscripts import BaseScriptTestCase, get_scripts_dir
from tests.salobj_idiom.idiom_csc import IdiomCsc
from tests.salobj_idiom.idiom_script import IdiomScript
from tests.transports import redis_server, redis_transport  # noqa: F401

EXECUTABLE = pathlib.Path(__file__).parent / "salobj_idiom" / "idiom_script_exe.py"


class IdiomScriptTestCase(BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    async def basic_make_script(self, index):
        self.script = IdiomScript(index=index)
        # A Test CSC for the script to drive, with an index of its own.
        self.csc = IdiomCsc(index=self.next_index())
        return (self.script, self.csc)

    async def test_configure(self):
        async with self.make_script():
            config = await self.configure_script(value=3)
            assert config.value == 3
            assert self.script.config.value == 3
            assert not self.script.config.fail_run
            # configure_script may be called again.
            await self.configure_script(value=4, test_index=self.csc.salinfo.index)
            assert self.script.config.value == 4

    async def test_run(self):
        async with self.make_script():
            await self.configure_script(test_index=self.csc.salinfo.index, value=11)
            await self.run_script()
            assert self.csc.summary_state == salobj.State.ENABLED
            assert self.script.seen.int0 == 11
            assert self.script.seen.string0 == f"{self.script.group_id}#1"
            assert "begin_start(idiom.yaml)" in self.csc.history

    async def test_failing_run(self):
        async with self.make_script():
            await self.configure_script(fail_run=True)
            await self.run_script(expected_final_state=ScriptState.FAILED)
            assert self.script.state.reason == "Error in run: failing as configured"

    async def test_executable(self):
        schema = await self.check_executable(EXECUTABLE)
        assert schema == IdiomScript.get_schema()
        assert (get_scripts_dir() / "examples" / "sleep.py").is_file()

    async def test_executable_launched(self):
        # Launched and seen UNCONFIGURED: needs a transport that reaches other
        # processes, so skipped in-process.
        with utils.modify_environ(LSST_SAL_SCRIPT_CHECK_BIN="1"):
            await self.check_executable(EXECUTABLE)


@pytest.mark.usefixtures("redis_transport")
class IdiomScriptRedisTestCase(IdiomScriptTestCase):
    """The same tests, every message through a Redis server."""
