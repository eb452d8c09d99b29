"""SleepScript: the example script, used by tests and as a template."""

from __future__ import annotations

__all__ = ["SleepScript"]

import asyncio
import logging
import types
from typing import Any

from ..sal import Domain
from .base_script import BaseScript


class SleepScript(BaseScript):
    """Pass named checkpoints, sleeping at each; optionally fail.

    Parameters
    ----------
    index : `int`
        SAL index of the script.
    domain : `Domain`, optional
        Domain to use.
    """

    def __init__(self, index: int, *, domain: Domain | None = None) -> None:
        super().__init__(index, descr="Pass checkpoints, sleeping at each.", domain=domain)
        self.checkpoints_passed: list[str] = []
        self.cleanup_ran = False

    @classmethod
    def get_schema(cls) -> dict[str, Any]:
        """Return the schema in ``schemas/scripts/sleep.yaml``."""
        return cls.load_schema("sleep")

    async def configure(self, config: types.SimpleNamespace) -> None:
        """Accept the validated configuration (nothing more to check)."""
        self.report_level = logging.getLevelNamesMapping()[config.report["level"]]

    def set_metadata(self, metadata: types.SimpleNamespace) -> None:
        """Duration = number of checkpoints x sleep time."""
        assert self.config is not None
        metadata.duration = len(self.config.checkpoints) * self.config.sleep_time
        metadata.totalCheckpoints = len(self.config.checkpoints)

    async def run(self) -> None:
        """Pass each checkpoint, then fail if configured to."""
        assert self.config is not None
        for name in self.config.checkpoints:
            await self.checkpoint(name)
            self.log.log(self.report_level, "%s %s", self.config.report["prefix"], name)
            self.checkpoints_passed.append(name)
            await asyncio.sleep(self.config.sleep_time)
        if self.config.fail_run:
            raise RuntimeError("fail_run is true: failing as configured")

    async def cleanup(self) -> None:
        """Record that cleanup ran; fail if configured to."""
        self.cleanup_ran = True
        assert self.config is not None
        if self.config.fail_cleanup:
            raise RuntimeError("fail_cleanup is true: failing as configured")
