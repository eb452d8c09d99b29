"""Fixtures and helpers shared by the pixel-level tests.

Everything here runs on small geometries with the ITL layout, so that the
whole pixel half of the test suite takes seconds. The helpers chain the
pure algorithms the way the ISR/combine tasks do, without the Butler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.assembly import apply_gains, assemble
from lsst.ts.calibscripts.cp.algorithms.combine import CombineConfig, combine
from lsst.ts.calibscripts.cp.algorithms.overscan import correct_overscan
from lsst.ts.calibscripts.cp.camera.description import LATISS, DetectorDescription
from lsst.ts.calibscripts.cp.camera.geometry import DetectorGeometry, make_itl_geometry, reduced_itl_geometry
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
    """A LATISS model; keyword arguments override the config."""
    return CameraModel(detector, geometry, seed=seed, config=CameraModelConfig(**config))  # type: ignore[arg-type]


@pytest.fixture
def model(detector: DetectorDescription, geometry: DetectorGeometry) -> CameraModel:
    return make_model(detector, geometry)


def medium_geometry() -> DetectorGeometry:
    """ITL layout with 200 x 200 data pixels per amp (and the full 64-column overscan).

    Photon-transfer tests need it: with the 20-pixel edge mask a reduced
    amp keeps only 1440 pixels, i.e. a 3.7% error on one pair's variance;
    here 25600 pixels give 0.9%.
    """
    return make_itl_geometry(data_nx=200, data_ny=200, prescan=3, serial_overscan=64, parallel_overscan=8)


@dataclass
class Processed:
    """An ISR-processed exposure: assembled image and per-amp overscan noise (ADU)."""

    image: np.ndarray
    overscan_noise: dict[str, float]
    amp_data: dict[str, np.ndarray]


def isr(
    raw_amps: dict[str, np.ndarray],
    geometry: DetectorGeometry,
    gains: dict[str, float] | None = None,
    bias: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    dark_time: float = 0.0,
) -> Processed:
    """Overscan, trim, assemble, gains (-> e-), bias and dark subtraction."""
    corrected = correct_overscan(raw_amps, geometry)
    image = assemble({name: r.data for name, r in corrected.items()}, geometry)
    if gains is not None:
        apply_gains(image, geometry, gains)
    if bias is not None:
        image -= bias
    if dark is not None:
        image -= dark * dark_time
    return Processed(
        image=image,
        overscan_noise={name: r.residual_stdev for name, r in corrected.items()},
        amp_data={name: r.data for name, r in corrected.items()},
    )


def combined_bias(
    model: CameraModel, n: int, gains: dict[str, float] | None = None
) -> tuple[np.ndarray, list[Processed]]:
    """Combine ``n`` simulated biases; return the bias and the processed inputs."""
    inputs = [isr(model.expose("BIAS"), model.geometry, gains) for _ in range(n)]
    return combine([p.image for p in inputs], config=CombineConfig()).image, inputs


def amp_means(image: np.ndarray, geometry: DetectorGeometry) -> dict[str, float]:
    return {amp.name: float(np.nanmean(image[amp.detector_slice])) for amp in geometry}


def stack(images: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack(list(images))
