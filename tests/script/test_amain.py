"""``asyncio.run(Script.amain())``: the executable exits with the script's code, over both transports.

In-process, ``amain`` runs in the test's event loop (the in-process transport
cannot reach another process); over Redis the executable runs as a process,
as the ScriptQueue starts it.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys

import pytest
import yaml

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import ScriptState
from tests.salobj_idiom.idiom_script import IdiomScript
from tests.transports import redis_server, redis_transport, transport_name  # noqa: F401

EXECUTABLE = pathlib.Path(__file__).parents[1] / "salobj_idiom" / "idiom_script_exe.py"
TIMEOUT = 60


async def start_script(transport: str, index: int, monkeypatch: pytest.MonkeyPatch) -> asyncio.Future[int]:
    """Start ``idiom_script_exe.py INDEX``; return a future of its exit code."""
    if transport == "local":
        monkeypatch.setattr(sys, "argv", [str(EXECUTABLE), str(index)])

        async def run() -> int:
            try:
                await IdiomScript.amain()
            except SystemExit as e:
                return int(e.code or 0)
            return 0

        return asyncio.ensure_future(run())
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXECUTABLE), str(index), env=os.environ
    )
    return asyncio.ensure_future(process.wait())


async def run_to_end(remote: sal.Remote, config: dict[str, object]) -> None:
    """Configure and run the script through its Remote."""
    await remote.evt_state.next(flush=False, timeout=TIMEOUT)  # UNCONFIGURED
    await remote.cmd_configure.set_start(config=yaml.safe_dump(config), timeout=TIMEOUT)
    await remote.cmd_setGroupId.set_start(groupId="group", timeout=TIMEOUT)
    await remote.cmd_run.start(timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("config", "code", "final"), [({}, 0, ScriptState.DONE), ({"fail_run": True}, 1, ScriptState.FAILED)]
)
async def test_exit_code_is_the_scripts(
    transport_name: str,  # noqa: F811
    config: dict[str, object],
    code: int,
    final: ScriptState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = 31
    async with sal.Domain() as domain, sal.Remote(domain, "Script", index) as remote:
        exit_code = await start_script(transport_name, index, monkeypatch)
        await run_to_end(remote, config)
        assert await asyncio.wait_for(exit_code, TIMEOUT) == code
        states = []
        while remote.evt_state.nqueued:
            states.append(ScriptState((await remote.evt_state.next(flush=False)).state))
        assert states[-1] == final


async def test_configure_failure_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    async with sal.Domain() as domain, sal.Remote(domain, "Script", 32) as remote:
        exit_code = await start_script("local", 32, monkeypatch)
        await remote.evt_state.next(flush=False, timeout=TIMEOUT)
        with pytest.raises(sal.AckError, match="unknown config option 'nope'"):
            await remote.cmd_configure.set_start(config="nope: 1", timeout=TIMEOUT)
        assert await asyncio.wait_for(exit_code, TIMEOUT) == 1


async def test_sigterm_ends_the_script_with_1(redis_transport: str) -> None:  # noqa: F811
    async with sal.Domain() as domain, sal.Remote(domain, "Script", 33) as remote:
        process = await asyncio.create_subprocess_exec(sys.executable, str(EXECUTABLE), "33", env=os.environ)
        await remote.evt_state.next(flush=False, timeout=TIMEOUT)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 1


def test_schema_option_and_kwargs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXECUTABLE), "0", "--schema"])
    assert IdiomScript.make_from_cmd_line() is None
    assert yaml.safe_load(capsys.readouterr().out) == IdiomScript.get_schema()
    with pytest.raises(RuntimeError, match="index must not appear"):
        IdiomScript.make_from_cmd_line(index=3)


async def test_kwargs_reach_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXECUTABLE), "34"])
    script = IdiomScript.make_from_cmd_line(descr="from kwargs")
    assert script is not None
    await script.start_task
    assert script.evt_description.data.description == "from kwargs"
    await script.close()
