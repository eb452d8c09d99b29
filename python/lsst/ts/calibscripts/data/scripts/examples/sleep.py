#!/usr/bin/env python
"""Example script: pass named checkpoints, sleeping at each."""

import asyncio

from lsst.ts.calibscripts.script.sleep_script import SleepScript

if __name__ == "__main__":
    asyncio.run(SleepScript.amain())
