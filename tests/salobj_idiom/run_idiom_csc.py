#!/usr/bin/env python
"""The executable of IdiomCsc, as in a salobj CSC package."""

import asyncio
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.salobj_idiom.idiom_csc import IdiomCsc

if __name__ == "__main__":
    asyncio.run(IdiomCsc.amain(index=True))
