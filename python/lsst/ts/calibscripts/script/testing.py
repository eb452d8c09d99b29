"""BaseScriptTestCase: the script test harness of ts_standardscripts."""

from __future__ import annotations

__all__ = ["MAKE_TIMEOUT", "BaseScriptTestCase"]

import abc
import asyncio
import contextlib
import datetime
import logging
import os
import pathlib
import subprocess
import sys
import time
import types
import unittest
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import yaml

from ..sal import Domain, Remote, ScriptState, set_test_topic_subname
from ..utils import index_generator
from .base_script import BaseScript

#: Default time limit (s) of `BaseScriptTestCase.make_script`.
MAKE_TIMEOUT = 90

_T = TypeVar("_T")


def _check_file(path: pathlib.Path) -> pathlib.Path:
    """Return the absolute path of an executable file; raise `AssertionError` if it is not one."""
    path = path.absolute()
    assert path.is_file(), f"{path} is not a file"
    assert os.access(path, os.X_OK), f"{path} is not executable"
    return path


def _utc_isot_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


class BaseScriptTestCase(metaclass=abc.ABCMeta):
    """Mixin for testing a script, with `unittest.IsolatedAsyncioTestCase`.

    The signatures are those of ts_standardscripts' ``BaseScriptTestCase``.
    Implement `basic_make_script`, then::

        async with self.make_script():
            await self.configure_script(n_bias=3)
            await self.run_script()

    Commands are given by calling the script's ``do_<command>`` methods,
    as the queue would send them. `configure_script_yaml` (an extension)
    configures from YAML text with more command fields.

    Attributes
    ----------
    script : `BaseScript`
        The script under test (set by `basic_make_script`).
    """

    _index_iter = index_generator()

    script: BaseScript

    @abc.abstractmethod
    async def basic_make_script(self, index: int) -> Sequence[Any]:
        """Make ``self.script`` (and anything it needs) with SAL index ``index``.

        Returns
        -------
        items : sequence
            Scripts, controllers and remotes: `make_script` waits for each
            one's ``start_task`` and finally closes each.
        """
        raise NotImplementedError()

    async def close(self) -> None:  # noqa: B027 - an optional hook, as in standardscripts
        """Clean up before the items of `basic_make_script` are closed (optional)."""

    def next_index(self) -> int:
        """Return the next SAL index (unique within the process)."""
        return next(self._index_iter)

    async def wait_for(self, coro: Awaitable[_T], timeout: float, description: str, verbose: bool) -> _T:
        """Await ``coro`` with a time limit, printing how long it took if ``verbose``.

        Raises
        ------
        TimeoutError
            If it takes longer than ``timeout`` seconds.
        """
        t0 = time.monotonic()
        if verbose:
            print(f"wait for {description}")
        try:
            result = await asyncio.wait_for(coro, timeout=timeout)
        except TimeoutError:
            print(f"{description} timed out after {time.monotonic() - t0:0.1f} seconds")
            raise
        if verbose:
            print(f"{description} took {time.monotonic() - t0:0.1f} seconds")
        return result

    @contextlib.asynccontextmanager
    async def make_script(
        self,
        log_level: int = logging.INFO,
        timeout: float = MAKE_TIMEOUT,
        verbose: bool = False,
        randomize_topic_subname: bool = False,
    ) -> AsyncIterator[None]:
        """Make the script with the next index and wait for it to start; close all at exit.

        Parameters
        ----------
        log_level : `int`, optional
            Log level of the script.
        timeout : `float`, optional
            Time limit (s) for making, starting and closing.
        verbose : `bool`, optional
            Print how long each step took?
        randomize_topic_subname : `bool`, optional
            A random topic sub-name (else one made from the process id)?
        """
        set_test_topic_subname(randomize=randomize_topic_subname)
        items = await self.wait_for(
            self.basic_make_script(index=self.next_index()),
            timeout=timeout,
            description="self.basic_make_script()",
            verbose=verbose,
        )
        try:
            await self.wait_for(
                asyncio.gather(*[item.start_task for item in items]),
                timeout=timeout,
                description=f"item.start_task for {len(items)} items",
                verbose=verbose,
            )
            self.script.log.setLevel(log_level)
            yield
        finally:
            await self.wait_for(self.close(), timeout=timeout, description="self.close()", verbose=verbose)
            await self.wait_for(
                asyncio.gather(*[item.close() for item in items]),
                timeout=timeout,
                description=f"item.close() for {len(items)} items",
                verbose=verbose,
            )

    async def configure_script(self, **kwargs: Any) -> types.SimpleNamespace:
        """Configure the script from keyword arguments and set a group id.

        The state is first set to UNCONFIGURED, so this may be called more
        than once.

        Returns
        -------
        config : `types.SimpleNamespace`
            ``kwargs`` as a namespace (not the script's validated configuration).

        Raises
        ------
        ExpectedError
            If the configuration fails (the script is then CONFIGURE_FAILED).
        """
        config = types.SimpleNamespace(**kwargs)
        await self.configure_script_yaml(yaml.safe_dump(kwargs) if kwargs else "")
        return config

    async def configure_script_yaml(self, text: str, **fields: Any) -> types.SimpleNamespace:
        """Configure the script from YAML text, as the queue sends it, and set a group id.

        An extension. ``fields`` are other fields of the ``configure``
        command (``pauseCheckpoint``, ``logLevel``...).

        Returns
        -------
        config : `types.SimpleNamespace`
            The script's validated configuration, defaults included.
        """
        await self.script.set_state(ScriptState.UNCONFIGURED)
        data = self.script.cmd_configure.DataType(config=text, **fields)
        await self.script.do_configure(data)
        assert self.script.state.state == ScriptState.CONFIGURED
        await self.script.do_setGroupId(self.script.cmd_setGroupId.DataType(groupId=_utc_isot_now()))
        return self.script.config

    async def run_script(self, expected_final_state: ScriptState = ScriptState.DONE) -> None:
        """Run the configured script (group id set) and check its final state."""
        await self.script.do_run(self.script.cmd_run.DataType())
        await self.script.done_task
        actual = self.script.state.state
        assert actual == expected_final_state, (
            f"final state {self.script.state_name}, expected {expected_final_state!r}; "
            f"reason: {self.script.state.reason}"
        )

    async def check_executable(self, script_path: str | pathlib.Path) -> dict[str, Any] | None:
        """Check a script executable: a file, executable, and it prints its schema.

        If ``$LSST_SAL_SCRIPT_CHECK_BIN`` is set, also launch it and wait
        for it to report UNCONFIGURED (needs a transport that reaches other
        processes, e.g. ``CALIBSCRIPTS_TRANSPORT=redis``; otherwise the test
        is skipped).

        Returns
        -------
        schema : `dict` or None
            The schema ``script_path 0 --schema`` printed (an extension).
        """
        set_test_topic_subname()
        index = self.next_index()
        path = _check_file(pathlib.Path(script_path))
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(path), "0", "--schema"],
            capture_output=True,
            text=True,
            timeout=MAKE_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"{path} 0 --schema failed: {result.stderr}"
        schema = yaml.safe_load(result.stdout) if result.stdout.strip() else None
        if "LSST_SAL_SCRIPT_CHECK_BIN" in os.environ:
            await self._check_launch(path, index)
        return schema

    async def _check_launch(self, path: pathlib.Path, index: int) -> None:
        async with Domain() as domain:
            environment = domain.transport.child_environment()
            if environment is None:
                raise unittest.SkipTest(
                    f"Launching {path.name} needs a transport that reaches other processes, "
                    f"not {domain.transport.name!r}"
                )
            async with Remote(domain, "Script", index) as remote:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, str(path), str(index), env={**os.environ, **environment}
                )
                try:
                    state = await remote.evt_state.next(flush=False, timeout=MAKE_TIMEOUT)
                    assert state.state == ScriptState.UNCONFIGURED
                finally:
                    if process.returncode is None:
                        process.terminate()
                    await asyncio.wait_for(process.wait(), timeout=MAKE_TIMEOUT)
