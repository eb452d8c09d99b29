"""Run one command so that it never outlives the process that started it.

The simulated OCPS starts every pipetask job through this module::

    python -m lsst.ts.calibscripts.simulator.job_supervisor --parent-pid PID -- pipetask ...

in a new session (``start_new_session=True``; the supervisor makes one
itself if it was not), so that the supervisor is the leader of a fresh
process group. It then

1. asks Linux to send it SIGHUP when its parent dies
   (``prctl(PR_SET_PDEATHSIG, SIGHUP)``, called through `ctypes` on
   itself: no ``preexec_fn``, which is unsafe in a process with threads),
   and checks right after that its parent is still ``PID``: a parent that
   died between ``fork`` and ``prctl`` would never send the signal, so the
   command is then not started at all;
2. starts the command as its child **in the same process group**, so that
   the OCPS's own abort path is unchanged: it signals the group (SIGTERM,
   then SIGKILL after ``kill_grace``) and waits until no member is left,
   which covers the supervisor, pipetask and pipetask's ``-j N`` worker
   processes, which inherit the group;
3. waits for the child and exits with its exit code, or with 128 + N if
   the child was killed by signal N (as a shell reports it);
4. whenever it learns that its parent died (the parent-death signal, or
   ``getppid()`` no longer being ``PID`` at one of its periodic checks),
   writes one line saying so to its standard error (the job log) and
   kills the whole process group with SIGKILL, itself included. SIGKILL
   because nobody is left to report on a graceful stop, and every second
   of life is a second of writing to the repository without an owner.

Why SIGHUP and not SIGTERM: the kernel sends the parent-death signal when
the *thread* that started the child exits, even if the process lives on,
so the signal alone proves nothing and ``getppid()`` decides. A signal of
its own keeps that case apart from SIGTERM, which always means "stop the
job" (the OCPS aborting it): SIGTERM is passed on to the child and the
supervisor goes on waiting for it, so that it never exits before the
command does (SIGINT is treated the same way). The supervisor runs in its
own session, so no terminal sends it a SIGHUP or SIGINT of its own.

When the child has exited, members of the group left behind (``-j``
workers of a pipetask that was killed) are killed too (Linux: found in
``/proc``).

Commands that start process groups of their own (bps with Parsl: its
worker pool runs in a group of its own, re-parented to init) stay in the
supervisor's session, which nothing in the job leaves. So the supervisor
kills every process of its **session**, not only of its group, when its
parent dies or its command has exited, and the OCPS stops a job by
signalling every process group of the session (`session_groups`). For
pipetask, whose processes are all in one group, group and session are the
same.

Other platforms
---------------
``PR_SET_PDEATHSIG`` exists only on Linux. Elsewhere (macOS, BSD) the
supervisor falls back to checking ``getppid()`` every `PARENT_POLL_INTERVAL`
seconds, so an orphan lives at most that long. On Linux the periodic check
also runs, as a second line of defence: the kernel sends the parent-death
signal when the thread that started the child exits, which is why the
signal alone is never trusted (see above). Windows has no
process groups and is not supported.

This module imports only the standard library, so that it starts in a few
tens of milliseconds.
"""

from __future__ import annotations

__all__ = [
    "PARENT_DEATH_SIGNAL",
    "PARENT_POLL_INTERVAL",
    "SUPERVISOR_MODULE",
    "group_members",
    "main",
    "session_groups",
    "session_members",
    "set_parent_death_signal",
    "shell_exit_code",
    "supervised_command",
]

import argparse
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

SUPERVISOR_MODULE = __name__
"""Module name to run with ``python -m``."""

PARENT_POLL_INTERVAL = 0.5
"""Seconds between checks that the parent is still alive."""

PARENT_DEATH_SIGNAL = signal.SIGHUP
"""Signal the kernel sends the supervisor when its parent dies (Linux)."""

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Exit code when the parent was gone before the command could start.
_PARENT_GONE_EXIT_CODE = 1


