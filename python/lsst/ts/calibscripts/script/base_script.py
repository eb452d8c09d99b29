"""BaseScript: a SAL script with the standard script state machine."""

from __future__ import annotations

__all__ = ["HEARTBEAT_INTERVAL", "BaseScript"]

import abc
import argparse
import asyncio
import re
import sys
import types
from collections.abc import Sequence
from typing import Any

import yaml

from ..resources import schemas_dir
from ..sal import BaseMessage, Controller, Domain, ExpectedError, ScriptState
from ..sal.timestamps import current_tai
from .config_errors import ConfigError
from .validator import DefaultingValidator
from .yaml_config import parse_config_yaml

#: Interval between heartbeats (s).
HEARTBEAT_INTERVAL = 1.0

_TERMINAL = (ScriptState.DONE, ScriptState.STOPPED, ScriptState.FAILED, ScriptState.CONFIGURE_FAILED)


class BaseScript(Controller, abc.ABC):
    """Base class of SAL scripts.

    A script is a ``Script`` component whose index is its SAL index. The
    ScriptQueue (or ``run_script``) configures it, sets a group id and runs
    it; the script then goes through these states::

        UNCONFIGURED -configure-> CONFIGURED -run-> RUNNING <-> PAUSED
        RUNNING -> ENDING -> DONE            (run returned)
        RUNNING -> STOPPING -> STOPPED       (stop command or stop checkpoint)
        RUNNING -> FAILING -> FAILED         (run raised)
        UNCONFIGURED -> CONFIGURE_FAILED     (bad configuration)

    `cleanup` runs after `run` has started, whatever the outcome, before the
    final state. After a final state the script closes (its process exits).

    Subclasses implement `get_schema` (class method), `configure`,
    `set_metadata` and `run`, and call `checkpoint` at named points of `run`.

    Parameters
    ----------
    index : `int`
        SAL index of the script; must be non-zero.
    descr : `str`
        Short description.
    help : `str`, optional
        Longer help.
    domain : `Domain`, optional
        Domain to use (created if not given).

    Raises
    ------
    ValueError
        If ``index`` is 0 (that would answer every script's commands).
    """

    def __init__(self, index: int, descr: str, help: str = "", *, domain: Domain | None = None) -> None:
        if index == 0:
            raise ValueError("index must be non-zero: a script with index 0 would answer every script")
        self.descr = descr
        self.help = help
        self.config: types.SimpleNamespace | None = None
        self.group_id = ""
        self.timestamps: dict[ScriptState, float] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._pause_future: asyncio.Future[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._state = ScriptState.UNKNOWN
        self._reason = ""
        self._last_checkpoint = ""
        self._num_checkpoints = 0
        self._block_id = ""
        self._execution_id = ""
        self._pause_regex: re.Pattern[str] | None = None
        self._stop_regex: re.Pattern[str] | None = None
        self._is_exiting = False
        self._close_task: asyncio.Future[None] | None = None
        super().__init__("Script", index, domain=domain)

    # --- what subclasses provide ---------------------------------------

    @classmethod
    @abc.abstractmethod
    def get_schema(cls) -> dict[str, Any] | None:
        """Return the configuration JSON schema, or None if not configurable."""

    @abc.abstractmethod
    async def configure(self, config: types.SimpleNamespace) -> None:
        """Configure the script from a validated configuration with defaults.

        Raise (ideally `ConfigError`) with a message naming the option if
        the configuration cannot be used.
        """

    @abc.abstractmethod
    def set_metadata(self, metadata: types.SimpleNamespace) -> None:
        """Fill in ``metadata``, the fields of the ``metadata`` event.

        At least ``duration`` (s), which LOVE uses to show progress.
        """

    @abc.abstractmethod
    async def run(self) -> None:
        """Do the work. Call `checkpoint` at named points."""

    async def cleanup(self) -> None:
        """Clean up after `run`, whatever its outcome. Optional."""

    @classmethod
    def load_schema(cls, name: str) -> dict[str, Any]:
        """Load ``schemas/scripts/<name>.yaml`` (helper for `get_schema`).

        Works from a repository checkout and from an installed package.
        """
        path = schemas_dir() / "scripts" / f"{name}.yaml"
        with path.open() as f:
            schema = yaml.safe_load(f)
        if not isinstance(schema, dict):
            raise ValueError(f"Schema {path} is not a mapping")
        return schema

    # --- state -----------------------------------------------------------

    @property
    def state(self) -> BaseMessage:
        """The most recent ``state`` event data."""
        return self.evt_state.data

    @property
    def state_name(self) -> str:
        """Name of the current state."""
        return self._state.name

    @property
    def checkpoints(self) -> types.SimpleNamespace:
        """Current pause and stop checkpoint regular expressions."""
        return types.SimpleNamespace(
            pause=self.evt_checkpoints.data.pause, stop=self.evt_checkpoints.data.stop
        )

    def assert_state(self, action: str, states: Sequence[ScriptState]) -> None:
        """Raise `ExpectedError` unless the state is one of ``states``."""
        if self._state not in states:
            allowed = ", ".join(s.name for s in states)
            raise ExpectedError(f"Cannot {action}: state is {self._state.name}, must be {allowed}")

    async def set_state(
        self,
        state: ScriptState | None = None,
        reason: str | None = None,
        keep_old_reason: bool = False,
        last_checkpoint: str | None = None,
    ) -> None:
        """Change state fields and write the ``state`` event.

        Parameters
        ----------
        state : `ScriptState`, optional
            New state; None keeps the current one.
        reason : `str`, optional
            Why; None keeps the current reason.
        keep_old_reason : `bool`, optional
            Append ``reason`` to the current reason instead of replacing it?
        last_checkpoint : `str`, optional
            Name of the checkpoint just reached.
        """
        if state is not None:
            self._state = ScriptState(state)
            self.timestamps[self._state] = current_tai()
        if reason is not None:
            self._reason = f"{self._reason}; {reason}" if keep_old_reason and self._reason else reason
        if last_checkpoint is not None:
            self._last_checkpoint = last_checkpoint
        await self.flush_log()
        await self.evt_state.set_write(
            force_output=True,
            state=int(self._state),
            reason=self._reason,
            groupId=self.group_id,
            lastCheckpoint=self._last_checkpoint,
            numCheckpoints=self._num_checkpoints,
            blockId=self._block_id,
            executionId=self._execution_id,
        )

    # --- life cycle ------------------------------------------------------

    async def start(self) -> None:
        """Write the description, start the heartbeat, go UNCONFIGURED."""
        await super().start()
        remotes = sorted(f"{s.name}:{s.index}" for s in self.domain.salinfo_set if s is not self.salinfo)
        await self.evt_description.set_write(
            classname=type(self).__name__, description=self.descr, help=self.help, remotes=",".join(remotes)
        )
        await self.evt_checkpoints.set_write(pause="", stop="")
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.set_state(ScriptState.UNCONFIGURED)

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.evt_heartbeat.write()
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def checkpoint(self, name: str = "") -> None:
        """Mark a named point of `run`: count it, pause or stop if asked.

        Pauses (state PAUSED until ``resume``) if ``name`` fully matches the
        pause regular expression; stops (state STOPPING, then the run is
        cancelled) if it fully matches the stop expression. An empty
        expression never matches.

        Raises
        ------
        RuntimeError
            If not called while RUNNING.
        asyncio.CancelledError
            If the checkpoint matches the stop expression.
        """
        if self._state != ScriptState.RUNNING:
            raise RuntimeError(f"checkpoint({name!r}) called in state {self._state.name}; must be RUNNING")
        self._num_checkpoints += 1
        if self._stop_regex is not None and self._stop_regex.fullmatch(name):
            await self.set_state(
                ScriptState.STOPPING, last_checkpoint=name, reason=f"Stop at checkpoint {name!r}"
            )
            raise asyncio.CancelledError()
        if self._pause_regex is not None and self._pause_regex.fullmatch(name):
            self._pause_future = asyncio.get_running_loop().create_future()
            await self.set_state(ScriptState.PAUSED, last_checkpoint=name)
            await self._pause_future
            await self.set_state(ScriptState.RUNNING)
        else:
            await self.set_state(last_checkpoint=name)

    # --- commands --------------------------------------------------------

    async def do_configure(self, data: BaseMessage) -> None:
        """Parse, validate and apply the configuration; go CONFIGURED.

        Any problem sends the script to CONFIGURE_FAILED, fails the command
        with a message that names the problem, and the script exits.
        """
        self.assert_state("configure", [ScriptState.UNCONFIGURED])
        try:
            config, lines = parse_config_yaml(data.config)
            config.pop("metadata", None)
            schema = self.get_schema()
            if schema is None:
                if config:
                    raise ConfigError(f"{type(self).__name__} takes no configuration; got {config}")
            else:
                config = DefaultingValidator(schema).validate(config, lines)
            self.config = types.SimpleNamespace(**config)
            await self.configure(self.config)
            await self._set_checkpoints(data.pauseCheckpoint, data.stopCheckpoint)
            if data.logLevel != 0:
                self.log.setLevel(data.logLevel)
                await self.put_log_level()
            self._block_id = data.blockId
            self._execution_id = data.executionId
            metadata = types.SimpleNamespace(**self._metadata_defaults())
            self.set_metadata(metadata)
            await self.evt_metadata.set_write(force_output=True, **vars(metadata))
        except Exception as e:
            if isinstance(e, ConfigError):
                reason = f"Config failed: {e}"
            else:
                # A bug, not the operator's fault: keep the traceback in the
                # log and still say what happened.
                self.log.exception("Config failed")
                reason = f"Config failed: {type(e).__name__}: {e}"
            await self.set_state(ScriptState.CONFIGURE_FAILED, reason=reason)
            asyncio.get_running_loop().call_soon(self._schedule_close)
            raise ExpectedError(reason) from e
        await self.set_state(ScriptState.CONFIGURED)

    def _metadata_defaults(self) -> dict[str, Any]:
        names = self.salinfo.interface.events["metadata"].field_names
        return {name: getattr(self.evt_metadata.data, name) for name in names}

    async def do_setGroupId(self, data: BaseMessage) -> None:
        """Set (or clear, with a blank id) the group id; only in CONFIGURED."""
        self.assert_state("set group id", [ScriptState.CONFIGURED])
        self.group_id = data.groupId
        await self.set_state()

    async def do_setCheckpoints(self, data: BaseMessage) -> None:
        """Set the pause and stop checkpoint regular expressions."""
        if self._state in _TERMINAL:
            raise ExpectedError(f"Cannot set checkpoints: state is {self._state.name}")
        await self._set_checkpoints(data.pause, data.stop)

    async def _set_checkpoints(self, pause: str, stop: str) -> None:
        try:
            pause_regex = re.compile(pause) if pause else None
            stop_regex = re.compile(stop) if stop else None
        except re.error as e:
            raise ExpectedError(f"Invalid checkpoint regular expression: {e}") from e
        self._pause_regex, self._stop_regex = pause_regex, stop_regex
        await self.evt_checkpoints.set_write(pause=pause, stop=stop)

    async def do_run(self, data: BaseMessage) -> None:
        """Run the script; the command ends when the script has finished."""
        self.assert_state("run", [ScriptState.CONFIGURED])
        if not self.group_id.strip():
            raise ExpectedError("Cannot run: group id not set (send setGroupId first)")
        await self.set_state(ScriptState.RUNNING)
        self._run_task = asyncio.create_task(self.run())
        try:
            await self._run_task
            await self.set_state(ScriptState.ENDING)
        except asyncio.CancelledError:
            if self._state != ScriptState.STOPPING:
                await self.set_state(ScriptState.STOPPING)
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception("Error in run")
            await self.set_state(ScriptState.FAILING, reason=f"Error in run: {e}")
        await self._exit()

    async def do_resume(self, data: BaseMessage) -> None:
        """Resume a paused script."""
        self.assert_state("resume", [ScriptState.PAUSED])
        if self._pause_future is not None and not self._pause_future.done():
            self._pause_future.set_result(None)

    async def do_stop(self, data: BaseMessage) -> None:
        """Stop the script: cancel `run` if running, then clean up and exit."""
        if self._state in _TERMINAL or self._state in (ScriptState.STOPPING, ScriptState.ENDING):
            return
        if self._run_task is not None and not self._run_task.done():
            await self.set_state(ScriptState.STOPPING, reason="Stopped by command")
            self._run_task.cancel()
            return
        await self.set_state(ScriptState.STOPPING, reason="Stopped by command")
        await self._exit()

    async def _exit(self) -> None:
        """Run cleanup, write the final state and schedule closing."""
        if self._is_exiting:
            return
        self._is_exiting = True
        try:
            if self._run_task is not None:
                await self.cleanup()
        except Exception as e:
            self.log.exception("Error in cleanup")
            if self._state != ScriptState.FAILING:
                await self.set_state(
                    ScriptState.FAILING, reason=f"Error in cleanup: {e}", keep_old_reason=True
                )
            else:
                await self.set_state(reason=f"Error in cleanup: {e}", keep_old_reason=True)
        final = {
            ScriptState.ENDING: ScriptState.DONE,
            ScriptState.STOPPING: ScriptState.STOPPED,
            ScriptState.FAILING: ScriptState.FAILED,
        }.get(self._state, ScriptState.FAILED)
        await self.set_state(final)
        asyncio.get_running_loop().call_soon(self._schedule_close)

    def _schedule_close(self) -> None:
        # Close after the current command has been acknowledged.
        self._close_task = asyncio.ensure_future(self.close())

    async def close_tasks(self) -> None:
        """Stop the heartbeat and cancel a running `run`."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()
        if self._pause_future is not None and not self._pause_future.done():
            self._pause_future.cancel()
        await super().close_tasks()

    # --- command line ----------------------------------------------------

    @classmethod
    def exit_code(cls, state: ScriptState) -> int:
        """Process exit code for a final state: 0 for DONE or STOPPED, else 1."""
        return 0 if state in (ScriptState.DONE, ScriptState.STOPPED) else 1

    @classmethod
    async def amain(cls, argv: Sequence[str] | None = None) -> int:
        """Run the script as a component, or print its schema.

        ``script.py INDEX`` runs the script with SAL index ``INDEX`` until it
        reaches a final state; ``script.py 0 --schema`` prints the
        configuration schema as YAML and exits.

        Returns
        -------
        exit_code : `int`
            0 for DONE or STOPPED (or the schema printed), 1 otherwise.
        """
        parser = argparse.ArgumentParser(description=cls.__doc__ and cls.__doc__.splitlines()[0])
        parser.add_argument("index", type=int, help="SAL index of the script (0 with --schema)")
        parser.add_argument("--schema", action="store_true", help="print the configuration schema and exit")
        args = parser.parse_args(argv)
        if args.schema:
            schema = cls.get_schema()
            if schema is not None:
                sys.stdout.write(yaml.safe_dump(schema, sort_keys=False))
            return 0
        if args.index == 0:
            parser.error("index must be non-zero to run a script (0 is only for --schema)")
        script = cls(index=args.index)  # type: ignore[call-arg]
        await script.start_task
        await script.done_task
        return cls.exit_code(script._state)

    @classmethod
    def main(cls, argv: Sequence[str] | None = None) -> None:
        """Entry point of a script executable: run `amain` and exit with its code."""
        sys.exit(asyncio.run(cls.amain(argv)))
