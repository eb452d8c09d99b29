"""ScriptInfo: one script of the queue, from launch to the end of its process."""

from __future__ import annotations

__all__ = ["TIMESTAMP_EVENT_FIELDS", "ScriptInfo", "ScriptRequest", "ScriptTimestamps"]

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..sal import (
    AckError,
    AckTimeoutError,
    BaseMessage,
    Domain,
    ExpectedError,
    Remote,
    ScriptProcessState,
    ScriptState,
)
from ..sal.timestamps import current_tai
from .launcher import LaunchedScript, ScriptLauncher, ScriptLaunchError

#: Time to wait for the final acknowledgement of a short script command (s).
COMMAND_TIMEOUT = 10.0
#: Time allowed, once a script has ended, for its last ``state`` event to
#: arrive (it travels separately from the news that the process ended) (s).
FINAL_STATE_GRACE = 5.0
# The run command is acknowledged only when the script ends.
_RUN_TIMEOUT = 365 * 86400.0

#: The ScriptQueue ``script`` event's timestamp fields, each with the
#: `ScriptTimestamps` attribute it carries.
TIMESTAMP_EVENT_FIELDS = {
    "timestampProcessStart": "process_start",
    "timestampConfigureStart": "configure_start",
    "timestampConfigureEnd": "configure_end",
    "timestampRunStart": "run_start",
    "timestampProcessEnd": "process_end",
}

# The ScriptQueue ``add`` command's fields, each with the `ScriptRequest`
# attribute it carries (the command's location fields aside).
_REQUEST_COMMAND_FIELDS = {
    "is_standard": "isStandard",
    "path": "path",
    "config": "config",
    "descr": "descr",
    "log_level": "logLevel",
    "pause_checkpoint": "pauseCheckpoint",
    "stop_checkpoint": "stopCheckpoint",
}


@dataclasses.dataclass(frozen=True)
class ScriptRequest:
    """A script to run, and how: what ``add`` asks for, but where it goes.

    The queue keeps it with each script (``requeue`` runs it again as it
    is); a follower that commands the queue sends it with
    `command_fields`.

    Attributes
    ----------
    is_standard : `bool`
        Is the script standard (else external)?
    path : `str`
        Path relative to its scripts directory.
    config : `str`
        Configuration YAML; blank for the script's defaults.
    descr : `str`
        Why the script is run.
    log_level : `int`
        Initial log level; 0 leaves the script's default.
    pause_checkpoint, stop_checkpoint : `str`
        Regular expressions of checkpoints to pause or stop at.
    """

    is_standard: bool
    path: str
    config: str = ""
    descr: str = ""
    log_level: int = 0
    pause_checkpoint: str = ""
    stop_checkpoint: str = ""

    @classmethod
    def from_command(cls, data: BaseMessage) -> ScriptRequest:
        """Return the request of an ``add`` command."""
        return cls(**{attr: getattr(data, field) for attr, field in _REQUEST_COMMAND_FIELDS.items()})

    def command_fields(self) -> dict[str, Any]:
        """Return the fields of the ``add`` command that carry this request."""
        return {field: getattr(self, attr) for attr, field in _REQUEST_COMMAND_FIELDS.items()}


@dataclasses.dataclass
class ScriptTimestamps:
    """TAI times (unix seconds) of a script's milestones; 0 if not reached."""

    process_start: float = 0.0
    configure_start: float = 0.0
    configure_end: float = 0.0
    run_start: float = 0.0
    process_end: float = 0.0

    def event_fields(self) -> dict[str, float]:
        """Return the ``script`` event's timestamp fields (see `TIMESTAMP_EVENT_FIELDS`)."""
        return {field: getattr(self, attr) for field, attr in TIMESTAMP_EVENT_FIELDS.items()}


