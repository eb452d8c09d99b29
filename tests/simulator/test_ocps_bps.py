"""The simulated OCPS in bps mode (bps + Parsl, Local site): the same job semantics as pipetask.

The fixtures (conftest.py) and helpers are test_ocps.py's: the same
repository (three reduced-geometry LATISS biases and an empty
``LATISS/calib``), the same Remote; only the ``ocps`` fixture is this
module's, an OCPS whose executor is bps. A bps job costs ~20 s of start-up here (quantum graph, Parsl, the
final job), so each test runs what it needs concurrently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from lsst.daf.butler import Butler

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry
from lsst.ts.calibscripts.sal import SalRetCode, State
from lsst.ts.calibscripts.simulator.executors.bps import BpsExecutor
from lsst.ts.calibscripts.simulator.executors.bps_site import local_site
from lsst.ts.calibscripts.simulator.job_supervisor import session_members
from lsst.ts.calibscripts.simulator.ocps import OcpsCsc

from ..calibrations.test_run_script_simulate import run
from ..cp.butler.pipetask_runner import exposure_query
from ..cp.butler.simulated_night import SimulatedNight
from .conftest import LatissRepo
from .test_ocps import Results, bias_query, read_log, start_job

pytestmark = pytest.mark.slow

# bps on two shared, busy cores: quantum graph, Parsl, the jobs and the final job.
BPS_JOB_TIMEOUT = 300.0


@pytest.fixture
async def ocps(domain: sal.Domain, latiss_repo: LatissRepo, tmp_path: Path) -> AsyncIterator[OcpsCsc]:
    """test_ocps.py's OCPS, with the bps executor (Local site, 2 cores, per detector)."""
    async with OcpsCsc(
        1,
        repo=latiss_repo.repo,
        scratch_dir=tmp_path / "scratch",
        executor=BpsExecutor(local_site(2)),
        initial_state=State.ENABLED,
        domain=domain,
        kill_grace=5.0,
    ) as csc:
        yield csc


