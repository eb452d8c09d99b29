"""Wall time and peak memory of ``pipetask run`` cpBias (and verifyBias) on 20 full-size LATISS raws.

Run as ``python benchmarks/pipetask_cpbias.py [--n-bias 20] [--jobs 1]
[--repeat 1] [--no-verify] [--workdir DIR]``. It simulates the biases with the
camera model (full ITL geometry, 4072 x 4000 assembled), writes and ingests
them into a fresh repository, then runs the cpBias pipeline exactly as the
OCPS does (a ``pipetask`` subprocess), and the verifyBias pipeline on the same
raws against that bias (internal verification, as the daily default does it).
For each run it prints:

* the wall time of the pipetask run, and its CPU time (user + system of
  pipetask and its workers: on a shared machine the wall time varies with the
  load, the CPU time much less);
* the time of each task in its quanta: total and median per quantum (the
  ISR median is the time per raw);
* the peak resident memory of the largest pipetask process so far;

and the size of one raw, one ISR output (``cpBiasProc``) and the combined
bias on disk. ``--repeat N`` runs cpBias N times (new output runs) and
reports each, so that a median can be taken on a busy machine.

The floor: in the same run, just before the pipelines, the time to decode
the same raws with the package's reader
(`lsst.ts.calibscripts.cp.butler.raw_file.read_raw`, files in the page
cache as pipetask finds them). Each wall time is also printed as a multiple
of that floor (the goals of issue 16: cpBias <= 3x, verifyBias <= 5x).
``--workdir DIR`` keeps the raws and the repository (``DIR/repo``, or
``DIR/repo-<n>`` if that exists, the raws re-used) so that the products of
two versions can be compared array by array. ``--geometry reduced`` uses
the reduced ITL geometry the tests use (to see where ``-j 2`` pays).
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import astropy.units as u
from astropy.time import Time
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.pipeline_locations import (
    generation_pipeline,
    pipeline_environment,
    verification_pipeline,
)
from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, read_raw, write_raw
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import DetectorGeometry, itl_geometry, reduced_itl_geometry
from lsst.ts.calibscripts.simulator.camera_model import CameraModel

DAY_OBS = 20220929


def simulate_biases(directory: Path, n_bias: int, geometry: DetectorGeometry) -> list[Path]:
    """Write ``n_bias`` LATISS bias raws (or re-use those already there); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    detector = LATISS.detector(0)
    model = CameraModel(detector, geometry, seed=1)
    clock = Time("2022-09-29T20:00:00", scale="tai")
    files = []
    for seq_num in range(1, n_bias + 1):
        metadata = ObservationMetadata(
            instrument="LATISS",
            obs_id=LATISS.obs_id(DAY_OBS, seq_num),
            day_obs=DAY_OBS,
            seq_num=seq_num,
            img_type="BIAS",
            exposure_time=0.0,
            dark_time=0.0,
            date_obs=clock,
            date_end=clock,
            grating="empty",
            group_id="bench",
        )
        path = directory / f"{metadata.obs_id}_RXX_S00.fits"
        files.append(path)
        clock = clock + 3 * u.s
        if path.exists():
            continue
        write_raw(path, metadata, detector, geometry, model.expose("BIAS"), overwrite=True)
    return files


def task_seconds(log: str) -> dict[str, list[float]]:
    """Per-quantum execution times pipetask logged, by task label."""
    times: dict[str, list[float]] = {}
    for label, seconds in re.findall(r"Execution of task '(\w+)' on quantum .*? took ([\d.]+) seconds", log):
        times.setdefault(label, []).append(float(seconds))
    return times


