"""Fixtures shared by the pixel-level tests: reduced geometry and a seeded model."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.cp.camera_description import LATISS, DetectorDescription
from lsst.ts.calibscripts.cp.geometry import DetectorGeometry, reduced_itl_geometry
from lsst.ts.calibscripts.simulator.camera_model import CameraModel, CameraModelConfig


@pytest.fixture(scope="session")
def geometry() -> DetectorGeometry:
    return reduced_itl_geometry()


@pytest.fixture(scope="session")
def detector() -> DetectorDescription:
    return LATISS.detector(0)


def make_model(
    detector: DetectorDescription, geometry: DetectorGeometry, seed: int = 7, **config: object
) -> CameraModel:
    """A reduced-geometry LATISS model; keyword arguments override the config."""
    return CameraModel(detector, geometry, seed=seed, config=CameraModelConfig(**config))  # type: ignore[arg-type]


@pytest.fixture
def model(detector: DetectorDescription, geometry: DetectorGeometry) -> CameraModel:
    return make_model(detector, geometry)
