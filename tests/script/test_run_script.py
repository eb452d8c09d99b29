"""The script executables and the run_script command, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import unittest
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.resources import scripts_dir
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.script.run_script import build_config, find_script, load_script_class
from lsst.ts.calibscripts.script.sleep_script import SleepScript
from lsst.ts.calibscripts.script.testing import BaseScriptTestCase

RUN_SCRIPT = Path(sys.executable).parent / "run_script"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUN_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


class ExecutableTestCase(BaseScriptTestCase, unittest.IsolatedAsyncioTestCase):
    async def basic_make_script(self, index: int) -> Sequence[sal.Controller]:
        self.script = SleepScript(index=index)
        return [self.script]

    async def test_schema_option(self) -> None:
        schema = await self.check_executable(scripts_dir() / "examples" / "sleep.py")
        assert schema == SleepScript.get_schema()
        assert schema["properties"]["sleep_time"]["default"] == 0


def test_run_script_with_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("checkpoints: [first, second]\nsleep_time: 0.01\nreport:\n  level: WARNING\n")
    result = run("examples/sleep.py", "--config", str(config), "--index", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "as Script:7" in out
    for text in ("State: CONFIGURED", "Checkpoint 1/2", ": first", "WARNING Reached checkpoint second"):
        assert text in out
    assert out.index("State: RUNNING") < out.index("State: DONE")
    assert out.rstrip().endswith("Final state: DONE")


def test_run_script_with_params_and_failure() -> None:
    result = run("examples/sleep.py", "-p", "checkpoints=[a]", "-p", "fail_run=true")
    assert result.returncode == 1
    assert "State: FAILED (Error in run: fail_run is true: failing as configured)" in result.stdout


def test_run_script_bad_config_names_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sleep_time: 0\nsleep_time: 1\n")
    result = run("examples/sleep.py", "--config", str(config))
    assert result.returncode == 1
    assert "CONFIGURE_FAILED" in result.stdout
    assert "line 2: duplicated key 'sleep_time'" in result.stdout


def test_run_script_unknown_script() -> None:
    result = run("no/such.py")
    assert result.returncode == 2
    assert "No script 'no/such.py'; available scripts: " in result.stderr
    assert "examples/sleep.py" in result.stderr


def test_find_and_load_by_file_path() -> None:
    path = find_script(str(scripts_dir() / "examples" / "sleep.py"))
    assert load_script_class(path) is SleepScript


def test_build_config_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sleep_time: 1\ncheckpoints: [a]\n")
    assert config.read_text() == build_config(config, [])
    merged = yaml.safe_load(build_config(config, ["sleep_time=2.5", "checkpoints=[x, y]"]))
    assert merged == {"sleep_time": 2.5, "checkpoints": ["x", "y"]}
    with pytest.raises(ValueError, match="expected key=value"):
        build_config(None, ["sleep_time"])


def test_final_state_exit_codes() -> None:
    assert SleepScript.exit_code(ScriptState.DONE) == 0
    assert SleepScript.exit_code(ScriptState.STOPPED) == 0
    assert SleepScript.exit_code(ScriptState.FAILED) == 1
    assert SleepScript.exit_code(ScriptState.CONFIGURE_FAILED) == 1


def test_ctrl_c_stops_the_script() -> None:
    import signal

    with subprocess.Popen(
        [str(RUN_SCRIPT), "examples/sleep.py", "-p", "checkpoints=[a, b]", "-p", "sleep_time=60"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Reached checkpoint a" in line:
                process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    out = "".join(lines)
    assert "State: STOPPED\n" in out
    assert "Reached checkpoint b" not in out