def decode_floor(files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds to decode every raw with the package's reader (best of two passes).

    The reader decodes amplifiers in threads: its CPU time is the work
    itself, what one core would take.
    """
    best = (float("inf"), float("inf"))
    for _ in range(2):
        start, cpu = time.perf_counter(), time.process_time()
        for path in files:
            read_raw(path)
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def run_pipetask(
    repo: Path,
    pipeline: str,
    inputs: list[str],
    output: str,
    query: str,
    options: list[str],
    floor: float,
) -> bool:
    """Run one pipetask as the OCPS does and print its timings; return whether it succeeded."""
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
        "--register-dataset-types",
        *options,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, env=pipeline_environment(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        print(completed.stderr[-4000:], file=sys.stderr)
        return False
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of the children: the largest peak of any finished descendant, in KiB.
    peak_mib = after.ru_maxrss / 1024
    print(
        f"  {output}: wall {wall:6.1f} s ({wall / floor:4.1f} x floor), CPU {cpu:6.1f} s, "
        f"peak RSS so far {peak_mib:5.0f} MiB"
    )
    for label, seconds in task_seconds(completed.stdout + completed.stderr).items():
        print(
            f"    {label:<16} {sum(seconds):7.1f} s in {len(seconds):2d} quanta, "
            f"median {statistics.median(seconds):6.2f} s"
        )
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bias", type=int, default=20, help="Number of biases (default 20).")
    parser.add_argument("--jobs", type=int, default=1, help="pipetask -j (default 1).")
    parser.add_argument("--repeat", type=int, default=1, help="cpBias runs (default 1).")
    parser.add_argument("--no-verify", action="store_true", help="Skip the verifyBias run.")
    parser.add_argument(
        "--no-residual",
        action="store_true",
        help="Also run verifyBias without writing the residual images (verifyBiasIsr:doWriteResidual=False).",
    )
    parser.add_argument("--workdir", type=Path, help="Keep the repository here (default: a temporary dir).")
    parser.add_argument(
        "--geometry", choices=("full", "reduced"), default="full", help="Detector geometry (default full)."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cpbias-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        start = time.perf_counter()
        geometry = itl_geometry() if args.geometry == "full" else reduced_itl_geometry()
        files = simulate_biases(workdir / f"raws-{args.geometry}", args.n_bias, geometry)
        simulated = time.perf_counter() - start
        repo_path = workdir / "repo"
        index = 0
        while repo_path.exists():
            index += 1
            repo_path = workdir / f"repo-{index}"
        repo = create_repository(repo_path, ["LATISS"])
        start = time.perf_counter()
        with Butler.from_config(str(repo), writeable=True) as butler:
            exposures = ingest_raws(butler, files).exposures
        ingested = time.perf_counter() - start
        query = f"instrument='LATISS' AND exposure IN ({', '.join(map(str, exposures))})"
        jobs = ["-j", str(args.jobs)]

        rows, columns = geometry.assembled_shape
        print(f"{args.n_bias} {args.geometry} LATISS biases ({columns} x {rows}), pipetask -j {args.jobs}")
        print(f"  repository: {repo}")
        print(f"  simulate + write raws: {simulated:7.1f} s   ingest: {ingested:5.1f} s")
        floor, floor_cpu = decode_floor(files)
        print(
            f"  floor: decoding the {len(files)} raws with read_raw: {floor:5.2f} s "
            f"({floor_cpu:5.2f} s of CPU, i.e. on one core)"
        )
        output = ""
        for run in range(args.repeat):
            output = f"u/bench/cpBias{run}"
            pipeline = str(generation_pipeline("LATISS", "cpBias"))
            if not run_pipetask(
                repo,
                pipeline,
                ["LATISS/raw/all"],
                output,
                query,
                [*jobs, "-c", "isr:doDefect=False"],
                floor,
            ):
                return 1
        if not args.no_verify:
            pipeline = str(verification_pipeline("LATISS", "verifyBias"))
            options = [*jobs, "-c", "verifyBiasIsr:doDefect=False"]
            if not run_pipetask(
                repo, pipeline, ["LATISS/raw/all", output], "u/bench/verifyBias", query, options, floor
            ):
                return 1
            if args.no_residual and not run_pipetask(
                repo,
                pipeline,
                ["LATISS/raw/all", output],
                "u/bench/verifyBiasNoResidual",
                query,
                [*options, "-c", "verifyBiasIsr:doWriteResidual=False"],
                floor,
            ):
                return 1
        with Butler.from_config(str(repo), collections=[output]) as butler:
            bias_path = Path(butler.getURI("bias", instrument="LATISS", detector=0).ospath)
            proc_path = Path(
                butler.getURI("cpBiasProc", instrument="LATISS", detector=0, exposure=exposures[0]).ospath
            )
        sizes = [
            f"{name} {path.stat().st_size / 2**20:.1f} MiB"
            for name, path in (("raw", files[0]), ("cpBiasProc", proc_path), ("bias", bias_path))
        ]
        print(f"  on disk: {', '.join(sizes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
