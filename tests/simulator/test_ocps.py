"""The simulated OCPS driven through a Remote, as a script drives it, with real pipetask jobs.

The repository (``latiss_repo`` in conftest.py) holds three simulated
LATISS biases (reduced geometry) and an empty ``LATISS/calib`` collection;
each job runs ``pipetask -j 1`` on one to three of them.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cp.butler.pipeline_locations import cp_pipe_dir
from lsst.ts.calibscripts.sal import SalRetCode, State
from lsst.ts.calibscripts.simulator.ocps import OcpsCsc, OcpsFaults

from ..cp.butler.pipetask_runner import exposure_query
from .conftest import LatissRepo

pytestmark = pytest.mark.slow

CP_BIAS = "${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml"
CONFIG = "-j 1 -i LATISS/calib --register-dataset-types -c isr:doDefect=False"
# Generous: pipetask on two shared, busy cores.
JOB_TIMEOUT = 120.0


@pytest.fixture
async def ocps(domain: sal.Domain, latiss_repo: LatissRepo, tmp_path: Path) -> AsyncIterator[OcpsCsc]:
    async with OcpsCsc(
        1,
        repo=latiss_repo.repo,
        scratch_dir=tmp_path / "scratch",
        initial_state=State.ENABLED,
        domain=domain,
        kill_grace=2.0,
    ) as csc:
        yield csc


def bias_query(latiss_repo: LatissRepo, *indices: int) -> str:
    return exposure_query("LATISS", [latiss_repo.biases[i] for i in indices])


async def start_job(remote: sal.Remote, **fields: str) -> tuple[str, sal.AckCmd]:
    """Send execute; return the job id from the in-progress ack, and that ack."""
    fields = {"pipeline": CP_BIAS, "config": CONFIG, **fields}
    ack = await remote.cmd_execute.set_start(wait_done=False, timeout=10, **fields)
    assert ack.ack == SalRetCode.CMD_INPROGRESS
    assert ack.timeout > 0
    job_id = json.loads(ack.result)["job_id"]
    assert len(job_id) == 32 and int(job_id, 16) >= 0
    return job_id, ack


async def finish_job(remote: sal.Remote, ack: sal.AckCmd) -> sal.AckCmd:
    """Wait for the final acknowledgement of an execute command."""
    return await remote.cmd_execute.next_ackcmd(ack, timeout=JOB_TIMEOUT)


class Results:
    """job_result events read from a Remote, kept by job id."""

    def __init__(self, remote: sal.Remote) -> None:
        self.remote = remote
        self.by_id: dict[str, Any] = {}

    async def get(self, job_id: str) -> tuple[int, dict[str, Any]]:
        """Return (exit_code, parsed result) of a job, reading events until it arrives."""
        while job_id not in self.by_id:
            message = await self.remote.evt_job_result.next(flush=False, timeout=JOB_TIMEOUT)
            self.by_id[message.job_id] = message
        message = self.by_id[job_id]
        result = json.loads(message.result)
        assert result["jobId"] == job_id
        assert result["exitCode"] == message.exit_code
        return message.exit_code, result


async def wait_for_log_message(remote: sal.Remote, text: str) -> str:
    """Read logMessage events until one contains ``text``."""
    while True:
        message = await remote.evt_logMessage.next(flush=False, timeout=JOB_TIMEOUT)
        if text in message.message:
            return message.message


def assert_process_group_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def read_log(result: dict[str, Any]) -> str:
    """The job log named in a job result."""
    return Path(result["logFile"]).read_text()


def time_of(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


async def test_cpbias_job_end_to_end(ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo) -> None:
    results = Results(remote)
    query = bias_query(latiss_repo, 0, 1, 2)
    job_id, ack = await start_job(remote, data_query=query, output_dataset_types="bias", version="")
    final = await finish_job(remote, ack)
    assert final.ack == SalRetCode.CMD_COMPLETE

    exit_code, result = await results.get(job_id)
    assert exit_code == 0
    log_path = ocps.scratch_dir / "uws" / job_id / "outs" / "ocps.log"
    assert result["phase"] == "completed"
    assert result["error"] is None
    assert result["instrument"] == "LATISS"
    assert result["outputCollection"] == f"u/ocps/{job_id}"
    assert result["logFile"] == str(log_path)
    assert result["butlerRepo"] == str(latiss_repo.repo)
    assert result["parameters"] == {
        "pipeline": CP_BIAS,
        "version": "",
        "config": CONFIG,
        "data_query": query,
        "prereq_jobs": "",
        "output_dataset_types": "bias",
    }
    assert time_of(result["creationTime"]) <= time_of(result["startTime"]) <= time_of(result["endTime"])
    assert result["executionDuration"] > 0
    command = result["command"]
    assert command[command.index("-i") + 1] == "LATISS/raw/all,LATISS/calib"
    assert command[command.index("-p") + 1] == f"{cp_pipe_dir()}/pipelines/LATISS/cpBias.yaml"
    assert command[command.index("-d") + 1] == query

    with Butler.from_config(str(latiss_repo.repo)) as butler:
        refs = butler.query_datasets("bias", collections=f"u/ocps/{job_id}", instrument="LATISS")
    assert [ref.dataId["detector"] for ref in refs] == [0]

    log = read_log(result)
    assert f"pipetask --long-log run -b {latiss_repo.repo}" in log
    assert "cpBiasCombine" in log  # pipetask's own output
    assert "Combined 3 bias inputs" in log  # a task's INFO line
    assert "exited with code 0" in log

    # Start and end were published as log messages.
    started = await wait_for_log_message(remote, f"Job {job_id} started")
    assert "cpBias.yaml" in started
    ended = await wait_for_log_message(remote, f"Job {job_id} ended")
    assert "phase completed" in ended


async def test_concurrent_jobs_get_their_own_results(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    results = Results(remote)
    first_id, first_ack = await start_job(remote, data_query=bias_query(latiss_repo, 0))
    second_id, second_ack = await start_job(remote, data_query=bias_query(latiss_repo, 1, 2))
    assert first_id != second_id
    # Both are accepted and running before either finishes.
    assert {job.job_id for job in ocps.running_jobs} == {first_id, second_id}
    for ack in (first_ack, second_ack):
        assert (await finish_job(remote, ack)).ack == SalRetCode.CMD_COMPLETE
    _, first = await results.get(first_id)
    _, second = await results.get(second_id)
    assert (first["phase"], second["phase"]) == ("completed", "completed")
    assert first["parameters"]["data_query"] == bias_query(latiss_repo, 0)
    assert second["parameters"]["data_query"] == bias_query(latiss_repo, 1, 2)
    with Butler.from_config(str(latiss_repo.repo)) as butler:
        for job_id, n_inputs in ((first_id, 1), (second_id, 2)):
            bias = butler.get("bias", instrument="LATISS", detector=0, collections=f"u/ocps/{job_id}")
            assert bias.metadata["LSST CALIB NINPUTS"] == n_inputs


async def test_prerequisite_job_runs_first(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    results = Results(remote)
    first_id, first_ack = await start_job(remote, data_query=bias_query(latiss_repo, 0))
    second_id, second_ack = await start_job(
        remote, data_query=bias_query(latiss_repo, 1), prereq_jobs=f" {first_id} "
    )
    assert (await finish_job(remote, second_ack)).ack == SalRetCode.CMD_COMPLETE
    assert (await finish_job(remote, first_ack)).ack == SalRetCode.CMD_COMPLETE
    _, first = await results.get(first_id)
    _, second = await results.get(second_id)
    assert (first["phase"], second["phase"]) == ("completed", "completed")
    assert time_of(second["startTime"]) >= time_of(first["endTime"])
    log = read_log(second)
    assert f"waiting for prerequisite job(s) {first_id}" in log
    assert f"prerequisite job {first_id} ended: phase completed, exit code 0" in log


async def test_failed_or_unknown_prerequisite_fails_the_job(ocps: OcpsCsc, remote: sal.Remote) -> None:
    results = Results(remote)
    ocps.faults.fail_job_numbers = {1}
    failed_id, ack = await start_job(remote, data_query="instrument='LATISS'")
    await finish_job(remote, ack)
    dependent_id, ack = await start_job(remote, prereq_jobs=failed_id)
    await finish_job(remote, ack)
    exit_code, result = await results.get(dependent_id)
    assert (exit_code, result["phase"]) == (1, "error")
    assert result["error"].startswith(f"prerequisite job {failed_id} ended in phase error (exit code 1)")
    assert result["startTime"] is None

    orphan_id, ack = await start_job(remote, prereq_jobs=f"{failed_id},0123abcd")
    await finish_job(remote, ack)
    exit_code, result = await results.get(orphan_id)
    assert (exit_code, result["phase"]) == (1, "error")
    assert result["error"] == "unknown prerequisite job id(s): 0123abcd"
    assert "request rejected: unknown prerequisite job id(s): 0123abcd" in read_log(result)


async def test_abort_running_and_pending_jobs(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    results = Results(remote)
    running_id, running_ack = await start_job(remote, data_query=bias_query(latiss_repo, 0, 1, 2))
    pending_id, pending_ack = await start_job(remote, prereq_jobs=running_id)
    await wait_for_log_message(remote, f"Job {running_id} started")
    pid = ocps.jobs[running_id].pid
    assert pid is not None

    # The pending job never starts pipetask.
    await remote.cmd_abort_job.set_start(job_id=pending_id, timeout=30)
    exit_code, pending = await results.get(pending_id)
    assert (exit_code, pending["phase"], pending["startTime"]) == (255, "aborted", None)
    assert (await finish_job(remote, pending_ack)).ack == SalRetCode.CMD_COMPLETE

    await remote.cmd_abort_job.set_start(job_id=running_id, timeout=30)
    # abort_job completes after the job's result is written and its processes are gone.
    assert remote.evt_job_result.get().job_id == running_id
    exit_code, running = await results.get(running_id)
    assert (exit_code, running["phase"]) == (255, "aborted")
    assert running["error"].startswith("aborted by abort_job from ")
    assert_process_group_gone(pid)
    assert (await finish_job(remote, running_ack)).ack == SalRetCode.CMD_COMPLETE
    log = read_log(running)
    assert "pipetask --long-log run" in log
    assert f"aborting: aborted by abort_job from {remote.salinfo.identity}" in log
    assert "job ended: phase aborted, exit code 255" in log

    with pytest.raises(sal.AckError, match=f"Job {running_id} already finished"):
        await remote.cmd_abort_job.set_start(job_id=running_id, timeout=10)
    with pytest.raises(sal.AckError, match="Unknown job id 'nope'"):
        await remote.cmd_abort_job.set_start(job_id="nope", timeout=10)


async def test_bad_pipeline_path_ends_in_error(ocps: OcpsCsc, remote: sal.Remote) -> None:
    results = Results(remote)
    job_id, ack = await start_job(
        remote, pipeline="${CP_PIPE_DIR}/pipelines/LATISS/cpNothing.yaml", data_query="instrument='LATISS'"
    )
    # The command completes; the failure is in job_result.
    assert (await finish_job(remote, ack)).ack == SalRetCode.CMD_COMPLETE
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"], result["command"]) == (1, "error", [])
    assert (
        result["error"] == "pipeline '${CP_PIPE_DIR}/pipelines/LATISS/cpNothing.yaml': no such pipeline file"
    )
    assert f"request rejected: {result['error']}" in read_log(result)
    warning = await wait_for_log_message(remote, f"Job {job_id} failed")
    assert "cpNothing.yaml" in warning and result["logFile"] in warning


BIAS_PIPELINE = "$CP_PIPE_DIR/pipelines/LATISS/cpBias.yaml"


@pytest.mark.parametrize(
    ("pipeline", "config", "message"),
    [
        ("/etc/passwd", "", "only the pipelines in"),
        (
            "$CP_PIPE_DIR/pipelines/LATISS/cpBias.yaml",
            "-C isr:/tmp/evil.py",
            "no such file|may only come from",
        ),
        (
            "$CP_PIPE_DIR/pipelines/LATISS/cpBias.yaml",
            "--summary /repo/gen3.sqlite3",
            "'--summary' is not allowed",
        ),
        ("$CP_PIPE_DIR/pipelines/LATISS/cpBias.yaml", "-ou/ocps/x --replace-run", "'-o' is not allowed"),
    ],
)
async def test_injections_refused_by_the_ocps(
    ocps: OcpsCsc, remote: sal.Remote, pipeline: str, config: str, message: str
) -> None:
    # The OCPS checks every request itself, whatever its client checked.
    results = Results(remote)
    job_id, ack = await start_job(remote, pipeline=pipeline, config=config, data_query="instrument='LATISS'")
    await finish_job(remote, ack)
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"], result["command"]) == (1, "error", [])
    assert re.search(message, result["error"]), result["error"]


async def test_invalid_query_ends_in_error(ocps: OcpsCsc, remote: sal.Remote) -> None:
    results = Results(remote)
    job_id, ack = await start_job(remote, data_query="instrument='LATISS' AND exposure IN (12")
    await finish_job(remote, ack)
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"]) == (1, "error")
    assert "InvalidQueryError: Failed to parse expression" in result["error"]
    assert result["error"] in read_log(result)


async def test_exception_in_a_task_names_the_task_quantum_and_exception(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    # A dark combination of biases: cpBiasCombine raises (the inputs are in adu, not electron).
    config = f"{CONFIG} -c cpBiasCombine:calibrationType=dark -c cpBiasCombine:exposureScaling=DarkTime"
    results = Results(remote)
    job_id, ack = await start_job(remote, config=config, data_query=bias_query(latiss_repo, 0))
    await finish_job(remote, ack)
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"]) == (1, "error")
    exposure = latiss_repo.biases[0]
    assert result["error"] == (
        "pipetask exited with code 1: task cpBiasCombine failed on {instrument: 'LATISS', detector: 0}: "
        f"ValueError: Input {exposure} is in 'adu'; a dark is combined from inputs in 'electron' (check the "
        f"isr doApplyGains setting).; log: {result['logFile']}"
    )


async def test_unusable_config_ends_in_error_without_pipetask(ocps: OcpsCsc, remote: sal.Remote) -> None:
    results = Results(remote)
    job_id, ack = await start_job(remote, config="-j 1 -o u/me/elsewhere")
    await finish_job(remote, ack)
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"], result["command"]) == (1, "error", [])
    assert "option '-o' is not allowed (the OCPS sets the output collection itself)" in result["error"]


async def test_fault_injection_fails_the_nth_job(ocps: OcpsCsc, remote: sal.Remote) -> None:
    results = Results(remote)
    assert ocps.faults == OcpsFaults()  # off by default
    ocps.faults.fail_job_numbers = {2}
    first_id, ack = await start_job(remote, config="-o x")  # job 1: an ordinary failure
    await finish_job(remote, ack)
    second_id, ack = await start_job(remote, data_query="instrument='LATISS'")
    assert (await finish_job(remote, ack)).ack == SalRetCode.CMD_COMPLETE
    _, first = await results.get(first_id)
    assert "injected" not in first["error"]
    exit_code, second = await results.get(second_id)
    assert (exit_code, second["phase"]) == (1, "error")
    assert second["error"] == "injected failure of job number 2 (OcpsFaults.fail_job_numbers)"
    log = read_log(second)
    assert "FAULT INJECTED: injected failure of job number 2" in log
    assert "pipetask --long-log run" in log  # the command it would have run


async def test_commands_need_enabled(ocps: OcpsCsc, remote: sal.Remote) -> None:
    await remote.cmd_disable.start(timeout=10)
    with pytest.raises(sal.AckError, match="execute not allowed in state DISABLED") as error:
        await remote.cmd_execute.set_start(pipeline=CP_BIAS, timeout=10)
    assert error.value.ackcmd.ack == SalRetCode.CMD_FAILED
    with pytest.raises(sal.AckError, match="abort_job not allowed in state DISABLED"):
        await remote.cmd_abort_job.set_start(job_id="x", timeout=10)
    assert ocps.jobs == {}


async def test_leaving_enabled_aborts_running_jobs(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    results = Results(remote)
    job_id, ack = await start_job(remote, data_query=bias_query(latiss_repo, 0))
    await wait_for_log_message(remote, f"Job {job_id} started")
    pid = ocps.jobs[job_id].pid
    assert pid is not None
    await remote.cmd_disable.start(timeout=30)
    exit_code, result = await results.get(job_id)
    assert (exit_code, result["phase"]) == (255, "aborted")
    assert result["error"] == "OCPS left ENABLED (now DISABLED)"
    assert_process_group_gone(pid)
    assert (await finish_job(remote, ack)).ack == SalRetCode.CMD_COMPLETE


async def test_closing_leaves_no_pipetask_behind(
    ocps: OcpsCsc, remote: sal.Remote, latiss_repo: LatissRepo
) -> None:
    job_id, _ = await start_job(remote, data_query=bias_query(latiss_repo, 0))
    await wait_for_log_message(remote, f"Job {job_id} started")
    job = ocps.jobs[job_id]
    assert job.pid is not None
    await ocps.close()
    assert (job.phase, job.exit_code, job.error) == ("aborted", 255, "OCPS closing")
    assert_process_group_gone(job.pid)
