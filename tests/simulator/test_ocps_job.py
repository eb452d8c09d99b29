"""OCPS job pieces that need no pipetask: command line, pipeline variables, failure reasons."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.cp.pipeline_locations import cp_pipe_dir, cp_verify_dir
from lsst.ts.calibscripts.simulator.ocps import OcpsCsc, instrument_for_index
from lsst.ts.calibscripts.simulator.ocps_job import (
    JobParameters,
    JobPhase,
    JobRequestError,
    OcpsJob,
    build_pipetask_command,
    failure_reason,
    job_log_path,
    resolve_pipeline,
)


def command(config: str = "", data_query: str = "instrument='LATISS'", pipeline: str = "p.yaml") -> list[str]:
    return build_pipetask_command(
        "/bin/pipetask",
        repo="/repo",
        raw_collection="LATISS/raw/all",
        job_id="abc",
        parameters=JobParameters(pipeline=pipeline, config=config, data_query=data_query),
    )


def option(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, argv
    return argv[argv.index(name) + 1]


def test_command_line_has_ocps_inputs_output_and_the_rest_of_the_config():
    argv = command("-j 8 -i LATISS/calib --register-dataset-types -c isr:doDefect=False")
    assert argv[:3] == ["/bin/pipetask", "--long-log", "run"]
    assert option(argv, "-b") == "/repo"
    assert option(argv, "-i") == "LATISS/raw/all,LATISS/calib"
    assert option(argv, "-o") == "u/ocps/abc"
    assert option(argv, "-p") == "p.yaml"
    assert option(argv, "-d") == "instrument='LATISS'"
    assert argv[-5:] == ["-j", "8", "--register-dataset-types", "-c", "isr:doDefect=False"]


def test_every_input_option_is_merged_into_one_without_duplicates():
    argv = command("-i a,b --input c --input=LATISS/raw/all -i a -j 1")
    assert option(argv, "-i") == "LATISS/raw/all,a,b,c"
    assert "--input" not in argv and not any(a.startswith("--input=") for a in argv)


def test_quoted_config_values_survive():
    argv = command("-c 'isr:overscan.fitType=MEDIAN_PER_ROW' -c \"a:b=[1, 2]\"")
    assert argv[-4:] == ["-c", "isr:overscan.fitType=MEDIAN_PER_ROW", "-c", "a:b=[1, 2]"]


def test_blank_query_is_left_out():
    assert "-d" not in command(data_query="  ")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("-o mine", "must not set -o/--output"),
        ("--output-run x", "must not set --output-run"),
        ("-b /other", "must not set -b/--butler-config"),
        ("--pipeline=x.yaml", "must not set -p/--pipeline"),
        ("-d 'x=1'", "must not set -d/--data-query"),
        ("-i", "ends with -i but no collection"),
        ("-c 'unbalanced", "Cannot parse config"),
    ],
)
def test_unusable_config_is_a_request_error(config: str, message: str):
    with pytest.raises(JobRequestError, match=message):
        command(config)


def test_blank_pipeline_is_a_request_error():
    with pytest.raises(JobRequestError, match="pipeline is blank"):
        command(pipeline=" ")


def test_pipeline_variables_and_subset():
    assert resolve_pipeline("${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml") == (
        f"{cp_pipe_dir()}/pipelines/LATISS/cpBias.yaml"
    )
    assert resolve_pipeline("$CP_VERIFY_DIR/pipelines/LATISS/verifyBias.yaml#verify") == (
        f"{cp_verify_dir()}/pipelines/LATISS/verifyBias.yaml#verify"
    )
    # Unknown variables are left for pipetask to report.
    assert resolve_pipeline("${OTHER_DIR}/x.yaml") == "${OTHER_DIR}/x.yaml"


def test_failure_reason_is_the_last_error_line():
    traceback = "INFO: fine\nTraceback (most recent call last):\n  File x\nValueError: first\n"
    log = traceback + "lsst.daf.butler._exceptions.InvalidQueryError: Failed to parse expression 'x ('\n"
    assert (
        failure_reason(log)
        == "lsst.daf.butler._exceptions.InvalidQueryError: Failed to parse expression 'x ('"
    )
    click = "Usage: pipetask run\n\nError: No such option '--bogus'.\n"
    assert failure_reason(click) == "Error: No such option '--bogus'."
    assert failure_reason("something\nlast words\n\n") == "last words"
    assert failure_reason("") == "pipetask failed without output"


def test_job_parameters_and_paths():
    parameters = JobParameters(prereq_jobs=" a, ,b ")
    assert parameters.prerequisite_ids == ["a", "b"]
    assert job_log_path(Path("/scratch"), "abc") == Path("/scratch/uws/abc/outs/ocps.log")


def test_instrument_by_index():
    assert instrument_for_index(1) == "LATISS"
    assert instrument_for_index(2) == "LSSTComCam"
    assert instrument_for_index(7, "LATISS") == "LATISS"
    with pytest.raises(ValueError, match="does not support LSSTCam"):
        instrument_for_index(3)
    with pytest.raises(ValueError, match="index 9 serves no instrument"):
        instrument_for_index(9)


async def test_missing_repository_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        OcpsCsc(1, repo=tmp_path / "nothing", scratch_dir=tmp_path, domain=sal.Domain())


def is_alive(pid: int) -> bool:
    """Is the process running (a zombie waiting for its reaper counts as gone)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    # The state follows the command name in parentheses; Z = zombie, X = dead.
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def start_job(
    tmp_path: Path, command: list[str], *, time_limit: float = 300.0, kill_grace: float = 5.0
) -> tuple[OcpsJob, asyncio.Task[None]]:
    job = OcpsJob(
        job_id="j1",
        number=1,
        instrument="LATISS",
        parameters=JobParameters(pipeline="p.yaml"),
        log_path=tmp_path / "uws" / "j1" / "outs" / "ocps.log",
    )
    run = job.run(
        [], command=command, repo="/repo", env=os.environ, time_limit=time_limit, kill_grace=kill_grace
    )
    return job, asyncio.create_task(run)


