"""BaseCsc: a Commandable SAL Component with the standard state machine."""

from __future__ import annotations

__all__ = ["BaseCsc"]

import argparse
import asyncio
import traceback
from collections.abc import Sequence
from typing import Any

from ..version import __version__
from .controller import Controller
from .domain import Domain
from .enums import State
from .errors import ExpectedError
from .messages import BaseMessage

#: Allowed transitions: command -> (states it is accepted in, state it leads to).
_TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "start": (frozenset({State.STANDBY}), State.DISABLED),
    "enable": (frozenset({State.DISABLED}), State.ENABLED),
    "disable": (frozenset({State.ENABLED}), State.DISABLED),
    "standby": (frozenset({State.DISABLED, State.FAULT}), State.STANDBY),
    "exitControl": (frozenset({State.STANDBY}), State.OFFLINE),
}


class BaseCsc(Controller):
    """A CSC: summary state machine, generic commands and heartbeat.

    Summary states and the generic commands that move between them::

        STANDBY --start--> DISABLED --enable--> ENABLED
        STANDBY <-standby- DISABLED <-disable-- ENABLED
        FAULT --standby--> STANDBY --exitControl--> OFFLINE (and quit)

    Subclasses implement ``do_<command>`` for their own commands (call
    `assert_enabled` first where the command needs ENABLED), may override
    `handle_summary_state` to start/stop work as the state changes, and may
    define ``begin_<cmd>`` / ``end_<cmd>`` hooks around generic transitions.

    Parameters
    ----------
    name : `str`
        Component name.
    index : `int`, optional
        SAL index (indexed components only).
    initial_state : `State`, optional
        State after start; default STANDBY.
    domain : `Domain`, optional
        Domain to use.
    """

    #: Software version written in ``softwareVersions``.
    version: str = __version__
    #: Interval between heartbeats (s).
    heartbeat_interval: float = 1.0

    def __init__(
        self,
        name: str,
        index: int | None = None,
        *,
        initial_state: State = State.STANDBY,
        domain: Domain | None = None,
    ) -> None:
        if initial_state == State.OFFLINE or initial_state not in State:
            raise ValueError(f"initial_state={initial_state!r} is not allowed")
        self._summary_state = State(initial_state)
        self._heartbeat_task: asyncio.Task[None] | None = None
        super().__init__(name, index, domain=domain)

    @property
    def summary_state(self) -> State:
        """The current summary state."""
        return self._summary_state

    @property
    def disabled_or_enabled(self) -> bool:
        """Is the summary state DISABLED or ENABLED?"""
        return self._summary_state in (State.DISABLED, State.ENABLED)

    async def start(self) -> None:
        """Write the initial events and start the heartbeat."""
        await super().start()
        await self.evt_softwareVersions.set_write(
            salVersion=__version__, xmlVersion=__version__, cscVersion=self.version
        )
        await self.evt_simulationMode.set_write(mode=0)
        await self.evt_summaryState.set_write(summaryState=int(self._summary_state))
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        await self.handle_summary_state()

    async def handle_summary_state(self) -> None:
        """React to a summary state change; called after every change."""

    def assert_enabled(self, action: str = "") -> None:
        """Raise `ExpectedError` unless ENABLED.

        Parameters
        ----------
        action : `str`, optional
            What was refused, for the message.
        """
        if self._summary_state != State.ENABLED:
            what = f"{action} not allowed" if action else "Not allowed"
            raise ExpectedError(
                f"{what} in state {self._summary_state.name}; {self.salinfo.name} is not ENABLED"
            )

    async def fault(self, code: int, report: str, traceback: str = "") -> None:
        """Go to FAULT and report why.

        Parameters
        ----------
        code : `int`
            Error code.
        report : `str`
            Description of the problem.
        traceback : `str`, optional
            Traceback, if any.
        """
        await self.evt_errorCode.set_write(
            errorCode=code, errorReport=report, traceback=traceback, force_output=True
        )
        self.log.error("Going to FAULT: %s", report)
        await self._set_summary_state(State.FAULT)

    async def _set_summary_state(self, state: State) -> None:
        self._summary_state = state
        await self.evt_summaryState.set_write(summaryState=int(state))
        await self.handle_summary_state()

    async def _change_state(self, command: str, data: BaseMessage) -> None:
        allowed, target = _TRANSITIONS[command]
        if self._summary_state not in allowed:
            names = " or ".join(sorted(s.name for s in allowed))
            raise ExpectedError(f"{command} not allowed in state {self._summary_state.name}; needs {names}")
        begin = getattr(self, f"begin_{command}", None)
        if begin is not None:
            await begin(data)
        await self._set_summary_state(target)
        end = getattr(self, f"end_{command}", None)
        if end is not None:
            await end(data)

    async def do_start(self, data: BaseMessage) -> None:
        """Go from STANDBY to DISABLED."""
        await self._change_state("start", data)

    async def do_enable(self, data: BaseMessage) -> None:
        """Go from DISABLED to ENABLED."""
        await self._change_state("enable", data)

    async def do_disable(self, data: BaseMessage) -> None:
        """Go from ENABLED to DISABLED."""
        await self._change_state("disable", data)

    async def do_standby(self, data: BaseMessage) -> None:
        """Go from DISABLED or FAULT to STANDBY."""
        await self._change_state("standby", data)

    async def do_exitControl(self, data: BaseMessage) -> None:
        """Go from STANDBY to OFFLINE, then close (after acknowledging)."""
        await self._change_state("exitControl", data)
        # Close after this command's acknowledgement has been written.
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.close()))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.evt_heartbeat.write()
            except Exception:
                self.log.exception("Heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval)

    async def close_tasks(self) -> None:
        """Stop the heartbeat and cancel command callbacks."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        await super().close_tasks()

    @classmethod
    def make_from_cmd_line(cls, argv: Sequence[str] | None = None, **kwargs: Any) -> BaseCsc:
        """Construct the CSC from command-line arguments.

        Indexed CSCs take the index as the first argument; ``--state``
        selects the initial state. Extra keyword arguments are passed on.
        """
        parser = argparse.ArgumentParser(description=cls.__doc__)
        parser.add_argument("index", type=int, nargs="?", default=None, help="SAL index")
        parser.add_argument(
            "--state",
            choices=[s.name.lower() for s in (State.STANDBY, State.DISABLED, State.ENABLED)],
            default="standby",
            help="initial summary state",
        )
        args = parser.parse_args(argv)
        return cls(index=args.index, initial_state=State[args.state.upper()], **kwargs)

    @classmethod
    async def amain(cls, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
        """Run the CSC from the command line until it exits."""
        csc = cls.make_from_cmd_line(argv, **kwargs)
        try:
            await csc.start_task
            await csc.done_task
        except Exception:
            traceback.print_exc()
            raise
        finally:
            await csc.close()
