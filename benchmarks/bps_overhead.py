"""What bps with the Parsl plugin costs against ``pipetask run``: cpBias on the 9 LSSTComCam detectors.

Run as ``python benchmarks/bps_overhead.py [--n-bias 5] [--geometry full]
[--workdir DIR] [--cores N]``. It simulates ``--n-bias`` biases of every
ComCam detector with the camera model, ingests them into a fresh repository,
then runs the same cpBias job three ways, each exactly as the simulated OCPS
runs it (the executors of `lsst.ts.calibscripts.simulator.executors`):

* ``pipetask run -j 1``;
* ``pipetask run -j 2``;
* bps with the Parsl plugin, ``Local`` site with ``--cores`` workers
  (default: this machine's), quanta clustered per detector (9 bps jobs of
  ``N`` ISR quanta and one combination each), through the OCPS's bps
  driver.

For each it prints the wall time and the CPU time (user + system of every
process of the run: the benchmark makes itself the child subreaper, so
Parsl's worker pool, which its launcher leaves to init, is counted too), and
for bps the time of its stages (quantum graph, pipetaskInit and Parsl start,
the jobs, the final job). Then the ratios. ``LSSTCam`` (189 detectors) will
be added once the package describes its focal plane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
from astropy.time import Time
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, write_raw
from lsst.ts.calibscripts.cp.butler.repository import create_repository, raw_collection
from lsst.ts.calibscripts.cp.camera.description import LSST_COMCAM
from lsst.ts.calibscripts.cp.camera.geometry import DetectorGeometry, itl_geometry, reduced_itl_geometry
from lsst.ts.calibscripts.simulator.camera_model import CameraModel
from lsst.ts.calibscripts.simulator.executors.base import JobExecutor, JobRequest
from lsst.ts.calibscripts.simulator.executors.bps import BpsExecutor
from lsst.ts.calibscripts.simulator.executors.bps_site import local_site
from lsst.ts.calibscripts.simulator.executors.pipetask import PipetaskExecutor
from lsst.ts.calibscripts.simulator.ocps_job import JobParameters

DAY_OBS = 20220929
PIPELINE = "${CP_PIPE_DIR}/pipelines/LSSTComCam/cpBias.yaml"
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Measure:
    name: str
    wall: float
    cpu: float
    stages: dict[str, float]


def simulate_biases(directory: Path, n_bias: int, geometry: DetectorGeometry) -> tuple[list[Path], list[int]]:
    """Write ``n_bias`` biases of each ComCam detector (or re-use them); return files and exposure ids."""
    directory.mkdir(parents=True, exist_ok=True)
    models = {d.id: CameraModel(d, geometry, seed=1 + d.id) for d in LSST_COMCAM.detectors}
    clock = Time("2022-09-29T20:00:00", scale="tai")
    files, exposures = [], []
    for seq_num in range(1, n_bias + 1):
        metadata = ObservationMetadata(
            instrument="LSSTComCam",
            obs_id=LSST_COMCAM.obs_id(DAY_OBS, seq_num),
            day_obs=DAY_OBS,
            seq_num=seq_num,
            img_type="BIAS",
            exposure_time=0.0,
            dark_time=0.0,
            date_obs=clock,
            date_end=clock,
            filter="r_03",
            grating=None,
            group_id=clock.isot,
            reason="bias",
            program="CALIB",
        )
        exposures.append(metadata.exposure_id)
        for detector in LSST_COMCAM.detectors:
            path = directory / f"{metadata.obs_id}_{detector.full_name}.fits"
            if not path.exists():
                amps = models[detector.id].expose("BIAS", 0.0)
                write_raw(path, metadata, detector, geometry, amps, overwrite=True)
            files.append(path)
        clock = clock + 3 * u.s
    return files, exposures


def become_subreaper() -> None:
    """Make orphaned descendants (Parsl's worker pool) this process's children, for their CPU time."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: not a child subreaper; CPU of orphaned processes is not counted", file=sys.stderr)


def reap_descendants(timeout: float = 60.0) -> None:
    """Wait for every descendant left (so that its CPU time is counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def stage_seconds(status_path: Path) -> dict[str, float]:
    """Seconds between the bps driver's stages."""
    status = json.loads(status_path.read_text())
    times = {k: datetime.datetime.fromisoformat(v) for k, v in status["stageTimes"].items()}
    order = ["preparing", "starting", "running", "finalizing", "done"]
    names = {
        "preparing": "quantum graph",
        "starting": "pipetaskInit + Parsl start",
        "running": "jobs",
        "finalizing": "final job",
    }
    return {
        names[a]: (times[b] - times[a]).total_seconds()
        for a, b in itertools.pairwise(order)
        if a in times and b in times
    }