def supervised_command(command: Sequence[str], *, parent_pid: int, python: str | None = None) -> list[str]:
    """Return the command line that runs ``command`` under the supervisor.

    Parameters
    ----------
    command : `~collections.abc.Sequence` [`str`]
        The command to run (e.g. pipetask and its arguments).
    parent_pid : `int`
        Process id of the process that will start the supervisor (normally
        `os.getpid`); the command is stopped when that process dies.
    python : `str`, optional
        Python interpreter; default: the running one.

    Returns
    -------
    argv : `list` [`str`]
        Arguments for ``asyncio.create_subprocess_exec`` or
        `subprocess.Popen`; start it with ``start_new_session=True``.
    """
    return [
        python or sys.executable,
        "-m",
        SUPERVISOR_MODULE,
        "--parent-pid",
        str(parent_pid),
        "--",
        *command,
    ]


def shell_exit_code(returncode: int) -> int:
    """Turn a `subprocess` return code into the exit code a shell reports.

    Parameters
    ----------
    returncode : `int`
        Return code; -N means killed by signal N.

    Returns
    -------
    exit_code : `int`
        ``returncode`` if >= 0, else 128 + N.
    """
    return 128 - returncode if returncode < 0 else returncode


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies.

    Parameters
    ----------
    signum : `int`
        Signal to receive.

    Returns
    -------
    done : `bool`
        True if the kernel accepted (Linux); False elsewhere or if the call
        failed, and then the caller must poll `os.getppid`.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _proc_stats() -> list[tuple[int, str, int, int]] | None:
    """Return (pid, state, pgrp, session) of every process, or None without ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    stats = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp session ..."; comm may contain spaces.
            state, _, pgrp, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
            stats.append((int(stat.parent.name), state, int(pgrp), int(session)))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return stats


def session_members(sid: int) -> list[tuple[int, int]]:
    """Return the running (not zombie) processes of a session and their groups.

    Reads ``/proc`` (Linux); elsewhere asks the kernel whether the process
    group ``sid`` (the session leader's) has any member, and returns
    ``[(sid, sid)]`` if so.

    Parameters
    ----------
    sid : `int`
        Session id (the pid of the session leader: the job supervisor).

    Returns
    -------
    members : `list` [`tuple` [`int`, `int`]]
        ``(pid, pgid)`` of each living member.
    """
    stats = _proc_stats()
    if stats is None:
        return [(sid, sid)] if group_members(sid) else []
    return [(pid, pgrp) for pid, state, pgrp, session in stats if session == sid and state not in ("Z", "X")]


def session_groups(sid: int) -> list[int]:
    """Return the process groups with living members in a session, the leader's first.

    Parameters
    ----------
    sid : `int`
        Session id.

    Returns
    -------
    pgids : `list` [`int`]
        Process group ids.
    """
    groups = sorted({pgid for _, pgid in session_members(sid)}, key=lambda pgid: (pgid != sid, pgid))
    return groups


def group_members(pgid: int) -> list[int]:
    """Return the running (not zombie) processes of a process group.

    Reads ``/proc`` (Linux); elsewhere asks the kernel whether the group
    has any member at all, and returns ``[pgid]`` if so.

    Parameters
    ----------
    pgid : `int`
        Process group id.

    Returns
    -------
    pids : `list` [`int`]
        Process ids of the group's living members.
    """
    stats = _proc_stats()
    if stats is None:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    return [pid for pid, state, pgrp, _ in stats if pgrp == pgid and state not in ("Z", "X")]


class _Supervisor:
    """State shared by the main loop and the signal handler."""

    def __init__(self, parent_pid: int, poll_interval: float) -> None:
        self.parent_pid = parent_pid
        self.poll_interval = poll_interval
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_signal: int | None = None

    def parent_alive(self) -> bool:
        # A dead parent's children are re-parented (to init or a subreaper).
        return os.getppid() == self.parent_pid

    def kill_group(self) -> None:
        """Kill the whole session, this process included (the parent is gone)."""
        own = os.getpgrp()
        others = [pgid for pgid in session_groups(os.getsid(0)) if pgid != own]
        also = f" and process group(s) {', '.join(map(str, others))} of its session" if others else ""
        with contextlib.suppress(OSError):
            os.write(
                2,
                (
                    f"job supervisor: parent process {self.parent_pid} is gone; killing process "
                    f"group {own} (pipetask and its workers){also} with SIGKILL\n"
                ).encode(),
            )
        for pgid in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        os.killpg(own, signal.SIGKILL)
        os._exit(128 + signal.SIGKILL)  # only if the signal could not be sent

    def on_parent_death_signal(self, signum: int, frame: FrameType | None) -> None:
        # Also sent when only the parent's thread that started us exited.
        if not self.parent_alive():
            self.kill_group()

    def on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.parent_alive():
            self.kill_group()
        # SIGTERM (an abort) or SIGINT: pass it on and keep waiting for the child.
        self.stop_signal = signum
        if self.child is not None and self.child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)

    def wait(self, child: subprocess.Popen[bytes]) -> int:
        """Wait for the child, checking on the parent meanwhile; return its return code."""
        pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(child.pid)
        try:
            while True:
                if pidfd is not None:
                    # Readable once the child has exited.
                    select.select([pidfd], [], [], self.poll_interval)
                else:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(self.poll_interval)
                returncode = child.poll()
                if returncode is not None:
                    return returncode
                if not self.parent_alive():
                    self.kill_group()
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def kill_leftovers(self) -> None:
        """Kill members of the session other than this process (orphaned workers)."""
        me = os.getpid()
        for pid, _ in session_members(os.getsid(0)):
            if pid != me:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command given after ``--``; return its (shell-style) exit code.

    Parameters
    ----------
    argv : `~collections.abc.Sequence` [`str`], optional
        Arguments: ``--parent-pid PID [--poll-interval S] [--poll-only] --
        COMMAND...``; default: `sys.argv`.

    Returns
    -------
    exit_code : `int`
        The command's exit code, 128 + N if it was killed by signal N, or
        1 if the parent was already gone and the command was not started.
    """
    parser = argparse.ArgumentParser(
        prog="python -m " + SUPERVISOR_MODULE,
        description="Run a command that dies with the parent process (see the module docstring).",
    )
    parser.add_argument("--parent-pid", type=int, required=True, help="process whose death stops the command")
    parser.add_argument(
        "--poll-interval", type=float, default=PARENT_POLL_INTERVAL, help="seconds between parent checks"
    )
    parser.add_argument(
        "--poll-only",
        action="store_true",
        help="only poll for the parent (as on platforms other than Linux; for tests)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if os.getpgrp() != os.getpid():
        # Not started in a new session: make one, so that killing "the
        # group" can never reach the caller's own process group.
        os.setsid()
    supervisor = _Supervisor(args.parent_pid, args.poll_interval)
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, supervisor.on_stop_signal)
    signal.signal(PARENT_DEATH_SIGNAL, supervisor.on_parent_death_signal)
    if not args.poll_only:
        set_parent_death_signal(PARENT_DEATH_SIGNAL)
    # Closes the race: a parent that died before prctl sends no signal.
    if not supervisor.parent_alive():
        print(
            f"job supervisor: parent process {args.parent_pid} is gone; not starting {command[0]}",
            file=sys.stderr,
        )
        return _PARENT_GONE_EXIT_CODE
    if supervisor.stop_signal is not None:
        return 128 + supervisor.stop_signal
    try:
        # Same process group as this supervisor (no new session): see the
        # module docstring. The child gets default signal dispositions.
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as e:
        print(f"job supervisor: cannot start {command[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126
    supervisor.child = child
    if supervisor.stop_signal is not None:
        # SIGTERM arrived while the child was being started.
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(supervisor.stop_signal)
    returncode = supervisor.wait(child)
    supervisor.kill_leftovers()
    return shell_exit_code(returncode)


if __name__ == "__main__":
    sys.exit(main())
