#!/usr/bin/env python
"""Take LSSTComCam biases; generate, verify and certify the combined bias."""

import asyncio

from lsst.ts.calibscripts.calibrations.make_comcam_bias import MakeComCamBias

if __name__ == "__main__":
    asyncio.run(MakeComCamBias.amain())