@pytest.fixture(scope="module")
def broken_bias(latiss_repo: LatissRepo, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A bias of the next day whose raw file lost everything after its primary header."""
    night = SimulatedNight(
        tmp_path_factory.mktemp("broken"), LATISS, reduced_itl_geometry(), day_obs=20220930, seed=7
    )
    (exposure,) = night.take("BIAS", [0.0])
    (path,) = night.files
    with path.open("r+b") as raw:
        raw.truncate(2880 * 4)
    with Butler.from_config(str(latiss_repo.repo), writeable=True) as butler:
        ingest_raws(butler, night.files)
    return exposure


async def finish(remote: sal.Remote, ack: sal.AckCmd) -> sal.AckCmd:
    return await remote.cmd_execute.next_ackcmd(ack, timeout=BPS_JOB_TIMEOUT)


async def test_a_bias_job_and_a_broken_raw(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo, broken_bias: int
) -> None:
    results = Results(remote)
    good_id, good_ack = await start_job(remote, data_query=bias_query(latiss_repo, 0, 1, 2))
    bad_id, bad_ack = await start_job(
        remote, data_query=exposure_query("LATISS", [latiss_repo.biases[0], broken_bias])
    )
    finals = await asyncio.gather(finish(remote, good_ack), finish(remote, bad_ack))
    assert [ack.ack for ack in finals] == [SalRetCode.CMD_COMPLETE] * 2

    # The bias, in the job's own output collection.
    exit_code, good = await results.get(good_id)
    assert (exit_code, good["phase"], good["error"]) == (0, "completed", None)
    assert good["outputCollection"] == f"u/ocps/{good_id}"
    with Butler.from_config(str(latiss_repo.repo)) as butler:
        refs = butler.query_datasets("bias", collections=f"u/ocps/{good_id}", instrument="LATISS")
        assert [ref.dataId["detector"] for ref in refs] == [0]
        assert refs[0].run.startswith(f"u/ocps/{good_id}/")
    job_dir = ocps.scratch_dir / "uws" / good_id
    bps_config = yaml.safe_load((job_dir / "bps.yaml").read_text())
    assert bps_config["payload"]["output"] == f"u/ocps/{good_id}"
    assert bps_config["payload"]["inCollection"] == "LATISS/raw/all,LATISS/calib"
    assert bps_config["extraQgraphOptions"] == "-c isr:doDefect=False"
    assert (job_dir / "runinfo").is_dir()  # Parsl's, in the job's own directory
    log = read_log(good)
    # The OCPS's lines, bps's own output, and every job's log.
    assert "bps: -j 1 ignored: parallelism comes from the site's cores (2)" in log
    assert f"Submit dir: {job_dir / 'submit'}" in log  # bps's own output
    for name in ("quantumGraphGeneration.out", "logs/pipetaskInit/pipetaskInit.stderr"):
        assert f"==> submit/{name} <==" in log
    for name in ("logs/detector/detector_0.stderr", "logs/finalJob/finalJob.stderr"):
        assert f"==> submit/{name} <==" in log
    assert "Combined 3 bias inputs" in log  # a task's own INFO line, from the job's log
    assert "aggregate-graph" in log
    assert "job ended: phase completed, exit code 0" in log

    # The broken raw: phase error, naming the task, the quantum and the exception.
    exit_code, bad = await results.get(bad_id)
    assert (exit_code, bad["phase"]) == (1, "error")
    error = bad["error"]
    assert error.startswith("bps: 1 of 1 jobs failed (detector_0 exit code 1): task isr failed on {")
    assert f"exposure: {broken_bias}" in error
    assert "blocked (cpBiasCombine on {instrument: 'LATISS', detector: 0})" in error
    assert error.endswith(f"; log: {bad['logFile']}")
    bad_log = read_log(bad)
    assert f"failed: {error}" in bad_log
    # The final job ran: what succeeded is registered, and the log says so.
    assert f"partial run ingested: u/ocps/{bad_id} (run u/ocps/{bad_id}/" in bad_log


async def test_abort_mid_run_leaves_no_process(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    results = Results(remote)
    job_id, _ = await start_job(remote, data_query=bias_query(latiss_repo, 0, 1, 2))
    job_dir = ocps.scratch_dir / "uws" / job_id
    # Wait until Parsl runs the detector's job (its log exists).
    job_log = job_dir / "submit" / "logs" / "detector" / "detector_0.stderr"
    async with asyncio.timeout(BPS_JOB_TIMEOUT):
        while not job_log.exists():  # noqa: ASYNC110 (a file, not an event)
            await asyncio.sleep(0.1)
    session = ocps.jobs[job_id].pid
    assert session is not None
    groups = {pgid for _, pgid in session_members(session)}
    assert len(groups) >= 2, "Parsl's worker pool runs in a process group of its own"

    await remote.cmd_abort_job.set_start(job_id=job_id, timeout=60)
    # abort_job completes once the job's result is written and no process of its session is left.
    assert session_members(session) == []
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"]) == (255, "aborted")
    log = read_log(result)
    assert "aborted; bps stopped with code" in log
    assert "==> submit/logs/detector/detector_0.stderr <==" in log
    # Nothing of the stopped run is registered, and its files are gone.
    assert "partial run cleaned up: removed " in log
    status = json.loads((job_dir / "bps_status.json").read_text())
    assert not (latiss_repo.repo / status["outputRun"]).exists()
    with Butler.from_config(str(latiss_repo.repo)) as butler:
        assert butler.collections.query(f"u/ocps/{job_id}*") == []


def test_a_calibration_script_with_the_bps_executor(tmp_path: Path) -> None:
    # The smallest useful run: two biases combined by one bps job, certified; no reference set.
    result = run(
        [
            "auxtel/make_latiss_calibrations.py",
            "--simulate",
            "--geometry",
            "reduced",
            "--time-scale",
            "0.01",
            "--no-bootstrap",
            "--executor",
            "bps",
            *("-p", "script_mode=BIAS", "-p", "n_bias=2", "-p", "do_verify=false"),
            *("-p", "generate_calibrations=true", "-p", "n_processes=1"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("Final state: DONE")
    assert "certified: LATISS/calib/daily" in result.stdout
    (job_dir,) = (tmp_path / "repo" / "LATISS" / "simulated-scratch" / "uws").iterdir()
    assert f"generation collection: u/ocps/{job_dir.name}" in result.stdout
    assert (job_dir / "bps.yaml").is_file()
    log = (job_dir / "outs" / "ocps.log").read_text()
    assert "bps started under the job supervisor" in log
    assert "job ended: phase completed, exit code 0" in log
