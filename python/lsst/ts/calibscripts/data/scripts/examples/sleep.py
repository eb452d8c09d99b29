#!/usr/bin/env python
"""Example script: pass named checkpoints, sleeping at each."""

from lsst.ts.calibscripts.script.sleep_script import SleepScript

if __name__ == "__main__":
    SleepScript.main()
