"""The job supervisor: pipetask and its workers never outlive the process that started them.

Each test starts processes of its own and checks, through ``/proc``, that
none of them is left running (zombies waiting for the init process to reap
them count as gone).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lsst.ts.calibscripts.simulator.job_supervisor import (
    SUPERVISOR_MODULE,
    group_members,
    session_groups,
    session_members,
    supervised_command,
)

from .test_ocps_job import is_alive

# A fake pipetask -j 2: a process with a worker in its process group.
FAKE_PIPETASK = [
    sys.executable,
    "-c",
    "import subprocess, time; subprocess.Popen(['sleep', '60']); print('ready', flush=True); time.sleep(60)",
]

# The process that starts the supervisor, as the OCPS does: its own pid as
# the parent, a new session, output to a log; prints the supervisor's pid.
PARENT = """
import os, subprocess, sys, time
argv = [sys.executable, "-m", sys.argv[1], "--parent-pid", str(os.getpid()), *sys.argv[3:]]
with open(sys.argv[2], "ab") as log:
    supervisor = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
print(supervisor.pid, flush=True)
time.sleep(60)
"""

# Seconds a check may wait for processes to appear or go.
PATIENCE = 10.0


def wait_until(condition: Callable[[], bool], timeout: float = PATIENCE) -> float:
    """Wait until ``condition()`` holds; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true after {timeout} s: {condition}")
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Process groups a test started; whatever is left of them is killed at the end."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.parametrize("poll_only", [False, True], ids=["parent-death-signal", "polling"])
def test_the_group_dies_with_the_parent(tmp_path: Path, started: list[int], poll_only: bool) -> None:
    log = tmp_path / "ocps.log"
    options = ["--poll-only", "--poll-interval", "0.2"] if poll_only else []
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, SUPERVISOR_MODULE, str(log), *options, "--", *FAKE_PIPETASK],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    pgid = int(parent.stdout.readline())
    started.append(pgid)
    # Supervisor, fake pipetask and its worker.
    wait_until(lambda: len(group_members(pgid)) == 3 and "ready" in log.read_text())

    parent.kill()
    parent.wait()
    took = wait_until(lambda: not group_members(pgid))
    print(f"group of the killed parent gone after {took:.3f} s")
    # Measured: 0.01 s with the signal, at most the poll interval without.
    assert took < (1.0 if poll_only else 0.5)
    assert (
        f"job supervisor: parent process {parent.pid} is gone; killing process group {pgid}"
        in log.read_text()
    )


def run_supervised(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        supervised_command(command, parent_pid=os.getpid()),
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


def test_exit_codes_are_passed_on_as_a_shell_reports_them() -> None:
    assert run_supervised(["sh", "-c", "exit 3"]).returncode == 3
    assert run_supervised(["sh", "-c", "kill -9 $$"]).returncode == 128 + 9
    missing = run_supervised(["/nonexistent/pipetask"])
    assert missing.returncode == 127
    assert "cannot start /nonexistent/pipetask: FileNotFoundError" in missing.stderr


def test_workers_left_by_a_killed_command_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The command starts a worker and dies by SIGKILL, as a pipetask killed by the OOM killer.
    result = run_supervised(["sh", "-c", f"sleep 60 & echo $! > {pids}; kill -9 $$"])
    assert result.returncode == 137
    worker = int(pids.read_text())
    wait_until(lambda: not is_alive(worker))


def test_nothing_starts_if_the_parent_is_already_gone(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    marker = tmp_path / "ran"
    result = subprocess.run(
        [sys.executable, "-m", SUPERVISOR_MODULE, "--parent-pid", str(dead.pid), "--", "touch", str(marker)],
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 1
    assert f"parent process {dead.pid} is gone; not starting touch" in result.stderr
    assert not marker.exists()


def test_sigterm_is_passed_on_and_the_supervisor_waits(started: list[int]) -> None:
    # The command takes its time to stop on SIGTERM; the supervisor must not exit before it.
    command = ["sh", "-c", "trap 'sleep 0.3; exit 5' TERM; echo ready; while :; do sleep 0.05; done"]
    supervisor = subprocess.Popen(
        supervised_command(command, parent_pid=os.getpid()),
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(supervisor.pid)
    assert supervisor.stdout is not None and supervisor.stdout.readline() == "ready\n"
    supervisor.send_signal(signal.SIGTERM)  # the supervisor alone, not its group
    assert supervisor.wait(PATIENCE) == 5
    assert not group_members(supervisor.pid)


RUN_SCRIPT = Path(sys.executable).parent / "run_script"


def pipetask_processes(var_dir: Path) -> list[int]:
    """Living processes that run pipetask on a run's var dir (its job supervisor included)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended while we looked
        runs_pipetask = any(arg.endswith(b"/pipetask") for arg in argv)
        if runs_pipetask and any(os.fsencode(var_dir) in arg for arg in argv):
            pid = int(cmdline.parent.name)
            if is_alive(pid):
                found.append(pid)
    return found


@pytest.mark.slow
def test_kill_9_of_run_script_leaves_no_pipetask(tmp_path: Path) -> None:
    output = tmp_path / "run_script.out"
    command = [str(RUN_SCRIPT), "auxtel/make_latiss_calibrations.py", "--simulate", "--geometry", "reduced"]
    command += ["--time-scale", "0.01"]  # the fastest settings: one bias, no verification, -j 1
    for option in (
        "script_mode=BIAS",
        "n_bias=1",
        "do_verify=false",
        "n_processes=1",
        "generate_calibrations=true",
    ):
        command += ["-p", option]
    with output.open("w") as out:
        run = subprocess.Popen(
            command,
            env={**os.environ, "CALIBSCRIPTS_VAR_DIR": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The supervisor and pipetask itself (~10 s: observatory start, one bias, OCPS job).
        wait_until(lambda: len(pipetask_processes(tmp_path)) >= 2 or run.poll() is not None, timeout=120)
        assert run.poll() is None, f"run_script ended before its pipetask was seen:\n{output.read_text()}"
        run.kill()
        run.wait()
        took = wait_until(lambda: not pipetask_processes(tmp_path))
        print(f"pipetask of the killed run_script gone after {took:.3f} s")
        assert took < 2.0
    finally:
        run.kill()
        for pid in pipetask_processes(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The OCPS scratch lives with the repository.
    (log,) = (tmp_path / "repo" / "LATISS" / "simulated-scratch" / "uws").glob("*/outs/ocps.log")
    assert f"job supervisor: parent process {run.pid} is gone" in log.read_text()


# A fake bps: a process whose worker runs in a process group of its own (as
# Parsl's worker pool does), in the same session.
FAKE_BPS = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setpgid(0, 0); time.sleep(60)']); "
    "print('ready', flush=True); time.sleep(60)",
]


def test_every_group_of_the_session_dies_with_the_parent(tmp_path: Path, started: list[int]) -> None:
    log = tmp_path / "ocps.log"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, SUPERVISOR_MODULE, str(log), "--", *FAKE_BPS],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    session = int(parent.stdout.readline())
    started.append(session)
    wait_until(lambda: len(session_groups(session)) == 2 and "ready" in log.read_text())
    (other,) = [pgid for pgid in session_groups(session) if pgid != session]
    started.append(other)

    parent.kill()
    parent.wait()
    took = wait_until(lambda: not session_members(session))
    print(f"session of the killed parent gone after {took:.3f} s")
    assert f"killing process group {session} (pipetask and its workers) and process group(s) {other}" in (
        log.read_text()
    )
