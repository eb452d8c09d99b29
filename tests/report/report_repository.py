"""A small repository with everything a report shows, made as the calibration script makes it.

One simulated night of LATISS (reduced geometry) in a new repository, then
the pipelines the script runs, in its order, each product certified before
the next needs it: bias (with its verification), dark, flat, the photon
transfer curve (its flat pairs give the gains) and the defects, certified
into `CALIB_COLLECTION`. As in the script, each type is verified while the
next one is generated (two pipetask runs at a time). An older bias of three frames, certified into
`OLD_CALIB_COLLECTION` for an earlier validity range, gives the history a
second run.

The darks are few (4): verified against their own combination, their
residual noise is RN x sqrt(3/4), so NOISE fails on every amp of every dark
and the majority rule rejects them: the report's failing exposures.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline, verification_pipeline
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import InstrumentDescription
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry

from ..cp.butler.conftest import DARK_SECONDS, FLAT_FLUX
from ..cp.butler.pipetask_runner import exposure_query, run_pipetask
from ..cp.butler.simulated_night import SimulatedNight

CALIB_COLLECTION = "LATISS/calib/report"
OLD_CALIB_COLLECTION = "LATISS/calib/report-old"
#: Flat exposure times, in pairs: the PTC's points.
FLAT_SECONDS = [0.1, 0.1, 1.0, 1.0, 4.0, 4.0, 10.0, 10.0]
#: Where the simulated observatory writes its raws, inside the repository.
SIMULATED_RAW = "simulated-raw"
DEFAULT_OPTIONS = ["isr:doDefect=False"]


@dataclasses.dataclass
class ReportRepository:
    """The repository and what each step put where."""

    repo: Path
    instrument: str
    night: SimulatedNight
    biases: list[int]
    darks: list[int]
    flats: list[int]
    collections: dict[str, str]

    @property
    def run_collections(self) -> list[str]:
        """The output collections of the run, as a script's log names them."""
        return [
            self.collections[key]
            for key in ("bias", "verifyBias", "dark", "verifyDark", "flat", "verifyFlat", "ptc", "defects")
            if key in self.collections
        ]


def _run(
    repo: Path, instrument: str, pipeline: Path | str, inputs: list[str], output: str, exposures: list[int]
) -> str:
    # The verification pipelines get no options, as from the script.
    options = [] if "verify" in Path(pipeline).name else DEFAULT_OPTIONS
    run_pipetask(
        repo,
        pipeline,
        [f"{instrument}/raw/all", *inputs],
        output,
        exposure_query(instrument, exposures),
        options,
    )
    return output


def _certify(repo: Path, output: str, calib: str, dataset_type: str, begin: str, end: str) -> None:
    certify_calibrations(repo, output, calib, dataset_type, begin_date=begin, end_date=end)


def make_report_repository(
    root: Path,
    instrument: InstrumentDescription,
    *,
    n_bias: int = 12,
    full: bool = True,
    db: str | None = None,
    namespace: str | None = None,
    seed: int = 41,
) -> ReportRepository:
    """Make the repository (see the module's description).

    Parameters
    ----------
    root
        Directory to make it in.
    instrument
        The camera.
    n_bias
        Biases taken.
    full
        Everything; else only the bias and its verification (a quick one).
    db, namespace
        PostgreSQL registry, as `create_repository` takes them.
    seed
        Seed of the camera models.
    """
    name = instrument.name
    kwargs = {} if db is None else {"db": db, "namespace": namespace}
    repo = create_repository(root / "repo", [name], **kwargs)
    night = SimulatedNight(repo / SIMULATED_RAW, instrument, reduced_itl_geometry(), seed=seed)
    biases = night.take("BIAS", [0.0] * n_bias)
    darks = night.take("DARK", [DARK_SECONDS] * 4) if full else []
    flats = night.take("FLAT", FLAT_SECONDS, flux=FLAT_FLUX) if full else []
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    calib = CALIB_COLLECTION.replace("LATISS", name)
    old_calib = OLD_CALIB_COLLECTION.replace("LATISS", name)
    out: dict[str, str] = {}

    def generate(key: str, pipeline: str, inputs: list[str], exposures: list[int], product: str) -> None:
        out[key] = _run(repo, name, generation_pipeline(name, pipeline), inputs, f"u/report/{key}", exposures)
        _certify(repo, out[key], calib, product, "2020-01-01", "2050-01-01")

    def verify(key: str, pipeline: str, inputs: list[str], exposures: list[int]) -> Future[str]:
        # As the script does: a type is verified while the next one is generated (two at a time).
        return jobs.submit(
            _run, repo, name, verification_pipeline(name, pipeline), inputs, f"u/report/{key}", exposures
        )

    with ThreadPoolExecutor(max_workers=1) as jobs:
        old = (
            jobs.submit(
                _run, repo, name, generation_pipeline(name, "cpBias"), [], "u/report/oldBias", biases[:3]
            )
            if full
            else None
        )
        generate("bias", "cpBias", [], biases, "bias")
        verifications = {"verifyBias": verify("verifyBias", "verifyBias", [out["bias"]], biases)}
        if full:
            generate("dark", "cpDark", [calib], darks, "dark")
            verifications["verifyDark"] = verify("verifyDark", "verifyDark", [out["dark"], calib], darks)
            generate("flat", "cpFlat", [calib], flats, "flat")
            verifications["verifyFlat"] = verify("verifyFlat", "verifyFlat", [out["flat"], calib], flats)
            generate("ptc", "cpPtc", [calib], flats, "ptc")
            generate("defects", "cpDefects", [calib], darks + flats, "defects")
        out.update({key: future.result() for key, future in verifications.items()})
        if old is not None:
            out["oldBias"] = old.result()
            _certify(repo, out["oldBias"], old_calib, "bias", "2000-01-01", "2020-01-01")
    return ReportRepository(repo, name, night, biases, darks, flats, out)
