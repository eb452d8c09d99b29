"""TestScript: salobj's script for testing BaseScript and the ScriptQueue."""

from __future__ import annotations

__all__ = ["TestScript"]

import asyncio
import types
from typing import Any

from ..sal import Domain, ExpectedError
from .base_script import BaseScript


class TestScript(BaseScript):
    """Wait ``wait_time`` seconds between the checkpoints ``start`` and ``end``.

    Configuration: ``wait_time`` (s, default 0), ``fail_run`` and
    ``fail_cleanup`` (default false) to fail on purpose.

    Parameters
    ----------
    index : `int`
        SAL index.
    descr : `str`, optional
        Short description.
    domain : `Domain`, optional
        Domain to share.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, index: int, descr: str = "test script", *, domain: Domain | None = None) -> None:
        super().__init__(
            index=index,
            descr=descr,
            help="A test script that waits for a configurable period of time, then exits. "
            "It has two checkpoints: `start` (before the wait) and `end` (after the wait). "
            "It can be configured to fail in run or cleanup.",
            domain=domain,
        )

    @classmethod
    def get_schema(cls) -> dict[str, Any]:
        """Return the schema: ``wait_time``, ``fail_run``, ``fail_cleanup``."""
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "TestScript v1",
            "description": "Configuration for TestScript",
            "type": "object",
            "properties": {
                "wait_time": {
                    "description": "Time to wait (s)",
                    "type": "number",
                    "minimum": 0,
                    "default": 0,
                },
                "fail_run": {
                    "description": "Fail in run, after checkpoint start?",
                    "type": "boolean",
                    "default": False,
                },
                "fail_cleanup": {"description": "Fail in cleanup?", "type": "boolean", "default": False},
            },
            "required": ["wait_time", "fail_run", "fail_cleanup"],
            "additionalProperties": False,
        }

    async def configure(self, config: types.SimpleNamespace) -> None:
        """Keep the configuration (after a short wait, as salobj's does)."""
        self.log.info("Configure started")
        await asyncio.sleep(0.1)
        self.config = config
        self.log.info("Configure succeeded")

    def set_metadata(self, metadata: Any) -> None:
        """Duration = ``wait_time``; two checkpoints."""
        assert self.config is not None
        metadata.duration = self.config.wait_time
        metadata.totalCheckpoints = 2

    async def run(self) -> None:
        """Checkpoint ``start``, fail if asked, wait, checkpoint ``end``."""
        assert self.config is not None
        self.log.info("Run started")
        await self.checkpoint("start")
        if self.config.fail_run:
            raise ExpectedError(f"Failed in run after wait: fail_run={self.config.fail_run}")
        await asyncio.sleep(self.config.wait_time)
        await self.checkpoint("end")
        self.log.info("Run succeeded")

    async def cleanup(self) -> None:
        """Fail if asked."""
        self.log.info("Cleanup started")
        assert self.config is not None
        if self.config.fail_cleanup:
            raise ExpectedError(f"Failed in cleanup: fail_cleanup={self.config.fail_cleanup}")
        self.log.info("Cleanup succeeded")
