"""Calibration scripts: BaseMakeCalibrations and the instrument scripts."""

from .base_make_calibrations import *
from .make_comcam_bias import *
from .make_latiss_calibrations import *
