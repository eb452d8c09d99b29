"""Per-job overhead of the simulated OCPS: subprocess pipetask vs in-process execution.

The same tiny job (cpBias on one reduced-geometry LATISS bias: 2 quanta) is
run three ways, each ``--n`` times after one warm-up run:

* ``pipetask run`` as a subprocess, as the OCPS runs it;
* in-process with ``lsst.pipe.base.SimplePipelineExecutor`` (imports
  already paid, Butler opened per job);
* through the simulated OCPS: ``execute`` from a Remote to ``job_result``.

For each, the median wall time and the time spent inside the quanta (from
pipetask's "took X seconds" lines for the subprocess runs) are printed; the
difference is the per-job overhead.

Run: ``.venv/bin/python benchmarks/ocps_job_overhead.py [--n N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsst.daf.butler import Butler
from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline, pipeline_environment
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry
from lsst.ts.calibscripts.sal.testing import set_random_topic_subname
from lsst.ts.calibscripts.simulator.ocps import OcpsCsc
from lsst.ts.calibscripts.simulator.ocps_job import JobParameters, build_pipetask_command

# The simulated night of raws is a test helper; run from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cp.butler.simulated_night import SimulatedNight

PIPETASK = Path(sys.executable).parent / "pipetask"
CONFIG = "-j 1 --register-dataset-types -c isr:doDefect=False"
_TOOK = re.compile(r"took ([0-9.]+) seconds")


def make_repo(root: Path) -> tuple[Path, str]:
    repo = create_repository(root / "repo", ["LATISS"])
    night = SimulatedNight(root / "raws", LATISS, reduced_itl_geometry(), seed=3)
    (bias,) = night.take("BIAS", [0.0])
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    return repo, f"instrument='LATISS' AND exposure IN ({bias})"


def subprocess_job(repo: Path, query: str, output: str) -> tuple[float, float]:
    command = build_pipetask_command(
        PIPETASK,
        repo=repo,
        raw_collection="LATISS/raw/all",
        job_id=output,
        parameters=JobParameters(
            pipeline="${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml", config=CONFIG, data_query=query
        ),
    )
    t0 = time.perf_counter()
    done = subprocess.run(command, env=pipeline_environment(), capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return wall, sum(float(t) for t in _TOOK.findall(done.stdout + done.stderr))


def in_process_job(repo: Path, query: str, output: str) -> float:
    t0 = time.perf_counter()
    butler = SimplePipelineExecutor.prep_butler(str(repo), inputs=["LATISS/raw/all"], output=output)
    executor = SimplePipelineExecutor.from_pipeline_filename(
        str(generation_pipeline("LATISS", "cpBias")), where=query, butler=butler
    )
    executor.run(register_dataset_types=True)
    butler.close()
    return time.perf_counter() - t0


async def ocps_jobs(repo: Path, query: str, scratch: Path, n: int) -> list[float]:
    set_random_topic_subname()
    times = []
    async with (
        sal.Domain() as domain,
        OcpsCsc(1, repo=repo, scratch_dir=scratch, initial_state=sal.State.ENABLED, domain=domain),
        sal.Remote(domain, "OCPS", 1) as remote,
    ):
        for _ in range(n + 1):
            t0 = time.perf_counter()
            await remote.cmd_execute.set_start(
                pipeline="${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml", config=CONFIG, data_query=query
            )
            result = json.loads(remote.evt_job_result.get().result)
            assert result["phase"] == "completed", result
            times.append(time.perf_counter() - t0)
    return times[1:]


def report(name: str, walls: list[float], quanta: float | None = None) -> None:
    median = statistics.median(walls)
    text = f"{name:<34} median {median:6.2f} s  (min {min(walls):.2f}, max {max(walls):.2f})"
    if quanta is not None:
        text += f"  quanta {quanta:.2f} s  overhead {median - quanta:.2f} s"
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="timed runs of each kind (after one warm-up)")
    args = parser.parse_args()
    os.environ.update(pipeline_environment())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, query = make_repo(root)

        runs = [subprocess_job(repo, query, f"bench-sub-{i}") for i in range(args.n + 1)][1:]
        report("subprocess pipetask", [w for w, _ in runs], statistics.median(q for _, q in runs))
        in_process = [in_process_job(repo, query, f"u/bench/inproc/{i}") for i in range(args.n + 1)][1:]
        report("in-process SimplePipelineExecutor", in_process)
        report("OCPS execute -> job_result", asyncio.run(ocps_jobs(repo, query, root / "scratch", args.n)))


if __name__ == "__main__":
    main()
