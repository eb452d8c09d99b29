"""Does ``pipetask -j 2`` pay? Wall and CPU time of every calibration job type at ``-j 1`` and ``-j 2``.

Run as ``python benchmarks/pipetask_jobs.py [--geometry reduced|full] [--n 10]
[--jobs 1 2] [--workdir DIR]``. It simulates ``--n`` biases, darks (60 s) and
flats (pairs of equal exposure time) of LATISS with the camera model, ingests
them into a fresh repository per ``-j`` value, and runs the chain as the
calibration scripts do (``pipetask`` subprocesses): cpBias, verifyBias
(internal), cpDark, verifyDark, cpFlat, verifyFlat and the gain from flat
pairs, certifying each product for the next. For each job and each ``-j``
it prints the wall time, the CPU time (pipetask and its workers) and the
number of quanta, then the ratio of the ``-j 2`` to the ``-j 1`` wall time.

``pipetask -j N`` starts a new process for every quantum (the spawn start
method), which imports the middleware again: a quantum must save more than
that start-up to pay. The machine is shared: run it twice and compare.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.pipeline_locations import (
    generation_pipeline,
    pipeline_environment,
    verification_pipeline,
)
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import itl_geometry, reduced_itl_geometry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cp.butler.simulated_night import SimulatedNight

CALIB = "LATISS/calib/bench"
RAW = "LATISS/raw/all"


def run(repo: Path, pipeline: str, inputs: list[str], output: str, exposures: list[int], jobs: int) -> tuple:
    """Run one pipetask job; return (wall, CPU, quanta)."""
    query = f"instrument='LATISS' AND exposure IN ({', '.join(map(str, exposures))})"
    command = [
        str(Path(sys.executable).parent / "pipetask"),
        "run",
        "-b",
        str(repo),
        "-i",
        ",".join(inputs),
        "-o",
        output,
        "-p",
        pipeline,
        "-d",
        query,
        "-j",
        str(jobs),
        "--register-dataset-types",
    ]
    if "cp_pipe" in pipeline:
        command += ["-c", "isr:doDefect=False"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, env=pipeline_environment(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        print(completed.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{output} failed")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    quanta = re.findall(r"Executed (\d+) quanta successfully", completed.stdout + completed.stderr)
    return wall, cpu, int(quanta[-1]) if quanta else 0


def chain(repo: Path, night: dict[str, list[int]], jobs: int) -> dict[str, tuple]:
    """Run the daily chain into ``repo``; return each job's timings."""
    times = {}
    period = {"begin_date": "1950-01-01", "end_date": "2050-01-01"}
    times["cpBias"] = run(
        repo, str(generation_pipeline("LATISS", "cpBias")), [RAW], "u/b/cpBias", night["BIAS"], jobs
    )
    certify_calibrations(repo, "u/b/cpBias", CALIB, "bias", **period)
    times["verifyBias"] = run(
        repo,
        str(verification_pipeline("LATISS", "verifyBias")),
        [RAW, "u/b/cpBias"],
        "u/b/vBias",
        night["BIAS"],
        jobs,
    )
    times["cpDark"] = run(
        repo, str(generation_pipeline("LATISS", "cpDark")), [RAW, CALIB], "u/b/cpDark", night["DARK"], jobs
    )
    certify_calibrations(repo, "u/b/cpDark", CALIB, "dark", **period)
    times["verifyDark"] = run(
        repo,
        str(verification_pipeline("LATISS", "verifyDark")),
        [RAW, CALIB],
        "u/b/vDark",
        night["DARK"],
        jobs,
    )
    times["cpFlat"] = run(
        repo, str(generation_pipeline("LATISS", "cpFlat")), [RAW, CALIB], "u/b/cpFlat", night["FLAT"], jobs
    )
    certify_calibrations(repo, "u/b/cpFlat", CALIB, "flat", **period)
    times["verifyFlat"] = run(
        repo,
        str(verification_pipeline("LATISS", "verifyFlat")),
        [RAW, CALIB],
        "u/b/vFlat",
        night["FLAT"],
        jobs,
    )
    gain = f"{generation_pipeline('LATISS', 'cpPtc')}#cpPtcGainFromFlatPairs"
    times["gain from flat pairs"] = run(repo, gain, [RAW, CALIB], "u/b/gain", night["FLAT"], jobs)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", choices=("full", "reduced"), default="reduced")
    parser.add_argument("--n", type=int, default=10, help="Exposures of each type (default 10).")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="-j values (default 1 2).")
    parser.add_argument("--workdir", type=Path, help="Keep raws and repositories here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        geometry = itl_geometry() if args.geometry == "full" else reduced_itl_geometry()
        simulated = SimulatedNight(workdir / f"raws-{args.geometry}-{args.n}", LATISS, geometry, seed=5)
        night = {
            "BIAS": simulated.take("BIAS", [0.0] * args.n),
            "DARK": simulated.take("DARK", [60.0] * args.n),
            "FLAT": simulated.take("FLAT", [5.0] * (2 * (args.n // 2)), flux=2000.0),
        }
        results = {}
        for jobs in args.jobs:
            repo = create_repository(workdir / f"repo-{args.geometry}-j{jobs}-{time.time_ns()}", ["LATISS"])
            with Butler.from_config(str(repo), writeable=True) as butler:
                ingest_raws(butler, simulated.files)
            results[jobs] = chain(repo, night, jobs)
        rows, columns = geometry.assembled_shape
        print(f"{args.n} LATISS exposures of each type, {args.geometry} geometry ({columns} x {rows})")
        header = "  ".join(f"-j {jobs}: wall (CPU) s" for jobs in args.jobs)
        print(f"  {'job':<22}{'quanta':>7}  {header}")
        for job in results[args.jobs[0]]:
            cells = "  ".join(f"{results[j][job][0]:8.1f} ({results[j][job][1]:6.1f})    " for j in args.jobs)
            ratio = ""
            if len(args.jobs) > 1:
                first, last = results[args.jobs[0]][job][0], results[args.jobs[-1]][job][0]
                ratio = f"  -j {args.jobs[-1]} / -j {args.jobs[0]}: {last / first:4.2f}"
            print(f"  {job:<22}{results[args.jobs[0]][job][2]:>7}  {cells}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
