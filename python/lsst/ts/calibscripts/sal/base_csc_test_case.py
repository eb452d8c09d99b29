"""BaseCscTestCase: salobj's harness for CSC unit tests."""

from __future__ import annotations

__all__ = ["STD_TIMEOUT", "BaseCscTestCase"]

import abc
import asyncio
import contextlib
import enum
import os
import pathlib
import shutil
import subprocess
import sys
import unittest
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .base_csc import BaseCsc
from .csc_utils import get_expected_summary_states
from .domain import Domain
from .enums import SalRetCode, State
from .messages import BaseMessage
from .read_topic import ReadTopic
from .remote import Remote
from .testing import assertRaisesAckError, set_test_topic_subname
from .timestamps import current_tai, index_generator

#: Standard time limit (s); long, so slow machines do not fail tests.
STD_TIMEOUT = 30
#: Time limit (s) of `BaseCscTestCase.check_bin_script` (it checks for a duplicate first).
STD_WITH_DUPLICATE_CHECK_TIMEOUT = STD_TIMEOUT + 10


class BaseCscTestCase(metaclass=abc.ABCMeta):
    """Mixin for CSC tests, with `unittest.IsolatedAsyncioTestCase`.

    Implement `basic_make_csc`; then ``async with self.make_csc(...)``
    gives ``self.csc`` and ``self.remote`` (a `Remote` made with the CSC's
    domain). Each test runs with its own ``$LSST_TOPIC_SUBNAME`` (made from
    the process id, or random if ``_randomize_topic_subname``) and
    ``LSST_SITE=test``.

    Attributes
    ----------
    csc : `BaseCsc`
        The CSC under test.
    remote : `Remote`
        A Remote of the CSC.
    csc_start_time : `float`
        TAI when the CSC was made; `assert_next_sample` skips older messages.
    """

    _index_iter = index_generator()
    #: Set True (e.g. in ``setUpClass``) for a random topic sub-name per test.
    _randomize_topic_subname = False

    csc: BaseCsc
    remote: Remote

    def run(self, result: Any = None) -> Any:
        """Set the topic sub-name and ``LSST_SITE``, then run the test."""
        set_test_topic_subname(randomize=self._randomize_topic_subname)
        os.environ["LSST_SITE"] = "test"
        self.csc_start_time = current_tai()
        return super().run(result)  # type: ignore[misc]

    @abc.abstractmethod
    def basic_make_csc(
        self,
        initial_state: State | int | None,
        config_dir: str | pathlib.Path | None,
        simulation_mode: int,
        **kwargs: Any,
    ) -> BaseCsc:
        """Make and return the CSC.

        Parameters
        ----------
        initial_state : `State`, `int` or None
            Initial state of the CSC.
        config_dir : `str`, `pathlib.Path` or None
            Configuration directory (configurable CSCs).
        simulation_mode : `int`
            Simulation mode.
        **kwargs
            Extra arguments given to `make_csc`.
        """
        raise NotImplementedError()

    def next_index(self) -> int:
        """Return the next SAL index (unique within the process)."""
        return next(self._index_iter)

    @contextlib.asynccontextmanager
    async def make_csc(
        self,
        initial_state: State | int | None = None,
        config_dir: str | pathlib.Path | None = None,
        simulation_mode: int = 0,
        log_level: int | None = None,
        timeout: float = STD_TIMEOUT,
        **kwargs: Any,
    ) -> AsyncIterator[None]:
        """Make the CSC and a Remote, wait for both to start; close both at the end.

        The Remote starts before the CSC does, so it sees every message.
        The summary states the CSC passes through to reach
        ``initial_state`` are read and checked, except the last, which is
        left queued.

        Raises
        ------
        TimeoutError
            If the CSC does not start in time.
        """
        items: list[BaseCsc | Remote] = []
        try:
            self.csc = self.basic_make_csc(
                initial_state=initial_state, config_dir=config_dir, simulation_mode=simulation_mode, **kwargs
            )
            self.csc.delay_start_event.clear()
            self.csc_start_time = current_tai()
            items.append(self.csc)
            self.remote = Remote(self.csc.domain, self.csc.salinfo.name, self.csc.salinfo.index)
            items.append(self.remote)
            await asyncio.wait_for(self.remote.start_task, timeout=timeout)
            self.csc.delay_start_event.set()
            await asyncio.wait_for(self.csc.start_task, timeout=timeout)
            if log_level is not None:
                self.csc.log.setLevel(log_level)
            if initial_state is not None and initial_state != self.csc.default_initial_state:
                expected = get_expected_summary_states(self.csc.default_initial_state, initial_state)[:-1]
                for state in expected:
                    await self.assert_next_summary_state(state)
            yield
        finally:
            for item in items:
                await item.close()

    async def assert_next_summary_state(
        self,
        state: State | int,
        flush: bool = False,
        timeout: float = STD_TIMEOUT,
        remote: Remote | None = None,
    ) -> None:
        """Wait for the next ``summaryState`` and check it.

        Raises
        ------
        AssertionError
            If the state differs.
        TimeoutError
            If none arrives in time.
        """
        remote = self.remote if remote is None else remote
        await self.assert_next_sample(
            remote.evt_summaryState, flush=flush, timeout=timeout, summaryState=state
        )

    async def assert_next_sample(
        self, topic: ReadTopic, flush: bool = False, timeout: float = STD_TIMEOUT, **kwargs: Any
    ) -> BaseMessage:
        """Wait for the next message (sent after the CSC was made), check fields, return it.

        Parameters
        ----------
        topic : `ReadTopic`
            Topic to read, e.g. ``self.remote.evt_logMessage``.
        flush : `bool`, optional
            Flush the queue first?
        timeout : `float`, optional
            Time limit (s).
        **kwargs
            Field name: expected value.

        Raises
        ------
        AssertionError
            If a field differs.
        TimeoutError
            If no message arrives in time.
        """
        data = await topic.next(flush=flush, timeout=timeout)
        while data.private_sndStamp <= self.csc_start_time:
            data = await topic.next(flush=flush, timeout=timeout)
        for name, expected in kwargs.items():
            value = getattr(data, name, None)
            if value is None:
                raise AssertionError(f"No such field {name} in topic {topic}")
            if isinstance(expected, enum.IntEnum):
                with contextlib.suppress(ValueError):
                    value = type(expected)(value)
            assert value == expected, f"Failed on field {name}: read {value!r} != expected {expected!r}"
        return data

    async def check_bin_script(
        self,
        name: str,
        index: int,
        exe_name: str,
        default_initial_state: State = State.STANDBY,
        initial_state: State | None = None,
        override: str | None = None,
        cmdline_args: Sequence[str] = (),
        timeout: float = STD_WITH_DUPLICATE_CHECK_TIMEOUT,
    ) -> None:
        """Run the CSC's executable and check the summary states it reports.

        The executable runs in another process, so this needs a transport
        that reaches one (``CALIBSCRIPTS_TRANSPORT=redis``); with the
        in-process transport the test is skipped.

        Raises
        ------
        AssertionError
            If the executable cannot be found.
        TimeoutError
            If the states are not seen in time.
        """
        exe_path = shutil.which(exe_name)
        if exe_path is None:
            raise AssertionError(f"Could not find bin script {exe_name}; did you install this package?")
        # A Python file runs with this interpreter (its shebang may name another).
        args = [sys.executable, exe_path] if exe_path.endswith(".py") else [exe_path]
        if index not in (None, 0):
            args.append(str(index))
        if initial_state is None:
            expected_states = [default_initial_state]
        else:
            args += ["--state", initial_state.name.lower()]
            expected_states = get_expected_summary_states(default_initial_state, initial_state)
        if override is not None:
            args += ["--override", override]
        args += list(cmdline_args)
        async with Domain() as domain:
            environment = domain.transport.child_environment()
            if environment is None:
                raise unittest.SkipTest(
                    "check_bin_script needs a transport that reaches other processes, "
                    f"not {domain.transport.name!r}"
                )
            async with Remote(domain, name, index) as self.remote:
                self.csc_start_time = current_tai()
                process = await asyncio.create_subprocess_exec(
                    *args, stderr=subprocess.PIPE, env={**os.environ, **environment}
                )
                try:
                    for state in expected_states:
                        await self.assert_next_summary_state(state, timeout=timeout)
                    if override:
                        data = await self.assert_next_sample(self.remote.evt_configurationApplied)
                        assert override in data.configurations
                finally:
                    if process.returncode is None:
                        process.terminate()
                        await asyncio.wait_for(process.wait(), timeout=STD_TIMEOUT)

    async def check_standard_state_transitions(
        self,
        enabled_commands: Sequence[str],
        skip_commands: Sequence[str] | None = None,
        override: str = "",
        timeout: float = STD_TIMEOUT,
    ) -> None:
        """Take the CSC from STANDBY through every state to OFFLINE, checking refused commands.

        Parameters
        ----------
        enabled_commands : `list` [`str`]
            The CSC's own commands allowed in ENABLED.
        skip_commands : `list` [`str`], optional
            Commands not to try.
        override : `str`, optional
            ``configurationOverride`` of ``start``.
        timeout : `float`, optional
            Time limit (s) of each transition command.
        """
        skip = tuple(skip_commands or ())
        assert self.csc.summary_state == State.STANDBY
        await self.assert_next_summary_state(State.STANDBY)
        await self.check_bad_commands(good_commands=("start", "exitControl", "setLogLevel", *skip))
        await self.remote.cmd_start.set_start(configurationOverride=override, timeout=timeout)
        assert self.csc.summary_state == State.DISABLED
        await self.assert_next_summary_state(State.DISABLED)
        await self.check_bad_commands(good_commands=("enable", "standby", "setLogLevel", *skip))
        await self.remote.cmd_enable.start(timeout=timeout)
        assert self.csc.summary_state == State.ENABLED
        await self.assert_next_summary_state(State.ENABLED)
        enabled = tuple(sorted({"disable", "setLogLevel", *enabled_commands}))
        await self.check_bad_commands(good_commands=(*enabled, *skip))
        await self.remote.cmd_disable.start(timeout=timeout)
        assert self.csc.summary_state == State.DISABLED
        await self.assert_next_summary_state(State.DISABLED)
        await self.remote.cmd_standby.start(timeout=timeout)
        assert self.csc.summary_state == State.STANDBY
        await self.assert_next_summary_state(State.STANDBY)
        await self.remote.cmd_exitControl.start(timeout=timeout)
        assert self.csc.summary_state == State.OFFLINE
        await self.assert_next_summary_state(State.OFFLINE)

    async def check_bad_commands(
        self, bad_commands: Sequence[str] | None = None, good_commands: Sequence[str] | None = None
    ) -> None:
        """Check that commands fail (``CMD_FAILED``) in the current state.

        Parameters
        ----------
        bad_commands : `list` [`str`], optional
            Commands to try; all if None.
        good_commands : `list` [`str`], optional
            Commands to skip (these win over ``bad_commands``).
        """
        commands = self.remote.salinfo.command_names if bad_commands is None else bad_commands
        good = set(good_commands or ())
        for command in commands:
            if command in good:
                continue
            with (
                self.subTest(command=command),  # type: ignore[attr-defined]
                assertRaisesAckError(ack=SalRetCode.CMD_FAILED),
            ):
                await getattr(self.remote, f"cmd_{command}").start(timeout=STD_TIMEOUT)
