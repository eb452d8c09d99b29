"""The ``lsst.ts.standardscripts`` names that script tests use.

Port a standardscripts-style test module by changing ``from
lsst.ts.standardscripts import BaseScriptTestCase`` to ``from
lsst.ts.calibscripts.standardscripts import BaseScriptTestCase``.
"""

from __future__ import annotations

__all__ = ["BaseScriptTestCase", "get_scripts_dir"]

import pathlib

from .resources import scripts_dir
from .script.testing import BaseScriptTestCase


def get_scripts_dir() -> pathlib.Path:
    """Return the directory of the script executables (the queue's standard scripts)."""
    return scripts_dir()