def run_job(executor: JobExecutor, name: str, repo: Path, config: str, query: str, scratch: Path) -> Measure:
    """Run one job as the OCPS does and measure it."""
    job_id = f"{name.replace(' ', '').replace('-', '')}{int(time.time())}"
    job_dir = scratch / "uws" / job_id
    job_dir.mkdir(parents=True)
    request = JobRequest(
        job_id=job_id,
        instrument="LSSTComCam",
        repo=str(repo),
        raw_collection=raw_collection("LSSTComCam"),
        parameters=JobParameters(pipeline=PIPELINE, config=config, data_query=query),
        job_dir=job_dir,
    )
    process = asyncio.run(executor.prepare(request))
    log_path = job_dir / "outs" / "ocps.log"
    log_path.parent.mkdir(parents=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log_path.open("wb") as log:
        completed = subprocess.run(
            process.command,
            env=process.env,
            cwd=process.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall = time.perf_counter() - start
    reap_descendants()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        sys.exit(f"{name} failed with exit code {completed.returncode}; see {log_path}")
    with Butler.from_config(str(repo)) as butler:
        biases = butler.query_datasets("bias", collections=f"u/ocps/{job_id}", instrument="LSSTComCam")
    if len(biases) != len(LSST_COMCAM.detectors):
        sys.exit(f"{name}: {len(biases)} biases in u/ocps/{job_id}, expected {len(LSST_COMCAM.detectors)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    status = job_dir / "bps_status.json"
    return Measure(name, wall, cpu, stage_seconds(status) if status.exists() else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bias", type=int, default=5, help="biases per detector (default 5)")
    parser.add_argument("--geometry", choices=["full", "reduced"], default="full", help="detector size")
    parser.add_argument(
        "--cores", type=int, default=None, help="bps Local site cores (default: this machine's)"
    )
    parser.add_argument("--workdir", type=Path, help="keep raws and repository here (default: temporary)")
    args = parser.parse_args()
    become_subreaper()
    geometry = itl_geometry() if args.geometry == "full" else reduced_itl_geometry()
    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bps-overhead-")))
        start = time.perf_counter()
        files, exposures = simulate_biases(root / "raws", args.n_bias, geometry)
        repo = root / f"repo-{int(time.time())}"
        create_repository(repo, ["LSSTComCam"])
        with Butler.from_config(str(repo), writeable=True) as butler:
            ingest_raws(butler, files)
        print(
            f"{len(files)} raws ({args.n_bias} biases x {len(LSST_COMCAM.detectors)} detectors, "
            f"{args.geometry} geometry) in {repo}, ready after {time.perf_counter() - start:.0f} s"
        )
        query = f"instrument='LSSTComCam' AND exposure IN ({', '.join(map(str, exposures))})"
        scratch = root / "scratch"
        site = local_site(args.cores)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; bps: {site.describe()}")
        runs = [
            ("pipetask -j 1", PipetaskExecutor(), "-j 1 --register-dataset-types"),
            ("pipetask -j 2", PipetaskExecutor(), "-j 2 --register-dataset-types"),
            ("bps per detector", BpsExecutor(site), "--register-dataset-types"),
        ]
        measures = []
        for name, executor, config in runs:
            measure = run_job(executor, name, repo, config, query, scratch)
            measures.append(measure)
            print(f"{name:<18} wall {measure.wall:7.1f} s   CPU {measure.cpu:7.1f} s", flush=True)
            for stage, seconds in measure.stages.items():
                print(f"    {stage:<28} {seconds:6.1f} s")
        base = measures[0]
        print("ratios (wall, CPU) to pipetask -j 1:")
        for measure in measures[1:]:
            print(f"    {measure.name:<18} {measure.wall / base.wall:5.2f}  {measure.cpu / base.cpu:5.2f}")
        print(
            f"    bps / pipetask -j 2    {measures[2].wall / measures[1].wall:5.2f}  "
            f"{measures[2].cpu / measures[1].cpu:5.2f}"
        )
        print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
