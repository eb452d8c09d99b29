"""BaseCsc: a Commandable SAL Component with the standard state machine."""

from __future__ import annotations

__all__ = ["BaseCsc"]

import argparse
import asyncio
import enum
import signal
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..version import __version__
from .controller import Controller
from .csc_utils import make_state_transition_dict
from .domain import Domain
from .enums import State
from .errors import ExpectedError
from .messages import BaseMessage
from .remote import Remote

#: Interval between heartbeats (s).
HEARTBEAT_INTERVAL = 1.0
#: Heartbeats a starting CSC reads to detect a duplicate (``check_if_duplicate``).
DUPLICATE_HEARTBEAT_INTERVAL_FACTOR = 5


class BaseCsc(Controller):
    """A CSC: summary state machine, generic commands and heartbeat.

    Summary states and the generic commands that move between them::

        STANDBY --start--> DISABLED --enable--> ENABLED
        STANDBY <-standby- DISABLED <-disable-- ENABLED
        FAULT --standby--> STANDBY --exitControl--> OFFLINE (and quit)

    A transition command runs ``begin_<cmd>``, changes the state, runs
    ``end_<cmd>`` (if that fails the state reverts and the command fails),
    calls `handle_summary_state`, then writes ``summaryState``. Subclasses
    implement ``do_<command>`` for their own commands (call `assert_enabled`
    first where the command needs ENABLED) and override the ``begin_`` /
    ``end_`` hooks and `handle_summary_state` as needed.

    The CSC starts in `default_initial_state` (STANDBY) and, if
    ``initial_state`` differs, runs the transition commands (hooks
    included) to reach it, as salobj does.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int`, optional
        SAL index (indexed components only).
    check_if_duplicate : `bool`, optional
        At start, look for heartbeats of another instance and quit if one
        is found? `amain` sets it.
    initial_state : `State` or `int`, optional
        State to reach after starting; `default_initial_state` if None.
        FAULT is not allowed.
    override : `str`, optional
        ``configurationOverride`` of the ``start`` command run to reach
        an ``initial_state`` of DISABLED or ENABLED.
    simulation_mode : `int`, optional
        Simulation mode; must be in `valid_simulation_modes`.
    allow_missing_callbacks, extra_commands
        See `Controller`.
    domain : `Domain`, optional
        Domain to share (an extension; see `Controller`).
    **kwargs
        salobj's Kafka options: accepted and ignored.

    Raises
    ------
    ValueError
        If ``initial_state`` is FAULT or not a state, or ``simulation_mode``
        is not valid.
    RuntimeError
        If the class has no ``version`` or ``valid_simulation_modes`` is None.

    Attributes
    ----------
    default_initial_state : `State`
        Class attribute: the state the CSC starts in (STANDBY).
    enable_cmdline_state : `bool`
        Class attribute: add ``--state`` to the command line?
    valid_simulation_modes : `list` [`int`]
        Class attribute: allowed simulation modes (default ``(0,)``).
    simulation_help : `str` or None
        Class attribute: help of ``--simulate``.
    version : `str`
        Class attribute: the ``cscVersion`` of ``softwareVersions``.
    heartbeat_interval : `float`
        Seconds between heartbeats.
    """

    default_initial_state: State = State.STANDBY
    enable_cmdline_state = False
    valid_simulation_modes: Sequence[int] = (0,)
    simulation_help: str | None = None
    #: Software version written in ``softwareVersions``.
    version: str = __version__

    def __init__(
        self,
        name: str,
        index: int | None = None,
        check_if_duplicate: bool = False,
        initial_state: State | int | None = None,
        override: str = "",
        simulation_mode: int = 0,
        allow_missing_callbacks: bool = False,
        extra_commands: Iterable[str] = (),
        *,
        domain: Domain | None = None,
        **kwargs: Any,
    ) -> None:
        if not hasattr(self, "version"):
            raise RuntimeError("Class variable `version` is required")
        if self.valid_simulation_modes is None:
            raise RuntimeError("Class variable `valid_simulation_modes` cannot be None")
        if initial_state is None:
            initial_state = self.default_initial_state
        try:
            initial_state = State(initial_state)
        except ValueError:
            raise ValueError(f"initial_state={initial_state!r} is not a State") from None
        if initial_state == State.FAULT:
            raise ValueError("initial_state cannot be FAULT")
        if simulation_mode not in self.valid_simulation_modes:
            raise ValueError(
                f"simulation_mode={simulation_mode} "
                f"not in valid_simulation_modes={self.valid_simulation_modes}"
            )
        self.check_if_duplicate = check_if_duplicate
        self._override = override
        self._summary_state = State(self.default_initial_state)
        self._initial_state = initial_state
        self._faulting = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.heartbeat_interval = HEARTBEAT_INTERVAL
        super().__init__(
            name,
            index,
            do_callbacks=True,
            allow_missing_callbacks=allow_missing_callbacks,
            extra_commands=extra_commands,
            domain=domain,
            **kwargs,
        )
        self.evt_simulationMode.set(mode=int(simulation_mode))
        self.evt_softwareVersions.set(salVersion=__version__, xmlVersion=__version__, cscVersion=self.version)

    def _optional_commands(self) -> set[str]:
        # ts_xml gives the cameras enterControl, which only CSCs that start
        # OFFLINE implement; without do_enterControl it is refused.
        return {"enterControl"}

    @property
    def summary_state(self) -> State:
        """The current summary state."""
        return self._summary_state

    @property
    def disabled_or_enabled(self) -> bool:
        """Is the summary state DISABLED or ENABLED?"""
        return self._summary_state in (State.DISABLED, State.ENABLED)

    @property
    def simulation_mode(self) -> int:
        """The simulation mode (0: normal operation)."""
        return int(self.evt_simulationMode.data.mode)

    # --- start -------------------------------------------------------------------

    async def start(self) -> None:
        """Start: check for a duplicate, start the heartbeat, write the versions."""
        await super().start()
        if self.check_if_duplicate:
            descr = f"{self.salinfo.name_index} with origin={self.domain.origin}"
            self.log.info("%s checking for an already-running instance.", descr)
            duplicate_origin = await self.check_for_duplicate_heartbeat()
            if duplicate_origin:
                raise ExpectedError(
                    f"{descr} quitting: found another instance with origin={duplicate_origin}."
                )
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.set_simulation_mode(self.simulation_mode)
        await self.evt_softwareVersions.write()

    async def start_phase2(self) -> None:
        """Report the default initial state, then run the commands that reach ``initial_state``."""
        await super().start_phase2()
        await self.handle_summary_state()
        await self._report_summary_state()
        command = None
        if self._initial_state != self.summary_state:
            path = make_state_transition_dict()[self.summary_state, self._initial_state]
            try:
                for command, _ in path:
                    data = getattr(self, f"cmd_{command}").DataType()
                    if command == "start":
                        data.configurationOverride = self._override
                    self.log.info("Executing %s command during startup", command)
                    await getattr(self, f"do_{command}")(data)
            except Exception:
                self.log.exception("Failed in start on state transition command %s; continuing.", command)

    async def check_for_duplicate_heartbeat(
        self, num_messages: int = DUPLICATE_HEARTBEAT_INTERVAL_FACTOR
    ) -> int:
        """Return the ``private_origin`` of another instance's heartbeat, or 0 if none is seen.

        Parameters
        ----------
        num_messages : `int`, optional
            Must be positive (kept for salobj compatibility).
        """
        if num_messages < 1:
            raise ValueError(f"{num_messages=} must be positive")
        async with Remote(
            self.domain,
            self.salinfo.name,
            self.salinfo.index,
            readonly=True,
            include=["heartbeat"],
            evt_max_history=0,
        ) as remote:
            try:
                data = await remote.evt_heartbeat.next(flush=True, timeout=self.heartbeat_interval * 3)
            except TimeoutError:
                return 0
            return int(data.private_origin)

    async def set_simulation_mode(self, simulation_mode: int) -> None:
        """Apply and report a simulation mode (see `implement_simulation_mode`)."""
        await self.implement_simulation_mode(simulation_mode)
        await self.evt_simulationMode.set_write(mode=simulation_mode, force_output=True)

    async def implement_simulation_mode(self, simulation_mode: int) -> None:
        """Go into or out of simulation mode; deprecated hook (see `valid_simulation_modes`)."""

    # --- state -------------------------------------------------------------------

    async def handle_summary_state(self) -> None:
        """React to a summary state change; called before each ``summaryState`` is written."""

    def assert_enabled(self, action: str = "") -> None:
        """Raise `ExpectedError` unless ENABLED.

        Parameters
        ----------
        action : `str`, optional
            What was refused, for the message.
        """
        if self._summary_state != State.ENABLED:
            what = f"{action} not allowed" if action else "Not allowed"
            why = f"in state {self._summary_state.name}; {self.salinfo.name} is not ENABLED"
            if self._summary_state == State.FAULT:
                error = self.evt_errorCode.data
                why += f" (errorCode={error.errorCode}, errorReport={error.errorReport!r})"
            raise ExpectedError(f"{what} {why}")

    async def fault(self, code: int | None, report: str, traceback: str = "") -> None:
        """Go to FAULT and report why (``errorCode``, a critical log message).

        Not re-entrant: a call while one is running does nothing.

        Parameters
        ----------
        code : `int` or None
            Error code; None writes no ``errorCode`` (deprecated).
        report : `str`
            Description of the problem.
        traceback : `str`, optional
            Traceback, if any.
        """
        if self._faulting:
            return
        self._faulting = True
        try:
            self._summary_state = State.FAULT
            if code is not None:
                try:
                    await self.evt_errorCode.set_write(
                        errorCode=code, errorReport=report, traceback=traceback, force_output=True
                    )
                except Exception:
                    self.log.exception("Failed to output errorCode: code=%r; report=%r", code, report)
                self.log.critical("Fault! errorCode=%s, errorReport=%r", code, report)
            try:
                await self._report_summary_state()
            except Exception:
                self.log.exception("_report_summary_state failed while going to FAULT")
                await self.evt_summaryState.set_write(summaryState=int(self._summary_state))
            await self.handle_summary_state()
        finally:
            self._faulting = False

    async def _report_summary_state(self) -> None:
        """Write ``summaryState``; outside FAULT also clear ``errorCode``."""
        await self.evt_summaryState.set_write(summaryState=int(self._summary_state))
        if self._summary_state != State.FAULT:
            await self.evt_errorCode.set_write(errorCode=0, errorReport="", traceback="")

    async def _do_change_state(
        self, data: BaseMessage, cmd_name: str, allowed_curr_states: Sequence[State], new_state: State
    ) -> None:
        curr_state = self._summary_state
        if curr_state not in allowed_curr_states:
            raise ExpectedError(f"{cmd_name} not allowed in state {curr_state.name}")
        try:
            await getattr(self, f"begin_{cmd_name}")(data)
        except ExpectedError as e:
            self.log.error("begin_%s failed; remaining in state %s: %s", cmd_name, curr_state.name, e)
            raise
        except Exception:
            self.log.exception("begin_%s failed; remaining in state %s", cmd_name, curr_state.name)
            raise
        self._summary_state = new_state
        try:
            await getattr(self, f"end_{cmd_name}")(data)
        except Exception as e:
            self._summary_state = curr_state
            if isinstance(e, ExpectedError):
                self.log.error("end_%s failed; reverting to state %s: %s", cmd_name, curr_state.name, e)
            else:
                self.log.exception("end_%s failed; reverting to state %s", cmd_name, curr_state.name)
            raise
        await self.handle_summary_state()
        await self._report_summary_state()

    async def do_start(self, data: BaseMessage) -> None:
        """Go from STANDBY to DISABLED."""
        await self._do_change_state(data, "start", [State.STANDBY], State.DISABLED)

    async def do_enable(self, data: BaseMessage) -> None:
        """Go from DISABLED to ENABLED."""
        await self._do_change_state(data, "enable", [State.DISABLED], State.ENABLED)

    async def do_disable(self, data: BaseMessage) -> None:
        """Go from ENABLED to DISABLED."""
        await self._do_change_state(data, "disable", [State.ENABLED], State.DISABLED)

    async def do_standby(self, data: BaseMessage) -> None:
        """Go from DISABLED or FAULT to STANDBY."""
        await self._do_change_state(data, "standby", [State.DISABLED, State.FAULT], State.STANDBY)

    async def do_exitControl(self, data: BaseMessage) -> None:
        """Go from STANDBY to OFFLINE, then close (after acknowledging)."""
        await self._do_change_state(data, "exitControl", [State.STANDBY], State.OFFLINE)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.close()))

    async def begin_start(self, data: BaseMessage) -> None:
        """Run before the state changes on ``start`` (a hook)."""

    async def begin_enable(self, data: BaseMessage) -> None:
        """Run before the state changes on ``enable`` (a hook)."""

    async def begin_disable(self, data: BaseMessage) -> None:
        """Run before the state changes on ``disable`` (a hook)."""

    async def begin_standby(self, data: BaseMessage) -> None:
        """Run before the state changes on ``standby`` (a hook)."""

    async def begin_exitControl(self, data: BaseMessage) -> None:
        """Run before the state changes on ``exitControl`` (a hook)."""

    async def end_start(self, data: BaseMessage) -> None:
        """Run after the state changes on ``start`` (a hook); raising reverts it."""

    async def end_enable(self, data: BaseMessage) -> None:
        """Run after the state changes on ``enable`` (a hook); raising reverts it."""

    async def end_disable(self, data: BaseMessage) -> None:
        """Run after the state changes on ``disable`` (a hook); raising reverts it."""

    async def end_standby(self, data: BaseMessage) -> None:
        """Run after the state changes on ``standby`` (a hook); raising reverts it."""

    async def end_exitControl(self, data: BaseMessage) -> None:
        """Run after the state changes on ``exitControl`` (a hook); raising reverts it."""

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.evt_heartbeat.write()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                print(f"Heartbeat output failed: {e!r}", file=sys.stderr)
            await asyncio.sleep(self.heartbeat_interval)

    async def close_tasks(self) -> None:
        """Stop the heartbeat."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        await super().close_tasks()

    # --- command line --------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add arguments to the parser of `make_from_cmd_line` (override with `add_kwargs_from_args`)."""

    @classmethod
    def add_kwargs_from_args(cls, args: argparse.Namespace, kwargs: dict[str, Any]) -> None:
        """Add constructor arguments from the parsed command line."""

    @classmethod
    def make_from_cmd_line(
        cls,
        index: int | type[enum.IntEnum] | bool | None,
        check_if_duplicate: bool = False,
        **kwargs: Any,
    ) -> BaseCsc:
        """Construct the CSC from the command line (``sys.argv``).

        Parameters
        ----------
        index : `int`, `enum.IntEnum` class, `True` or None
            `True`: the index is a required argument; an `enum.IntEnum`
            class: a required argument among its values; a non-zero int:
            that index; None or 0: not indexed.
        check_if_duplicate : `bool`, optional
            Look for another running instance at start?
        **kwargs
            More constructor arguments.

        Notes
        -----
        Options: ``--loglevel``, ``--state`` (if `enable_cmdline_state`),
        ``--simulate`` (if there is more than one simulation mode),
        ``--version``, and those of `add_arguments`.
        """
        parser = argparse.ArgumentParser(f"Run {cls.__name__}")
        if index is True:
            parser.add_argument("index", type=int, help="SAL index.")
        elif isinstance(index, type) and issubclass(index, enum.IntEnum):
            choices = [int(item.value) for item in index]
            names = ", ".join(f"{item.value}: {item.name.lower()}" for item in index)
            parser.add_argument("index", type=int, choices=choices, help=f"SAL index, one of: {names}")
        parser.add_argument("--loglevel", type=int, help="log level: error=40, warning=30, info=20, debug=10")
        if cls.enable_cmdline_state:
            parser.add_argument(
                "--state",
                choices=["offline", "standby", "disabled", "enabled"],
                dest="initial_state",
                help="initial state",
            )
        modes = list(cls.valid_simulation_modes)
        add_simulate = len(modes) > 1
        if add_simulate:
            default_mode = 0 if 0 in modes else modes[0]
            if default_mode == 0 and len(modes) == 2:
                parser.add_argument(
                    "--simulate",
                    help=cls.simulation_help or "Run in simulation mode?",
                    default=0,
                    action="store_const",
                    const=(set(modes) - {0}).pop(),
                )
            else:
                parser.add_argument(
                    "--simulate",
                    type=int,
                    help=cls.simulation_help or "Simulation mode",
                    default=default_mode,
                    choices=modes,
                )
        parser.add_argument("--version", action="version", version=cls.version)
        cls.add_arguments(parser)
        args = parser.parse_args()
        if hasattr(args, "index"):
            kwargs["index"] = args.index
        elif index and index is not True and not isinstance(index, type):
            kwargs["index"] = int(index)
        if add_simulate:
            kwargs["simulation_mode"] = args.simulate
        if getattr(args, "initial_state", None) is not None:
            kwargs["initial_state"] = State[args.initial_state.upper()]
        cls.add_kwargs_from_args(args=args, kwargs=kwargs)
        csc = cls(**kwargs)
        csc.check_if_duplicate = check_if_duplicate
        if args.loglevel is not None:
            csc.log.setLevel(args.loglevel)
        return csc

    @classmethod
    async def amain(cls, index: int | type[enum.IntEnum] | bool | None, **kwargs: Any) -> None:
        """Make the CSC from the command line and run it until it quits (or SIGINT/SIGTERM).

        Parameters
        ----------
        index : `int`, `enum.IntEnum` class, `True` or None
            See `make_from_cmd_line`.
        **kwargs
            More constructor arguments.
        """
        csc = cls.make_from_cmd_line(index=index, check_if_duplicate=True, **kwargs)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, csc.signal_handler)
        await csc.done_task
        await csc.close()

    def signal_handler(self) -> None:
        """Handle SIGINT and SIGTERM: end ``done_task`` (``amain`` then closes the CSC)."""
        self.log.info("signal_handler")
        if not self.done_task.done():
            self.done_task.set_result(None)
