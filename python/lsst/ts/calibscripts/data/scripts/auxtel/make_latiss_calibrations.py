#!/usr/bin/env python
"""Take LATISS calibration images; verify, generate and certify calibrations."""

import asyncio

from lsst.ts.calibscripts.calibrations.make_latiss_calibrations import MakeLatissCalibrations

if __name__ == "__main__":
    asyncio.run(MakeLatissCalibrations.amain())
