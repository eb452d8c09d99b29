"""Session fixtures of the Butler tests: repositories with simulated raws.

Building raws and running pipetask costs seconds, so each repository is made
once per session and shared; tests write into their own output collections
and never modify what another test reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS, LSST_COMCAM
from lsst.ts.calibscripts.cp.camera.geometry import make_itl_geometry, reduced_itl_geometry

from .pipetask_runner import exposure_query, run_pipetask
from .simulated_night import SimulatedNight

# Long darks: at 1e-3..1e-2 e-/s the dark current only stands out of the
# 8-10 e- read noise after minutes.
DARK_SECONDS = 300.0
# About 10^4 e- (~9 000 ADU) per pixel at the detector centre in 5 s.
FLAT_FLUX = 2000.0
FLAT_SECONDS = 5.0
CALIB_COLLECTION = "LATISS/calib/test"


@dataclasses.dataclass
class LatissNight:
    """A LATISS repository with one simulated night of calibration raws."""

    repo: Path
    night: SimulatedNight
    biases: list[int]
    darks: list[int]
    flats: list[int]

    def butler(self, *collections: str) -> Butler:
        return Butler.from_config(str(self.repo), collections=list(collections))


@pytest.fixture(scope="session")
def latiss_night(tmp_path_factory: pytest.TempPathFactory) -> LatissNight:
    """LATISS, reduced geometry: 20 biases, 5 darks of 300 s, 6 flats of 5 s."""
    root = tmp_path_factory.mktemp("latiss")
    repo = create_repository(root / "repo", ["LATISS"])
    night = SimulatedNight(root / "raws", LATISS, reduced_itl_geometry(), seed=11)
    biases = night.take("BIAS", [0.0] * 20)
    darks = night.take("DARK", [DARK_SECONDS] * 5)
    flats = night.take("FLAT", [FLAT_SECONDS] * 6, flux=FLAT_FLUX)
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    return LatissNight(repo, night, biases, darks, flats)


@dataclasses.dataclass
class LatissCalibrations:
    """Output collections of the bias, dark and flat generation runs."""

    bias: str
    dark: str
    flat: str
    calib: str


@pytest.fixture(scope="session")
def latiss_calibrations(latiss_night: LatissNight) -> LatissCalibrations:
    """Run cpBias (20), cpDark, cpFlat, certifying each for the next, as the script does."""
    repo = latiss_night.repo
    raw = "LATISS/raw/all"
    default_options = ["isr:doDefect=False"]
    run_pipetask(
        repo,
        generation_pipeline("LATISS", "cpBias"),
        [raw],
        "u/test/cpBias",
        exposure_query("LATISS", latiss_night.biases),
        default_options,
    )
    certify_calibrations(
        repo, "u/test/cpBias", CALIB_COLLECTION, "bias", begin_date="1950-01-01", end_date="2050-01-01"
    )
    run_pipetask(
        repo,
        generation_pipeline("LATISS", "cpDark"),
        [raw, CALIB_COLLECTION],
        "u/test/cpDark",
        exposure_query("LATISS", latiss_night.darks),
        default_options,
    )
    certify_calibrations(
        repo, "u/test/cpDark", CALIB_COLLECTION, "dark", begin_date="1950-01-01", end_date="2050-01-01"
    )
    run_pipetask(
        repo,
        generation_pipeline("LATISS", "cpFlat"),
        [raw, CALIB_COLLECTION],
        "u/test/cpFlat",
        exposure_query("LATISS", latiss_night.flats),
        default_options,
    )
    certify_calibrations(
        repo, "u/test/cpFlat", CALIB_COLLECTION, "flat", begin_date="1950-01-01", end_date="2050-01-01"
    )
    return LatissCalibrations("u/test/cpBias", "u/test/cpDark", "u/test/cpFlat", CALIB_COLLECTION)


BIAS3_OPTIONS = ["isr:doDefect=False", "isr:doCrosstalk=False", "cpBiasCombine:percentiles=[50]"]
"""Options of the 3-bias run; the percentile list shows that ``-c label:field=value`` reaches a task."""


@pytest.fixture(scope="session")
def latiss_bias3(latiss_night: LatissNight) -> str:
    """A combined bias of the first 3 biases, with -c overrides; returns its output collection."""
    output = "u/test/cpBias3"
    run_pipetask(
        latiss_night.repo,
        generation_pipeline("LATISS", "cpBias"),
        ["LATISS/raw/all"],
        output,
        exposure_query("LATISS", latiss_night.biases[:3]),
        BIAS3_OPTIONS,
    )
    return output


@dataclasses.dataclass
class ComCamNight:
    """An LSSTComCam repository with biases and flats of all nine detectors."""

    repo: Path
    night: SimulatedNight
    biases: list[int]
    flats: list[int]
    flat_scale: dict[int, float]


@pytest.fixture(scope="session")
def comcam_night(tmp_path_factory: pytest.TempPathFactory) -> ComCamNight:
    """LSSTComCam, reduced geometry: 2 biases and 2 flats whose illumination differs by detector.

    Two of each keep the 9-detector runs short (pipetask -j 1 costs ~0.2 s
    per quantum; -j N starts a process per quantum and is slower here).
    """
    root = tmp_path_factory.mktemp("comcam")
    repo = create_repository(root / "repo", ["LSSTComCam"])
    night = SimulatedNight(root / "raws", LSST_COMCAM, reduced_itl_geometry(), seed=21)
    biases = night.take("BIAS", [0.0] * 2, filter="r_03", grating=None)
    # A detector-dependent response the flats must keep (one factor per exposure).
    scale = {d: 1.0 + 0.03 * (d - 4) for d in range(9)}
    flats = night.take(
        "FLAT", [FLAT_SECONDS] * 2, flux=FLAT_FLUX, detector_flux_scale=scale, filter="r_03", grating=None
    )
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    return ComCamNight(repo, night, biases, flats, scale)


# Flux and exposure times of the PTC pairs: means from ~30 to ~55 000 ADU.
PTC_FLUX = 1000.0
PTC_SECONDS = [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 60.0]


@dataclasses.dataclass
class PtcNight:
    """A LATISS repository with pairs of flats for the PTC and the pair gains."""

    repo: Path
    night: SimulatedNight
    flats: list[int]


@pytest.fixture(scope="session")
def ptc_night(tmp_path_factory: pytest.TempPathFactory) -> PtcNight:
    """LATISS flat pairs on 256 x 256 amplifiers.

    A pair's variance is known to sqrt(2 / N_pixels); the 1440 pixels an
    amplifier of the reduced geometry keeps inside the 20-pixel edge would
    leave the single-pair gain uncertain by ~4 %, so these flats use larger
    amplifiers (46 656 pixels inside the edge, ~0.7 %).
    """
    root = tmp_path_factory.mktemp("ptc")
    repo = create_repository(root / "repo", ["LATISS"])
    geometry = make_itl_geometry(data_nx=256, data_ny=256, prescan=3, serial_overscan=64, parallel_overscan=8)
    night = SimulatedNight(root / "raws", LATISS, geometry, seed=31)
    times = [t for t in PTC_SECONDS for _ in range(2)]
    flats = night.take("FLAT", times, flux=PTC_FLUX, filter="SDSSr_65mm")
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    return PtcNight(repo, night, flats)
