"""BaseBlockScript: a script run as part of an observing block (ts_standardscripts' behaviour).

A block script takes ``program``, ``reason`` and ``note`` (written in the
image headers). Its ``obs_id`` is not an option: it is the block id the
queue gives in the ``configure`` command (`BaseScript.obs_id`), as in
ts_standardscripts, where the obs id "should now be provided by the script
queue". With a program, the checkpoint message is
``<ClassName> <program> <obs_id> <reason>`` (``obs_id`` and ``reason`` only
when given, spaced as ts_standardscripts spaces them) and the block is
framed by the checkpoints ``<message>: Start`` and ``<message>: Done``, so
that an operator's pause and stop patterns written for production match.
With an obs id, the images' group id is ``<obs_id>_<salIndex>``.
"""

from __future__ import annotations

__all__ = ["BLOCK_SCHEMA_PROPERTIES", "BaseBlockScript"]

import abc
import contextlib
import types
from collections.abc import AsyncIterator
from typing import Any

from .base_script import BaseScript

#: The block options, in the form of the scripts' schemas (merge into ``properties``).
BLOCK_SCHEMA_PROPERTIES: dict[str, dict[str, Any]] = {
    "program": {
        "description": "Program this script is related to (e.g. BLOCK-123); written in the image headers.",
        "anyOf": [{"type": "string", "maxLength": 1024}, {"type": "null"}],
        "default": None,
    },
    "reason": {
        "description": "Reason for executing this script; written in the image headers.",
        "anyOf": [{"type": "string", "maxLength": 1024}, {"type": "null"}],
        "default": None,
    },
    "note": {
        "description": "A descriptive note about the images being taken; written in the image headers.",
        "anyOf": [{"type": "string", "maxLength": 1024}, {"type": "null"}],
        "default": None,
    },
}


class BaseBlockScript(BaseScript, abc.ABC):
    """A script that runs one block, framed by Start and Done checkpoints.

    Subclasses implement `run_block` (not `run`) and call
    `configure_block` from `configure`.

    Attributes
    ----------
    program, reason, note : `str` or None
        The block options, as configured.
    """

    def __init__(self, index: int, descr: str, help: str = "", **kwargs: Any) -> None:
        super().__init__(index, descr, help, **kwargs)
        self.program: str | None = None
        self.reason: str | None = None
        self.note: str | None = None

    def configure_block(self, config: types.SimpleNamespace) -> None:
        """Read ``program``, ``reason`` and ``note``.

        Parameters
        ----------
        config : `types.SimpleNamespace`
            The validated configuration (options it lacks are None).
        """
        self.program = getattr(config, "program", None) or None
        self.reason = getattr(config, "reason", None) or None
        self.note = getattr(config, "note", None) or None

    @property
    def checkpoint_message(self) -> str | None:
        """``<ClassName> <program> [<obs_id>][ <reason>]``; None without a program.

        Spaced exactly as ts_standardscripts' BaseBlockScript (so without an
        obs id there are two spaces before the reason).
        """
        if self.program is None:
            return None
        message = f"{type(self).__name__} {self.program} "
        if self.obs_id:
            message += f"{self.obs_id}"
        if self.reason is not None:
            message += f" {self.reason}"
        return message

    @property
    def block_group_id(self) -> str:
        """The images' group id: ``<obs_id>_<salIndex>`` with an obs id, else the script's group id."""
        if self.obs_id:
            return f"{self.obs_id}_{self.salinfo.index}"
        return self.group_id

    @property
    def n_block_checkpoints(self) -> int:
        """The checkpoints the block adds: Start and Done with a program, else none."""
        return 0 if self.checkpoint_message is None else 2

    @contextlib.asynccontextmanager
    async def program_reason(self) -> AsyncIterator[None]:
        """Checkpoints ``<message>: Start`` before and ``<message>: Done`` after the block."""
        try:
            if self.checkpoint_message is not None:
                await self.checkpoint(f"{self.checkpoint_message}: Start")
            yield
        finally:
            if self.checkpoint_message is not None:
                await self.checkpoint(f"{self.checkpoint_message}: Done")

    async def run(self) -> None:
        """Run the block between its Start and Done checkpoints."""
        async with self.program_reason():
            await self.run_block()

    @abc.abstractmethod
    async def run_block(self) -> None:
        """Run the block."""
        raise NotImplementedError()
