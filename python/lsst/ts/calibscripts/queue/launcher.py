"""How the ScriptQueue starts scripts: as processes, or as tasks in its own process.

Over a networked transport each script is a process (``python path
INDEX``), as at the observatory, with the environment that makes its
transport reach the queue's. The in-process transport cannot reach another
process, so there each script runs in the queue's process instead, loaded
the way ``run_script`` loads it. `make_launcher` chooses from the transport;
the queue uses either through the `ScriptLauncher` interface.
"""

from __future__ import annotations

__all__ = [
    "InProcessLauncher",
    "LaunchedScript",
    "ScriptLaunchError",
    "ScriptLauncher",
    "SubprocessLauncher",
    "make_launcher",
]

import abc
import asyncio
import collections
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ..sal import Domain, LocalTransport, ScriptState
from ..sal.domain import TOPIC_SUBNAME_ENV_VAR
from ..script.base_script import BaseScript
from ..script.run_script import load_script_class

#: Time a script process gets to exit after SIGTERM before it is killed (s).
KILL_DELAY = 5.0
#: Number of lines of a script process's standard error kept for reports.
STDERR_LINES = 20


class ScriptLaunchError(RuntimeError):
    """A script could not be started at all (e.g. its file does not load)."""


class LaunchedScript(abc.ABC):
    """A started script: wait for it to end, or end it."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the script runs, for log messages (``process 1234``)."""

    @abc.abstractmethod
    async def wait(self) -> int:
        """Wait until the script has ended; return its exit code.

        0 means the script ended DONE or STOPPED, as for ``script.py INDEX``.
        """

    @abc.abstractmethod
    async def terminate(self) -> None:
        """End the script now, without its cooperation; return once it has ended."""

    def output_tail(self) -> str:
        """Return the last lines the script wrote to standard error, if known."""
        return ""


class ScriptLauncher(abc.ABC):
    """Starts scripts for the queue."""

    @abc.abstractmethod
    async def launch(self, path: Path, index: int) -> LaunchedScript:
        """Start the script executable ``path`` as ``Script:index``.

        Returns once the script is started, not once it is ready: it
        reports ``UNCONFIGURED`` on the ``Script`` state event when it is.

        Raises
        ------
        ScriptLaunchError
            If the script cannot be started.
        """


class _ScriptProcess(LaunchedScript):
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        # Keep the pipe drained so a chatty script never blocks on a full pipe.
        self._drain_task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())

    @property
    def description(self) -> str:
        return f"process {self.process.pid}"

    async def wait(self) -> int:
        code = await self.process.wait()
        await self._drain_task
        return code

    async def terminate(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), KILL_DELAY)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        await self.wait()

    def output_tail(self) -> str:
        return "\n".join(self._stderr)


class SubprocessLauncher(ScriptLauncher):
    """Run each script as ``python path INDEX`` in its own process.

    Parameters
    ----------
    environment : `~collections.abc.Mapping` [`str`, `str`]
        Variables added to this process's environment for the scripts:
        those that select the transport and the topic sub-name.
    python : `str`, optional
        Python interpreter; defaults to the queue's own.
    """

    def __init__(self, environment: Mapping[str, str], *, python: str = sys.executable) -> None:
        self.environment = dict(environment)
        self.python = python

    async def launch(self, path: Path, index: int) -> LaunchedScript:
        """Start the script process."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.python,
                str(path),
                str(index),
                env={**os.environ, **self.environment},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: Ctrl-C on the queue's terminal reaches the
                # queue, which stops its scripts, not every script at once.
                start_new_session=True,
            )
        except OSError as e:
            raise ScriptLaunchError(f"Cannot start {path}: {e}") from e
        return _ScriptProcess(process)


class _ScriptTask(LaunchedScript):
    def __init__(self, script: BaseScript, domain: Domain) -> None:
        self.script = script
        self.domain = domain

    @property
    def description(self) -> str:
        return "task in the queue's process"

    async def wait(self) -> int:
        try:
            await asyncio.shield(self.script.done_task)
            code = BaseScript.exit_code(ScriptState(self.script.state.state))
        except Exception:
            code = 1
        await self.domain.close()
        return code

    async def terminate(self) -> None:
        await self.script.close()
        await self.wait()


class InProcessLauncher(ScriptLauncher):
    """Run each script in this process, as ``run_script`` does.

    Parameters
    ----------
    make_domain : callable
        Returns a new `Domain` for each script (a script lists the
        components of its domain as the remotes it uses, so it must not
        share the queue's).
    """

    def __init__(self, make_domain: Callable[[], Domain]) -> None:
        self.make_domain = make_domain

    async def launch(self, path: Path, index: int) -> LaunchedScript:
        """Load the script class from ``path`` and start it."""
        try:
            script_class = load_script_class(path)
        except Exception as e:
            raise ScriptLaunchError(f"Cannot load {path}: {type(e).__name__}: {e}") from e
        domain = self.make_domain()
        try:
            script = script_class(index=index, domain=domain)  # type: ignore[call-arg]
        except Exception as e:
            await domain.close()
            raise ScriptLaunchError(f"Cannot construct {script_class.__name__}: {e}") from e
        return _ScriptTask(script, domain)


def make_launcher(domain: Domain) -> ScriptLauncher:
    """Return the launcher for scripts that must reach ``domain``'s components.

    Raises
    ------
    TypeError
        If the transport can neither reach a child process nor is the
        in-process transport.
    """
    transport = domain.transport
    environment = transport.child_environment()
    if environment is not None:
        return SubprocessLauncher({**environment, TOPIC_SUBNAME_ENV_VAR: domain.subname})
    if isinstance(transport, LocalTransport):
        bus, subname = transport.bus, domain.subname
        return InProcessLauncher(lambda: Domain(LocalTransport(bus), subname=subname))
    raise TypeError(
        f"Cannot launch scripts over the {transport.name!r} transport: it cannot reach another "
        "process (child_environment() is None) and is not the in-process transport"
    )
