"""Fixtures of the OCPS tests (test_ocps.py, test_ocps_bps.py): a small repository and a Remote.

Each test module provides the ``ocps`` fixture (pipetask or bps executor);
``remote`` talks to whichever it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsst.daf.butler import Butler, CollectionType

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry
from lsst.ts.calibscripts.simulator.ocps import OcpsCsc

from ..cp.butler.simulated_night import SimulatedNight


@dataclasses.dataclass
class LatissRepo:
    repo: Path
    biases: list[int]


@pytest.fixture(scope="module")
def latiss_repo(tmp_path_factory: pytest.TempPathFactory) -> LatissRepo:
    """Three reduced-geometry LATISS biases and an empty LATISS/calib (one repository per module)."""
    root = tmp_path_factory.mktemp("ocps")
    repo = create_repository(root / "repo", ["LATISS"])
    night = SimulatedNight(root / "raws", LATISS, reduced_itl_geometry(), seed=5)
    biases = night.take("BIAS", [0.0] * 3)
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
        # The scripts pass "-i LATISS/calib": it must exist, even empty.
        butler.collections.register("LATISS/calib", CollectionType.CALIBRATION)
    return LatissRepo(repo, biases)


@pytest.fixture
async def domain() -> AsyncIterator[sal.Domain]:
    async with sal.Domain() as domain:
        yield domain


@pytest.fixture
async def remote(domain: sal.Domain, ocps: OcpsCsc) -> AsyncIterator[sal.Remote]:
    async with sal.Remote(domain, "OCPS", 1) as remote:
        yield remote
