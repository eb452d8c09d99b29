"""BaseScript: a SAL script with the standard script state machine, as in salobj."""

from __future__ import annotations

__all__ = ["HEARTBEAT_INTERVAL", "BaseScript"]

import abc
import argparse
import asyncio
import re
import signal
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

import yaml

from ..resources import schemas_dir
from ..sal import (
    BaseMessage,
    Controller,
    Domain,
    ExpectedError,
    MetadataCoordSys,
    MetadataDome,
    MetadataRotSys,
    ScriptState,
)
from ..utils import current_tai
from .config_errors import ConfigError
from .validator import DefaultingValidator
from .yaml_config import collect_config_yaml, collect_problems

#: Interval between heartbeats (s), as in salobj.
HEARTBEAT_INTERVAL = 5.0

#: Time (s) the command that ends a script gets to be acknowledged before the script closes.
_ACK_BEFORE_CLOSE_TIMEOUT = 5.0

_FINAL_STATES = {
    ScriptState.ENDING: ScriptState.DONE,
    ScriptState.STOPPING: ScriptState.STOPPED,
    ScriptState.FAILING: ScriptState.FAILED,
    ScriptState.CONFIGURE_FAILED: ScriptState.CONFIGURE_FAILED,
}


class BaseScript(Controller, abc.ABC):
    """Base class of SAL scripts (salobj's ``BaseScript``).

    A script is a ``Script`` component whose index is its SAL index. The
    ScriptQueue (or ``run_script``) configures it, sets a group id and runs
    it; the script then goes through these states::

        UNCONFIGURED -configure-> CONFIGURED -run-> RUNNING <-> PAUSED
        RUNNING -> ENDING -> DONE            (run returned)
        RUNNING -> STOPPING -> STOPPED       (stop command or stop checkpoint)
        RUNNING -> FAILING -> FAILED         (run raised)
        UNCONFIGURED -> CONFIGURE_FAILED     (bad configuration)

    `cleanup` runs after `run` has started, whatever the outcome, before the
    final state; if it fails the state goes to FAILED ("failed in _exit:
    ...") and `done_task` raises. After a final state the script closes
    (its process exits).

    Subclasses implement `get_schema` (class method), `configure`,
    `set_metadata` and `run`, and call `checkpoint` at named points of `run`.
    Executables end with ``asyncio.run(MyScript.amain())``.

    Parameters
    ----------
    index : `int`
        SAL index of the script; must be non-zero.
    descr : `str`
        Short description.
    help : `str`, optional
        Longer help (Markdown).
    domain : `Domain`, optional
        Domain to share (an extension; made if not given).

    Raises
    ------
    ValueError
        If ``index`` is 0 (that would answer every script's commands).

    Attributes
    ----------
    config_validator : `DefaultingValidator` or None
        Validates the configuration (None if there is no schema).
    config : `types.SimpleNamespace`
        The validated configuration, with defaults (set before `configure`;
        empty until then).
    num_checkpoints : `int`
        Checkpoints seen.
    last_checkpoint : `str`
        Name of the last checkpoint seen.
    timestamps : `dict` [`ScriptState`, `float`]
        TAI time each state was reached.
    final_state_delay : `float`
        Kept for salobj compatibility (s).
    """

    def __init__(self, index: int, descr: str, help: str = "", *, domain: Domain | None = None) -> None:
        if index == 0:
            raise ValueError("index must be nonzero")
        schema = self.get_schema()
        self.config_validator: DefaultingValidator | None = (
            None if schema is None else DefaultingValidator(schema=schema)
        )
        self.config = types.SimpleNamespace()
        # The options the operator gave (the rest took their defaults).
        self.given_options: frozenset[str] = frozenset()
        self._run_task: asyncio.Task[None] | None = None
        self._pause_future: asyncio.Future[None] | None = None
        self._sub_group_id = 0
        self._is_exiting = False
        self.final_state_delay = 0.3
        self.num_checkpoints = 0
        self.last_checkpoint = ""
        self.timestamps: dict[ScriptState, float] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        super().__init__("Script", index, do_callbacks=True, domain=domain)
        self.evt_description.set(classname=type(self).__name__, description=str(descr), help=str(help))

    # --- what subclasses provide ---------------------------------------

    @classmethod
    @abc.abstractmethod
    def get_schema(cls) -> dict[str, Any] | None:
        """Return the configuration JSON schema, or None if not configurable.

        Give defaults wherever they make sense. Without a schema the
        ``configure`` command's ``config`` must be empty.
        """

    @abc.abstractmethod
    async def configure(self, config: types.SimpleNamespace) -> None:
        """Configure the script from a validated configuration with defaults.

        Raise (ideally `ConfigError`) with a message naming the option if
        the configuration cannot be used.
        """

    @abc.abstractmethod
    def set_metadata(self, metadata: Any) -> None:
        """Fill in ``metadata``, the fields of the ``metadata`` event.

        At least ``duration`` (s), which LOVE uses to show progress.
        Attributes that are not fields of the event are ignored (with a
        warning in the log).
        """

    @abc.abstractmethod
    async def run(self) -> None:
        """Do the work. Call `checkpoint` at named points; raise on error."""

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
        """The ``state`` event data (``state``, ``reason``, ``groupId``...)."""
        return self.evt_state.data

    @property
    def state_name(self) -> str:
        """Name of the current state (``UNKNOWN(n)`` for a value that is not a state)."""
        try:
            return ScriptState(self.state.state).name
        except ValueError:
            return f"UNKNOWN({self.state.state})"

    @property
    def group_id(self) -> str:
        """The group id, or "" if not set."""
        return str(self.evt_state.data.groupId)

    @property
    def obs_id(self) -> str:
        """The block id, or "" if not set."""
        return str(self.evt_state.data.blockId)

    @obs_id.setter
    def obs_id(self, value: str) -> None:
        message = (
            "Setting the value of obs_id attribute will be deprecated; "
            f"it is set by BaseScript. The received {value=} will be ignored."
        )
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        self.log.warning(message)

    @property
    def checkpoints(self) -> BaseMessage:
        """The ``checkpoints`` event data: ``pause`` and ``stop`` regular expressions."""
        return self.evt_checkpoints.data

    def assert_state(self, action: str, states: Sequence[ScriptState]) -> None:
        """Raise `ExpectedError` if the script is exiting or the state is not in ``states``."""
        if self._is_exiting:
            raise ExpectedError(f"Cannot {action}: script is exiting")
        if self.state.state not in states:
            allowed = ", ".join(s.name for s in states)
            raise ExpectedError(f"Cannot {action}: state={self.state_name} instead of {allowed}")

    async def set_state(
        self,
        state: ScriptState | int | None = None,
        reason: str | None = None,
        keep_old_reason: bool = False,
        force_output: bool = False,
    ) -> None:
        """Change state fields and write the ``state`` event if anything changed.

        ``lastCheckpoint`` and ``numCheckpoints`` come from `last_checkpoint`
        and `num_checkpoints`. Log messages logged so far are written first.

        Parameters
        ----------
        state : `ScriptState`, optional
            New state; None keeps the current one.
        reason : `str`, optional
            Why; None keeps the current reason.
        keep_old_reason : `bool`, optional
            Append ``reason`` (after "; ") to the current reason?
        force_output : `bool`, optional
            Write even if nothing changed?
        """
        if state is not None:
            state = ScriptState(state)
            self.timestamps[state] = current_tai()
        if keep_old_reason and reason is not None:
            old = self.evt_state.data.reason
            reason = old + ("; " if old else "") + reason
        await self.flush_log()
        await self.evt_state.set_write(
            state=state,
            reason=reason,
            lastCheckpoint=self.last_checkpoint,
            numCheckpoints=self.num_checkpoints,
            force_output=force_output,
        )

    def next_supplemented_group_id(self) -> str:
        """Return ``<group id>#<n>``, n = 1, 2, ... (reset by ``setGroupId``).

        Raises
        ------
        RuntimeError
            If there is no group id.
        """
        if not self.group_id:
            raise RuntimeError("No group ID")
        self._sub_group_id += 1
        return f"{self.group_id}#{self._sub_group_id}"

    # --- life cycle ------------------------------------------------------

    async def start(self) -> None:
        """Start the heartbeat, wait for the Remotes, go UNCONFIGURED, describe the script."""
        await super().start()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        remote_names = set()
        start_tasks = []
        for salinfo in self.domain.salinfo_set:
            if salinfo is self.salinfo:
                continue
            remote_names.add(f"{salinfo.name}:{salinfo.index}")
            if salinfo.start_called:
                start_tasks.append(salinfo.start_task)
        await asyncio.gather(*start_tasks, return_exceptions=True)
        await self.set_state(ScriptState.UNCONFIGURED)
        await self.evt_description.set_write(remotes=",".join(sorted(remote_names)), force_output=True)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self.evt_heartbeat.write()
            except Exception:
                self.log.exception("Heartbeat output failed")

    async def checkpoint(self, name: str = "") -> None:
        """Mark a point of `run` where the script may pause or stop.

        Counts the checkpoint and records its name. If ``name`` fully
        matches the stop expression the script stops; if it matches the
        pause expression the script is PAUSED until ``resume``. As in
        salobj an empty expression matches an empty name: always name
        checkpoints.

        Raises
        ------
        RuntimeError
            If not called from `run` (the state is not RUNNING).
        asyncio.CancelledError
            If the checkpoint matches the stop expression.
        """
        if self.state.state != ScriptState.RUNNING:
            raise RuntimeError(
                f"checkpoint error: state={self.state_name} instead of RUNNING; "
                "did you call checkpoint from somewhere other than `run`?"
            )
        if self._run_task is None:
            raise RuntimeError("checkpoint error: state is RUNNING but no run_task")
        if self._run_task.done():
            raise RuntimeError("checkpoint error: state is RUNNING but run_task is done")
        self.num_checkpoints += 1
        self.last_checkpoint = name
        if re.fullmatch(self.checkpoints.stop, name):
            await self.set_state(ScriptState.STOPPING)
            raise asyncio.CancelledError(
                f"stop by request: checkpoint {name} matches {self.checkpoints.stop}"
            )
        if re.fullmatch(self.checkpoints.pause, name):
            self._pause_future = asyncio.get_running_loop().create_future()
            await self.set_state(ScriptState.PAUSED)
            await self._pause_future
            await self.set_state(ScriptState.RUNNING)
        else:
            await self._report_checkpoint()

    async def _report_checkpoint(self) -> None:
        """Write the state of a passed checkpoint; a stop meanwhile reaches the code after it.

        Unlike salobj (which sleeps 1 ms after the write), a stop that
        arrives while the checkpoint is being reported (a reader may see
        the report before the write returns) cancels the code after the
        checkpoint, not the report.
        """
        report = asyncio.ensure_future(self.set_state(force_output=True))
        try:
            await asyncio.shield(report)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is None or self._run_task is not current:
                raise
            current.uncancel()
            await report
            asyncio.get_running_loop().call_soon(current.cancel)

    # --- commands --------------------------------------------------------

    async def do_configure(self, data: BaseMessage) -> None:
        """Parse, validate and apply the configuration; go CONFIGURED.

        A configuration that cannot be used sends the script to
        CONFIGURE_FAILED with reason ``config(<yaml>) failed: <error>``,
        fails the command with the same message, and the script exits.
        The YAML is read strictly (duplicated keys, ``key=value`` lines,
        anchors and tags are errors) and errors name the line and option.
        """
        self.assert_state("configure", [ScriptState.UNCONFIGURED])
        config_yaml: str = data.config
        try:
            if self.config_validator is None:
                if config_yaml:
                    raise RuntimeError(
                        f"This script has no configuration so config={config_yaml} must be empty."
                    )
                config = types.SimpleNamespace()
            else:
                # Every slip, schema problem and check of configure in one report.
                user_config, lines, slips = collect_config_yaml(config_yaml)
                user_config.pop("metadata", None)
                self.given_options = frozenset(user_config)
                with collect_problems(slips, lines):
                    config = types.SimpleNamespace(**self.config_validator.validate(user_config, lines))
                    self.config = config
                    await self.configure(config)
            if self.config_validator is None:
                self.config = config
                await self.configure(config)
        except Exception as e:
            errmsg = f"config({config_yaml}) failed"
            if isinstance(e, ConfigError):
                # The operator's mistake, named in the message: no traceback.
                self.log.error("%s: %s", errmsg, e)
            else:
                self.log.exception(errmsg)
            await self.set_state(ScriptState.CONFIGURE_FAILED, reason=f"{errmsg}: {e}")
            await self._exit()
            raise ExpectedError(f"{errmsg}: {e}") from e
        await self._set_checkpoints(pause=data.pauseCheckpoint, stop=data.stopCheckpoint)
        if data.logLevel != 0:
            self.log.setLevel(data.logLevel)
            await self.put_log_level()
        self.evt_metadata.set(
            coordinateSystem=MetadataCoordSys.NONE,
            rotationSystem=MetadataRotSys.NONE,
            filters="",
            dome=MetadataDome.EITHER,
            duration=0.0,
        )
        self._apply_metadata()
        self.evt_state.set(blockId=data.blockId, executionId=data.executionId)
        await self.evt_metadata.write()
        await self.set_state(ScriptState.CONFIGURED)
        await asyncio.sleep(0.001)

    def _apply_metadata(self) -> None:
        """Call `set_metadata` and copy what it set into the ``metadata`` event."""
        metadata = types.SimpleNamespace(**self.evt_metadata.data.get_vars())
        self.set_metadata(metadata)
        fields = set(self.evt_metadata.data.get_vars())
        unknown = sorted(set(vars(metadata)) - fields)
        if unknown:
            self.log.warning("Ignoring metadata %s: not fields of the metadata event", unknown)
        self.evt_metadata.set(**{name: value for name, value in vars(metadata).items() if name in fields})

    async def do_run(self, data: BaseMessage) -> None:
        """Run the script; the command ends when `run` has ended."""
        self.assert_state("run", [ScriptState.CONFIGURED])
        if not self.group_id:
            raise ExpectedError("Group ID not set")
        try:
            await self.set_state(ScriptState.RUNNING)
            self._run_task = asyncio.create_task(self.run())
            await self._run_task
            await self.set_state(ScriptState.ENDING)
        except asyncio.CancelledError:
            if self.state.state != ScriptState.STOPPING:
                await self.set_state(ScriptState.STOPPING)
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception("Error in run")
            await self.set_state(ScriptState.FAILING, reason=f"Error in run: {e}")
        await asyncio.sleep(0.001)
        await self._exit()

    async def do_resume(self, data: BaseMessage) -> None:
        """Resume a paused script."""
        self.assert_state("resume", [ScriptState.PAUSED])
        if self._pause_future is not None and not self._pause_future.done():
            self._pause_future.set_result(None)

    async def do_setCheckpoints(self, data: BaseMessage) -> None:
        """Set the pause and stop checkpoint expressions (deprecated: use ``configure``)."""
        self.assert_state(
            "setCheckpoints",
            [ScriptState.UNCONFIGURED, ScriptState.CONFIGURED, ScriptState.RUNNING, ScriptState.PAUSED],
        )
        await self._set_checkpoints(pause=data.pause, stop=data.stop)

    async def do_setGroupId(self, data: BaseMessage) -> None:
        """Set (or clear, with "") the group id; only in CONFIGURED."""
        self.assert_state("setGroupId", [ScriptState.CONFIGURED])
        await self.evt_state.set_write(groupId=data.groupId, force_output=True)
        self._sub_group_id = 0

    async def do_stop(self, data: BaseMessage) -> None:
        """Stop the script: cancel `run` if running, else go STOPPING and exit. No-op if exiting."""
        if self._is_exiting:
            return
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()
        else:
            await self.set_state(ScriptState.STOPPING)
            await self._exit()

    async def _set_checkpoints(self, *, pause: str, stop: str) -> None:
        for kind, pattern in (("pause", pause), ("stop", stop)):
            try:
                re.compile(pattern)
            except Exception as e:
                raise ExpectedError(f"{kind}={pattern!r} not a valid regex: {e}") from e
        await self.evt_checkpoints.set_write(pause=pause, stop=stop, force_output=True)

    async def _exit(self) -> None:
        """Run cleanup (if `run` started), write the final state and close."""
        if self._is_exiting:
            return
        self._is_exiting = True
        try:
            if self._run_task is not None:
                await self.cleanup()
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            reason = None
            final_state = _FINAL_STATES.get(self.state.state)
            if final_state is None:
                reason = f"unexpected state for _exit {self.state_name}"
                final_state = ScriptState.FAILED
            self.log.debug("Setting final state to %r", final_state)
            await self.set_state(final_state, reason=reason, keep_old_reason=True)
            self._close_after_ack()
        except Exception as e:
            if not isinstance(e, ExpectedError):
                self.log.exception("Error in run")
            await self.set_state(ScriptState.FAILED, reason=f"failed in _exit: {e}", keep_old_reason=True)
            self._close_after_ack(exception=e)

    def _close_after_ack(self, exception: BaseException | None = None) -> None:
        """Close once the command being handled (if any) has been acknowledged."""
        current = asyncio.current_task()
        command_task = current if current is not None and self._is_command_task(current) else None

        async def close() -> None:
            if command_task is not None:
                await asyncio.wait([command_task], timeout=_ACK_BEFORE_CLOSE_TIMEOUT)
            await self.close(exception=exception)

        self._close_task = asyncio.create_task(close())

    async def close_tasks(self) -> None:
        """Stop the heartbeat, a running `run` and a pause."""
        self._is_exiting = True
        await super().close_tasks()
        for task in (self._heartbeat_task, self._run_task, self._pause_future):
            if task is not None:
                task.cancel()

    # --- command line ----------------------------------------------------

    @classmethod
    def exit_code(cls, state: ScriptState) -> int:
        """Process exit code for a final state: 0 for DONE or STOPPED, else 1."""
        return 0 if state in (ScriptState.DONE, ScriptState.STOPPED) else 1

    @classmethod
    def make_from_cmd_line(cls, **kwargs: Any) -> BaseScript | None:
        """Make the script from the command line (``sys.argv``): ``INDEX [--schema]``.

        With ``--schema``, print the configuration schema as YAML and
        return None.

        Parameters
        ----------
        **kwargs
            More constructor arguments; not ``index``.

        Raises
        ------
        RuntimeError
            If ``kwargs`` has ``index``.
        """
        if "index" in kwargs:
            raise RuntimeError(f"index must not appear in kwargs={kwargs}")
        parser = argparse.ArgumentParser(f"Run {cls.__name__} from the command line")
        parser.add_argument("index", type=int, help="Script SAL index; must be unique among running scripts")
        parser.add_argument(
            "--schema",
            action="store_true",
            help="print the configuration schema and quit (the index is then ignored)",
        )
        args = parser.parse_args()
        if args.schema:
            schema = cls.get_schema()
            if schema is not None:
                print(yaml.safe_dump(schema, sort_keys=False))
            return None
        if args.index == 0:
            parser.error("index must be non-zero to run a script (0 is only for --schema)")
        return cls(index=args.index, **kwargs)

    @classmethod
    async def amain(cls, **kwargs: Any) -> None:
        """Run the script from the command line; exit 1 unless it ends DONE or STOPPED.

        The executable idiom is ``asyncio.run(MyScript.amain())``. SIGINT
        and SIGTERM end the script (exit code 1).

        Parameters
        ----------
        **kwargs
            More constructor arguments; not ``index``.
        """
        script = cls.make_from_cmd_line(**kwargs)
        if script is None:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, script.signal_handler)
        try:
            await script.done_task
            await script.close()
        except Exception as e:
            if script.state.state != ScriptState.FAILED:
                warnings.warn(
                    f"Script {cls.__name__} failed in cleanup with {e!r}, "
                    f"but final state {script.state.state!r} != FAILED",
                    RuntimeWarning,
                    stacklevel=2,
                )
            sys.exit(1)
        if script.state.state not in (ScriptState.DONE, ScriptState.STOPPED):
            sys.exit(1)

    @classmethod
    def main(cls) -> None:
        """Entry point of an executable: ``asyncio.run(cls.amain())``."""
        asyncio.run(cls.amain())

    def signal_handler(self) -> None:
        """Handle SIGINT and SIGTERM: end `done_task` (``amain`` then closes the script)."""
        self.log.info("Handling termination signal.")
        if not self.done_task.done():
            self.done_task.set_result(None)