class ScriptInfo:
    """What to run, and what has become of it: one script of the queue.

    Holds the ``add`` request, the launched script, its process state
    (`ScriptProcessState`, the queue's view) and script state (`ScriptState`,
    the script's own view, from its ``state`` event), and drives the script
    through its commands: `load`, `configure`, `run`, `stop`, `terminate`.
    Every change is reported to ``on_change``.

    Parameters
    ----------
    index : `int`
        SAL index of the script.
    request : `ScriptRequest`
        The script and how to run it, as given to ``add``.
    full_path : `pathlib.Path`
        The executable.
    on_change : callable
        ``await on_change(script_info)`` after each change.
    log : `logging.Logger`
        The queue's logger.
    """

    def __init__(
        self,
        *,
        index: int,
        request: ScriptRequest,
        full_path: Path,
        on_change: Callable[[ScriptInfo], Awaitable[None]],
        log: logging.Logger,
    ) -> None:
        self.index = index
        self.request = request
        self.full_path = full_path
        self.on_change = on_change
        self.log = log
        self.process_state = ScriptProcessState.UNKNOWN
        self.script_state = ScriptState.UNKNOWN
        #: Why the script ended as it did (its state reason, or the queue's).
        self.reason = ""
        self.timestamps = ScriptTimestamps()
        self.exit_code: int | None = None
        #: Did the queue terminate the script (rather than it ending by itself)?
        self.terminated = False
        self._launched: LaunchedScript | None = None
        self._remote: Remote | None = None
        self._run_task: asyncio.Future[Any] | None = None
        self._end_task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._final_state_seen: asyncio.Future[None] = loop.create_future()
        #: Done when the script reported ``UNCONFIGURED`` (ready to configure).
        self.ready: asyncio.Future[None] = loop.create_future()
        #: Done when the script has ended and its states are final.
        self.done_task: asyncio.Future[None] = loop.create_future()

    def __repr__(self) -> str:
        return (
            f"ScriptInfo(index={self.index}, path={self.path!r}, process_state={self.process_state.name}, "
            f"script_state={self.script_state.name})"
        )

    @property
    def path(self) -> str:
        """Path relative to its scripts directory, as given to ``add``."""
        return self.request.path

    @property
    def name(self) -> str:
        """``Script:<index> (<path>)``, for messages."""
        return f"Script:{self.index} ({self.path})"

    @property
    def process_done(self) -> bool:
        """Has the script ended (or never started)?"""
        return self.done_task.done()

    @property
    def runnable(self) -> bool:
        """Is the script configured and waiting to run?"""
        return (
            self.process_state == ScriptProcessState.CONFIGURED
            and self.script_state == ScriptState.CONFIGURED
            and not self.process_done
        )

    @property
    def failed(self) -> bool:
        """Did the script end badly, other than by being terminated?

        True if it failed to load or configure, failed while running, or
        ended without reporting DONE or STOPPED.
        """
        return (
            self.process_done
            and not self.terminated
            and self.script_state not in (ScriptState.DONE, ScriptState.STOPPED)
        )

    def event_fields(self) -> dict[str, Any]:
        """Return the fields of the ScriptQueue ``script`` event."""
        return dict(
            scriptSalIndex=self.index,
            path=self.path,
            isStandard=self.request.is_standard,
            **self.timestamps.event_fields(),
            processState=int(self.process_state),
            scriptState=int(self.script_state),
        )

    # --- life cycle ------------------------------------------------------

    async def load(self, domain: Domain, launcher: ScriptLauncher, timeout: float) -> None:
        """Start the script and wait until it is ready to be configured.

        Raises
        ------
        ExpectedError
            If it could not be started, ended, or was not ready in time
            (it is then terminated); the process state is ``LOADFAILED``.
        """
        if self.process_state != ScriptProcessState.UNKNOWN:
            raise RuntimeError(f"{self.name} was already loaded")
        # Commands only: the queue follows every script's state through one
        # Remote of index 0, and this one must exist before the script does
        # so that no acknowledgement is missed.
        self._remote = Remote(domain, "Script", self.index, include=[])
        await self._remote.start_task
        self.process_state = ScriptProcessState.LOADING
        self.timestamps.process_start = current_tai()
        await self.on_change(self)
        try:
            self._launched = await launcher.launch(self.full_path, self.index)
        except ScriptLaunchError as e:
            await self._ended(ScriptProcessState.LOADFAILED, str(e))
            raise ExpectedError(f"{self.name} failed to load: {e}") from e
        self.log.info("%s started as %s", self.name, self._launched.description)
        self._end_task = asyncio.create_task(self._wait_for_end(self._launched))
        await asyncio.wait([self.ready, self.done_task], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.ready.done():
            return
        if self.done_task.done():
            details = self._launched.output_tail()
            raise ExpectedError(
                f"{self.name} failed to load: it exited with code {self.exit_code} before reporting "
                f"UNCONFIGURED" + (f"; its last output:\n{details}" if details else "")
            )
        self.reason = f"not ready after {timeout} s"
        await self.terminate()
        self.process_state = ScriptProcessState.LOADFAILED
        await self.on_change(self)
        raise ExpectedError(f"{self.name} failed to load: {self.reason}; terminated")

    async def configure(self, timeout: float = COMMAND_TIMEOUT) -> None:
        """Configure the loaded script.

        Raises
        ------
        ExpectedError
            If configuration failed (the message is the script's reason);
            the process state is then ``CONFIGURE_FAILED`` and the script
            exits by itself (or is terminated if it does not answer).
        """
        assert self._remote is not None, "load first"
        self.timestamps.configure_start = current_tai()
        await self.on_change(self)
        command = asyncio.ensure_future(
            self._remote.cmd_configure.set_start(
                config=self.request.config,
                logLevel=self.request.log_level,
                pauseCheckpoint=self.request.pause_checkpoint,
                stopCheckpoint=self.request.stop_checkpoint,
                timeout=timeout,
            )
        )
        # A script that dies while being configured never answers.
        await asyncio.wait([command, self.done_task], return_when=asyncio.FIRST_COMPLETED)
        self.timestamps.configure_end = current_tai()
        problem = ""
        if not command.done():
            command.cancel()
            problem = self.reason
        elif (error := command.exception()) is not None:
            if isinstance(error, AckTimeoutError):
                problem = f"no answer to configure within {timeout} s"
                await self.terminate()
            elif isinstance(error, AckError):
                problem = error.ackcmd.result.removeprefix("Failed: ")
            else:
                raise error
        if problem:
            if not self.terminated:
                self.process_state = ScriptProcessState.CONFIGURE_FAILED
            self.reason = problem
            await self.on_change(self)
            raise ExpectedError(f"{self.name} could not be configured: {problem}")
        self.process_state = ScriptProcessState.CONFIGURED
        await self.on_change(self)

    async def run(self, group_id: str) -> None:
        """Give the configured script a group id and start it running.

        Returns once the script has started; the script's end shows in its
        state and in `done_task`.

        Raises
        ------
        AckError
            If the script refused ``setGroupId``.
        """
        assert self._remote is not None, "load first"
        await self._remote.cmd_setGroupId.set_start(groupId=group_id, timeout=COMMAND_TIMEOUT)
        self.process_state = ScriptProcessState.RUNNING
        self.timestamps.run_start = current_tai()
        # The run command is acknowledged when the script ends; its outcome
        # is read from the script's state, so the ack is not awaited.
        self._run_task = asyncio.ensure_future(self._remote.cmd_run.start(timeout=_RUN_TIMEOUT))
        self._run_task.add_done_callback(_ignore_outcome)
        await self.on_change(self)

    async def stop(self, timeout: float) -> None:
        """Ask the script to stop; terminate it if it has not ended in ``timeout`` s."""
        if self.process_done:
            return
        if self._remote is not None and self.ready.done():
            self.log.info("Stopping %s", self.name)
            # Its outcome shows as the script's end; a script that ends at
            # once may not even acknowledge.
            command = asyncio.ensure_future(self._remote.cmd_stop.set_start(timeout=timeout))
            command.add_done_callback(_ignore_outcome)
            await asyncio.wait([self.done_task], timeout=timeout)
            command.cancel()
        if not self.process_done:
            self.log.warning(
                "%s did not end within %s s of being stopped; terminating it", self.name, timeout
            )
            await self.terminate()

    async def terminate(self) -> None:
        """End the script now, without its cooperation."""
        if self.process_done or self._launched is None:
            return
        self.log.info("Terminating %s", self.name)
        self.terminated = True
        await self._launched.terminate()
        await asyncio.shield(self.done_task)

    async def _wait_for_end(self, launched: LaunchedScript) -> None:
        try:
            code = await launched.wait()
        except Exception as e:
            self.log.exception("Lost track of %s", self.name)
            code, self.reason = -1, f"lost track of the script: {e}"
        self.exit_code = code
        if self.ready.done() and not self.terminated:
            # A script that was ready writes a final state before it exits;
            # that message may still be on its way.
            await asyncio.wait([self._final_state_seen], timeout=FINAL_STATE_GRACE)
        if self.terminated:
            state = ScriptProcessState.TERMINATED
        elif not self.ready.done():
            state = ScriptProcessState.LOADFAILED
            self.reason = f"exited with code {code} before reporting UNCONFIGURED"
        elif self.process_state in (ScriptProcessState.LOADING, ScriptProcessState.CONFIGURE_FAILED):
            # Ready, but it ended before its configuration was accepted.
            state = ScriptProcessState.CONFIGURE_FAILED
            self.reason = self.reason or f"exited with code {code} while being configured"
        else:
            state = ScriptProcessState.DONE
        await self._ended(state, self.reason)

    async def _ended(self, process_state: ScriptProcessState, reason: str) -> None:
        self.process_state = process_state
        self.reason = reason
        self.timestamps.process_end = current_tai()
        if self._run_task is not None:
            self._run_task.cancel()  # a script that was terminated never acknowledges run
        try:
            if self._remote is not None:
                await self._remote.close()
            await self.on_change(self)
        finally:
            if not self.done_task.done():
                self.done_task.set_result(None)

    def on_state(self, data: BaseMessage) -> bool:
        """Take the script's ``state`` event; return whether the state changed."""
        state = ScriptState(data.state)
        if data.reason:
            self.reason = data.reason
        if state == ScriptState.UNCONFIGURED and not self.ready.done():
            self.ready.set_result(None)
        if state.is_terminal and not self._final_state_seen.done():
            self._final_state_seen.set_result(None)
        if state == self.script_state:
            return False
        self.script_state = state
        return True


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    """Retrieve a command's outcome that the script's state already tells."""
    if not task.cancelled():
        task.exception()
