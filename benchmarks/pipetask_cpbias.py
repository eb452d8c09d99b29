"""Wall time and peak memory of ``pipetask run`` cpBias on 20 full-size LATISS raws.

Run as ``python benchmarks/pipetask_cpbias.py [--n-bias 20] [--jobs 1]
[--workdir DIR]``. It simulates the biases with the camera model (full ITL
geometry, 4072 x 4000 assembled), writes and ingests them into a fresh
repository, then runs the cpBias pipeline exactly as the OCPS does (a
``pipetask`` subprocess) and prints:

* the wall time of the whole pipetask run and of its two tasks (from the
  per-quantum timings pipetask logs);
* the peak resident memory of the pipetask process;
* the size of one raw and of the combined bias on disk.
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

import astropy.units as u
from astropy.time import Time
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.camera_description import LATISS
from lsst.ts.calibscripts.cp.geometry import itl_geometry
from lsst.ts.calibscripts.cp.ingest import ingest_raws
from lsst.ts.calibscripts.cp.pipeline_locations import generation_pipeline, pipeline_environment
from lsst.ts.calibscripts.cp.raw_file import ObservationMetadata, write_raw
from lsst.ts.calibscripts.cp.repository import create_repository
from lsst.ts.calibscripts.simulator.camera_model import CameraModel

DAY_OBS = 20220929


def simulate_biases(directory: Path, n_bias: int) -> list[Path]:
    """Write ``n_bias`` full-size LATISS bias raws; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    detector = LATISS.detector(0)
    geometry = itl_geometry()
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
        write_raw(path, metadata, detector, geometry, model.expose("BIAS"), overwrite=True)
        files.append(path)
        clock = clock + 3 * u.s
    return files


def task_seconds(log: str) -> dict[str, float]:
    """Sum the per-quantum execution times pipetask logged, by task label."""
    totals: dict[str, float] = {}
    for label, seconds in re.findall(r"Execution of task '(\w+)' on quantum .*? took ([\d.]+) seconds", log):
        totals[label] = totals.get(label, 0.0) + float(seconds)
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bias", type=int, default=20, help="Number of biases (default 20).")
    parser.add_argument("--jobs", type=int, default=1, help="pipetask -j (default 1).")
    parser.add_argument("--workdir", type=Path, help="Keep the repository here (default: a temporary dir).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cpbias-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        start = time.perf_counter()
        files = simulate_biases(workdir / "raws", args.n_bias)
        simulated = time.perf_counter() - start
        repo = create_repository(workdir / "repo", ["LATISS"])
        start = time.perf_counter()
        with Butler.from_config(str(repo), writeable=True) as butler:
            exposures = ingest_raws(butler, files).exposures
        ingested = time.perf_counter() - start

        command = [
            str(Path(sys.executable).parent / "pipetask"),
            "run",
            "-b",
            str(repo),
            "-i",
            "LATISS/raw/all",
            "-o",
            "u/bench/cpBias",
            "-p",
            str(generation_pipeline("LATISS", "cpBias")),
            "-d",
            f"instrument='LATISS' AND exposure IN ({', '.join(map(str, exposures))})",
            "-j",
            str(args.jobs),
            "--register-dataset-types",
            "-c",
            "isr:doDefect=False",
        ]
        start = time.perf_counter()
        completed = subprocess.run(command, env=pipeline_environment(), capture_output=True, text=True)
        wall = time.perf_counter() - start
        if completed.returncode != 0:
            print(completed.stderr[-4000:], file=sys.stderr)
            return 1
        # ru_maxrss of the children: the largest peak of any finished child, in KiB.
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        per_task = task_seconds(completed.stdout + completed.stderr)
        with Butler.from_config(str(repo), collections=["u/bench/cpBias"]) as butler:
            bias_path = Path(butler.getURI("bias", instrument="LATISS", detector=0).ospath)

        print(f"cpBias on {args.n_bias} full-size LATISS raws (4072 x 4000), pipetask -j {args.jobs}")
        print(f"  simulate + write raws: {simulated:7.1f} s   ingest: {ingested:5.1f} s")
        print(f"  pipetask wall time:    {wall:7.1f} s")
        for label, seconds in per_task.items():
            print(f"    {label:<16} {seconds:7.1f} s in quanta")
        print(f"  pipetask peak RSS:     {peak_mib:7.0f} MiB")
        raw_mib = files[0].stat().st_size / 2**20
        bias_mib = bias_path.stat().st_size / 2**20
        print(f"  raw file {raw_mib:.1f} MiB, combined bias {bias_mib:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
