#!/usr/bin/env python
"""Take LSSTComCam biases; generate, verify and certify the combined bias."""

from lsst.ts.calibscripts.calibrations.make_comcam_bias import MakeComCamBias

if __name__ == "__main__":
    MakeComCamBias.main()