async def started_pids(fifo: Path) -> list[int]:
    """Wait until the job's shell writes its pids into ``fifo``."""
    text = await asyncio.wait_for(asyncio.to_thread(fifo.read_text), 30)
    return [int(pid) for pid in text.split()]


async def test_abort_stops_the_whole_process_group(tmp_path: Path):
    fifo = tmp_path / "pids"
    os.mkfifo(fifo)
    # Like pipetask -j N: a parent with a worker process in its group.
    job, task = start_job(tmp_path, ["sh", "-c", f'sleep 300 & echo "$$ $!" > {fifo}; wait'])
    pids = await started_pids(fifo)
    await job.abort("test abort")
    await task
    assert (job.phase, job.exit_code, job.error) == (JobPhase.ABORTED, 255, "test abort")
    assert job.pid == pids[0]
    assert not any(is_alive(pid) for pid in pids)
    assert "aborted; pipetask stopped with code 143" in job.log_path.read_text()


async def test_a_job_that_ignores_sigterm_is_killed(tmp_path: Path):
    fifo = tmp_path / "pids"
    os.mkfifo(fifo)
    command = ["sh", "-c", f"trap '' TERM; sleep 300 & echo \"$$ $!\" > {fifo}; wait"]
    job, task = start_job(tmp_path, command, kill_grace=0.2)
    pids = await started_pids(fifo)
    await job.abort("test abort")
    await task
    assert (job.phase, job.exit_code) == (JobPhase.ABORTED, 255)
    assert not any(is_alive(pid) for pid in pids)
    assert "aborted; pipetask stopped with code 137" in job.log_path.read_text()


async def test_a_job_over_its_time_limit_ends_in_error(tmp_path: Path):
    job, task = start_job(tmp_path, ["sleep", "300"], time_limit=0.2)
    await task
    assert (job.phase, job.exit_code) == (JobPhase.ERROR, 143)
    assert job.error == "job exceeded its time limit of 0.2 s and was stopped"
    assert job.pid is not None and not is_alive(job.pid)


async def test_a_command_that_cannot_start_ends_in_error(tmp_path: Path):
    job, task = start_job(tmp_path, [str(tmp_path / "no-pipetask")])
    await task
    assert (job.phase, job.exit_code) == (JobPhase.ERROR, 1)
    assert job.error is not None and job.error.startswith("FileNotFoundError")
    assert f"OCPS error: {job.error}" in job.log_path.read_text()
