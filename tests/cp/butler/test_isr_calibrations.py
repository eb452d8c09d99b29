"""How the tasks read the images they apply or measure (only the planes they use)."""

from __future__ import annotations

import numpy as np

from lsst.ts.calibscripts.cp.tasks import isr
from lsst.ts.calibscripts.cp.tasks.image_conventions import read_without_variance

from .conftest import LatissCalibrations, LatissNight


def test_calibration_planes_match_the_dataset(
    latiss_night: LatissNight, latiss_calibrations: LatissCalibrations
) -> None:
    with latiss_night.butler(latiss_calibrations.bias) as butler:
        ref = butler.find_dataset("bias", instrument="LATISS", detector=0)
        assert ref is not None
        full = butler.get(ref)
        planes = isr.CalibrationPlanes.read(butler.getDeferred(ref))
    assert np.array_equal(planes.image, full.image.array, equal_nan=True)
    assert np.array_equal(planes.bad, full.mask.get("BAD"))
    assert planes.metadata == dict(full.metadata)
    # Shared between quanta: nobody may change them in place.
    assert not planes.image.flags.writeable and not planes.bad.flags.writeable


def test_calibrations_are_read_once_per_process(
    latiss_night: LatissNight, latiss_calibrations: LatissCalibrations
) -> None:
    with latiss_night.butler(latiss_calibrations.bias, latiss_calibrations.dark) as butler:
        bias = butler.find_dataset("bias", instrument="LATISS", detector=0)
        dark = butler.find_dataset("dark", instrument="LATISS", detector=0)
        assert bias is not None and dark is not None
        first = isr._read_calibration("bias", butler.getDeferred(bias))
        assert isr._read_calibration("bias", butler.getDeferred(bias)) is first
        # Another dataset under the same connection replaces it.
        other = isr._read_calibration("bias", butler.getDeferred(dark))
        assert other is not first
        assert isr._calibration_cache["bias"][0] == dark.id


def test_read_without_variance(latiss_night: LatissNight, latiss_calibrations: LatissCalibrations) -> None:
    with latiss_night.butler(latiss_calibrations.dark) as butler:
        exposure = latiss_night.darks[0]
        ref = butler.find_dataset("cpDarkProc", instrument="LATISS", detector=0, exposure=exposure)
        assert ref is not None
        full = butler.get(ref)
        light = read_without_variance(butler.getDeferred(ref))
    assert np.array_equal(light.image.array, full.image.array, equal_nan=True)
    assert np.array_equal(light.mask.array, full.mask.array)
    assert dict(light.metadata) == dict(full.metadata)
    assert light.image.bbox == full.image.bbox
