#!/usr/bin/env python
"""The executable of IdiomScript, as in ts_standardscripts."""

import asyncio
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.salobj_idiom.idiom_script import IdiomScript

if __name__ == "__main__":
    asyncio.run(IdiomScript.amain())
