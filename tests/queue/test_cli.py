"""The queue command, run as a user runs it: a process beside the client."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.queue.cli import add_queue_command, main
from lsst.ts.calibscripts.queue.service_cli import ServiceCommand, stop_signals
from lsst.ts.calibscripts.sal import ScriptProcessState, ScriptState
from lsst.ts.calibscripts.sal.redis_server import RedisServer
from lsst.ts.calibscripts.sal.redis_transport import REDIS_URL_ENV_VAR

from .queue_client import TIMEOUT, QueueClient

_QUEUE_MODULE = "lsst.ts.calibscripts.queue"


async def test_queue_process_runs_scripts_and_terminates_them_on_ctrl_c(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over Redis, as it must be for another process to reach the queue.
    monkeypatch.setenv(sal.TRANSPORT_ENV_VAR, "redis")
    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_server.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", _QUEUE_MODULE, "ATQueue", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        while not banner or "Ctrl-C" not in banner[-1]:
            line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
            assert line, f"the queue exited early: {banner}"
            banner.append(line.decode())
        text = "".join(banner)
        assert text.startswith("ATQueue (ScriptQueue:2) is ENABLED.")
        assert f"CALIBSCRIPTS_REDIS_URL={redis_server.url}" in text

        async with sal.Domain() as domain, sal.Remote(domain, "ScriptQueue", 2) as remote:
            client = QueueClient(remote)
            done = await client.add({"checkpoints": ["one"]})
            held = await client.add({"checkpoints": ["hold"]}, pauseCheckpoint="hold")
            await client.wait_script(done, process_state=ScriptProcessState.DONE)
            await client.wait_script(held, script_state=ScriptState.PAUSED)
            process.send_signal(signal.SIGINT)
            # The queue terminates its scripts before it exits.
            await client.wait_script(held, process_state=ScriptProcessState.TERMINATED)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_missing_directory_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert main(["MTQueue", "--external", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"calibscripts queue: error: The external scripts directory {missing} does not exist\n"


def test_add_queue_command_wires_a_handler() -> None:
    parser = argparse.ArgumentParser(prog="calibscripts")
    add_queue_command(parser.add_subparsers(dest="group"))
    args = parser.parse_args(["queue", "MTQueue", "--state", "disabled"])
    assert (args.name, args.state, callable(args.handler)) == ("MTQueue", "disabled", True)


def _service(run_error: BaseException | None) -> ServiceCommand:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("code", type=int)

    async def run(args: argparse.Namespace) -> int:
        if run_error is not None:
            raise run_error
        return int(args.code)

    return ServiceCommand(
        name="demo",
        module="demo",
        help="help",
        description="description",
        summary="summary",
        add_arguments=add_arguments,
        run=run,
    )


def test_a_service_command_runs_or_says_what_went_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert _service(None).main(["3", "--log-level", "INFO"]) == 3
    assert _service(ValueError("no such thing")).main(["0"]) == 1
    assert capsys.readouterr().err == "calibscripts demo: error: no such thing\n"
    # Ctrl-C before the service handles signals: the shell's code, no traceback.
    assert _service(KeyboardInterrupt()).main(["0"]) == 130
    with pytest.raises(RuntimeError):  # not an error the user can fix: a traceback
        _service(RuntimeError("bug")).main(["0"])


async def test_stop_signals_call_stop_while_in_the_block() -> None:
    stopped = asyncio.Event()
    with stop_signals(stopped.set):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stopped.wait(), TIMEOUT)
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)  # none left behind
