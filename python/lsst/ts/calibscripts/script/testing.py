"""BaseScriptTestCase: a harness for script unit tests."""

from __future__ import annotations

__all__ = ["BaseScriptTestCase"]

import abc
import contextlib
import os
import subprocess
import sys
import types
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..sal import ScriptState
from ..sal.messages import message_model
from ..sal.testing import set_random_topic_subname
from .base_script import BaseScript


class _Closeable(Protocol):
    async def close(self) -> None: ...


class BaseScriptTestCase(metaclass=abc.ABCMeta):
    """Mixin for testing a script, with `unittest.IsolatedAsyncioTestCase`.

    Subclasses implement `basic_make_script`, then::

        async with self.make_script():
            await self.configure_script(n_bias=3)
            await self.run_script()

    Commands are given by calling the script's ``do_<command>`` methods with
    properly typed command data, as the queue would send them.

    Attributes
    ----------
    script : `BaseScript`
        The script under test (set by `basic_make_script`).
    """

    script: BaseScript

    @abc.abstractmethod
    async def basic_make_script(self, index: int) -> Sequence[_Closeable]:
        """Make ``self.script`` (and anything it needs) with SAL index ``index``.

        Returns
        -------
        items : sequence
            Everything to close at the end (the script included).
        """

    @contextlib.asynccontextmanager
    async def make_script(
        self, index: int = 1, *, randomize_topic_subname: bool = True
    ) -> AsyncIterator[None]:
        """Make the script and wait until it is UNCONFIGURED; close all at exit."""
        if randomize_topic_subname:
            set_random_topic_subname()
        items = await self.basic_make_script(index=index)
        try:
            for item in items:
                start_task = getattr(item, "start_task", None)
                if start_task is not None:
                    await start_task
            assert self.script.state.state == ScriptState.UNCONFIGURED
            yield
        finally:
            for item in items:
                await item.close()

    def _command_data(self, command: str, **fields: Any) -> Any:
        topic = self.script.salinfo.interface.commands[command]
        return message_model(topic)(salIndex=self.script.salinfo.index, **fields)

    async def configure_script(self, **config: Any) -> types.SimpleNamespace:
        """Configure the script from keyword arguments; return its config.

        Raises whatever ``do_configure`` raises; the script is then in
        CONFIGURE_FAILED.
        """
        text = yaml.safe_dump(config) if config else ""
        return await self.configure_script_yaml(text)

    async def configure_script_yaml(self, text: str, **fields: Any) -> types.SimpleNamespace:
        """Configure the script from YAML text, as the queue sends it."""
        await self.script.do_configure(self._command_data("configure", config=text, **fields))
        assert self.script.state.state == ScriptState.CONFIGURED
        assert self.script.config is not None
        return self.script.config

    async def run_script(self, expected_final_state: ScriptState = ScriptState.DONE) -> None:
        """Set a group id, run the script and check its final state."""
        await self.script.do_setGroupId(self._command_data("setGroupId", groupId="test-group"))
        await self.script.do_run(self._command_data("run"))
        await self.script.done_task
        actual = ScriptState(self.script.state.state)
        assert actual == expected_final_state, (
            f"final state {actual.name}, expected {expected_final_state.name}; "
            f"reason: {self.script.state.reason}"
        )

    def check_executable(self, script_path: Path) -> dict[str, Any] | None:
        """Check a script executable: it is executable and prints its schema.

        Runs ``script_path 0 --schema`` and checks the printed YAML parses
        back to the script class's schema.

        Returns
        -------
        schema : `dict` or None
            The schema the executable printed.
        """
        assert os.access(script_path, os.X_OK), f"{script_path} is not executable"
        result = subprocess.run(
            [sys.executable, str(script_path), "0", "--schema"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{script_path} 0 --schema failed: {result.stderr}"
        schema = yaml.safe_load(result.stdout) if result.stdout.strip() else None
        assert schema == type(self.script).get_schema(), "printed schema differs from get_schema()"
        return schema
