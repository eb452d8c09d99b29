"""OCPS job pieces that need no pipetask: command line, pipeline variables, failure reasons, processes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.calibrations.ocps_client import OcpsJob as ClientJob
from lsst.ts.calibscripts.calibrations.ocps_client import failure_message
from lsst.ts.calibscripts.cp.butler.pipeline_locations import cp_pipe_dir, cp_verify_dir
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

BIAS = "$CP_PIPE_DIR/pipelines/LATISS/cpBias.yaml"


def command(config: str = "", data_query: str = "instrument='LATISS'", pipeline: str = BIAS) -> list[str]:
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
    assert option(argv, "-p") == str(cp_pipe_dir().resolve() / "pipelines" / "LATISS" / "cpBias.yaml")
    assert option(argv, "-d") == "instrument='LATISS'"
    assert argv[-5:] == ["-j", "8", "--register-dataset-types", "-c", "isr:doDefect=False"]


def test_every_input_option_is_merged_into_one_without_duplicates():
    argv = command("-i a,b --input c --input=LATISS/raw/all -i a -j 1")
    assert option(argv, "-i") == "LATISS/raw/all,a,b,c"
    assert "--input" not in argv and not any(a.startswith("--input=") for a in argv)


def test_quoted_config_values_survive():
    argv = command("-c 'isr:overscan.fitType=MEDIAN_PER_ROW' -c \"a:b=[1, 2]\" -c 'isr:x=a b'")
    assert argv[-6:] == ["-c", "isr:overscan.fitType=MEDIAN_PER_ROW", "-c", "a:b=[1, 2]", "-c", "isr:x=a b"]


def test_blank_query_is_left_out():
    assert "-d" not in command(data_query="  ")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("-o mine", "option '-o' is not allowed \\(the OCPS sets the output collection itself\\)"),
        ("--output-run x", "option '--output-run' is not allowed"),
        ("-b /other", "option '-b' is not allowed \\(the OCPS sets the repository itself\\)"),
        ("--pipeline=x.yaml", "option '--pipeline' is not allowed"),
        ("-d 'x=1'", "option '-d' is not allowed"),
        ("-i", "option '-i' needs a value"),
        ("-c 'unbalanced", "cannot be read as command-line options"),
        ("--summary /repo/gen3.sqlite3", "option '--summary' is not allowed"),
        ("-C isr:/tmp/evil.py", "no such file|may only come from"),
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


# Lines of real pipetask --long-log output (cpBias, -j 1), shortened.
INFO = "INFO 2026-12-04T15:54:26.463+00:00 lsst.ctrl.mpexec.cli.utils ()(utils.py:253) - "
ERROR = "ERROR 2026-12-04T15:54:27.636+00:00 lsst.pipe.base.single_quantum_executor (x)(x.py:316) - "
GRAPH = f"""\
ocps: 2026-12-04T15:54:25.001+00:00 parameter config: -j 1 -c 'isr:x=Error: not a real error'
{INFO}QuantumGraph contains 4 quanta for 2 tasks
Quanta     Tasks
------ -------------
     3           isr
     1 cpBiasCombine
"""
ISR_ID = "{instrument: 'LATISS', detector: 0, exposure: 2022092900001, band: 'white'}"
COMBINE_ID = "{instrument: 'LATISS', detector: 0}"
EXECUTOR = "INFO 2026-12-04T15:54:27.031+00:00 lsst.pipe.base.single_quantum_executor (isr:{...})(x.py:1) - "
ISR_DONE = f"""\
{EXECUTOR}Preparing execution of quantum for label=isr dataId={ISR_ID}.
{EXECUTOR}Constructing task and executing quantum for label=isr dataId={ISR_ID}.
{EXECUTOR}Execution of task 'isr' on quantum {ISR_ID} took 0.130 seconds
{INFO}Executed 1 quanta successfully, 0 failed and 3 remain out of total 4 quanta.
"""
COMBINE_STARTED = f"""\
{EXECUTOR}Preparing execution of quantum for label=cpBiasCombine dataId={COMBINE_ID}.
{EXECUTOR}Constructing task and executing quantum for label=cpBiasCombine dataId={COMBINE_ID}.
"""
COMBINE_FAILED = f"""\
{ERROR}Execution of task 'cpBiasCombine' on quantum {COMBINE_ID} failed. Exception ValueError: Input 20220929\
00001 is in 'adu'
Traceback (most recent call last):
  File "/work/main/python/lsst/ts/calibscripts/cp/tasks/combine.py", line 247, in run
ValueError: Input 2022092900001 is in 'adu'
{ERROR}Caught an exception, details are in traceback:
lsst.pipe.base.mp_graph_executor.MPGraphExecutorError: One or more tasks failed during execution.
"""
LOG = "/scratch/uws/j1/outs/ocps.log"


@pytest.mark.parametrize(
    ("log_text", "exit_code", "reason"),
    [
        # pipetask killed mid-job (kill -9, out of memory, abort escalation).
        (
            GRAPH + ISR_DONE + COMBINE_STARTED,
            137,
            f"pipetask killed by signal 9 (SIGKILL) while running cpBiasCombine on {COMBINE_ID}; log: {LOG}",
        ),
        # Killed after the graph was built, before a quantum: the old reason was "1 cpBiasCombine".
        (
            GRAPH,
            137,
            "pipetask killed by signal 9 (SIGKILL) before any task started (quantum graph of 4 quanta); "
            f"log: {LOG}",
        ),
        ("", 143, f"pipetask killed by signal 15 (SIGTERM) before its quantum graph was built; log: {LOG}"),
        (
            GRAPH + ISR_DONE,
            143,
            "pipetask killed by signal 15 (SIGTERM) with no task running (1 of 4 quanta had succeeded); "
            f"log: {LOG}",
        ),
        # An exception in a named task.
        (
            GRAPH + ISR_DONE + COMBINE_STARTED + COMBINE_FAILED,
            1,
            f"pipetask exited with code 1: task cpBiasCombine failed on {COMBINE_ID}: "
            f"ValueError: Input 2022092900001 is in 'adu'; log: {LOG}",
        ),
        # No task: the last exception or click error line.
        (
            "Traceback (most recent call last):\n  File x\nValueError: first\n"
            "lsst.daf.butler._exceptions.InvalidQueryError: Failed to parse expression 'x ('\n",
            1,
            "pipetask exited with code 1: lsst.daf.butler._exceptions.InvalidQueryError: "
            f"Failed to parse expression 'x ('; log: {LOG}",
        ),
        (
            "Usage: pipetask run\n\nError: No such option '--bogus'.\n",
            2,
            f"pipetask exited with code 2: Error: No such option '--bogus'.; log: {LOG}",
        ),
        # Nothing to quote: the exit code alone (never a meaningless last line).
        (GRAPH, 1, f"pipetask exited with code 1; log: {LOG}"),
        ("", 1, f"pipetask exited with code 1 without output; log: {LOG}"),
    ],
)
def test_failure_reason_names_task_signal_exception_and_log(log_text: str, exit_code: int, reason: str):
    assert failure_reason(log_text, exit_code, LOG) == reason


def test_failure_reason_with_worker_processes():
    # -j 2: a worker killed by a signal (e.g. the out-of-memory killer), another failed in its task.
    main = "ERROR 2026-12-04T15:54:47.062+00:00 lsst.pipe.base.mp_graph_executor ()(x.py:844) - "
    isr_2 = ISR_ID.replace("2022092900001", "2022092900002")
    log_text = (
        GRAPH
        + f"{EXECUTOR}Preparing execution of quantum for label=isr dataId={ISR_ID}.\n"
        + f"{EXECUTOR}Preparing execution of quantum for label=isr dataId={isr_2}.\n"
        + f"{main}Task <isr dataId={ISR_ID}> failed, killed by signal 9 (Killed); processing will continue "
        "for remaining tasks.\n"
        + f"{main}Task <isr dataId={isr_2}> failed, exit code=1; processing will continue for remaining "
        "tasks.\n"
    )
    assert failure_reason(log_text, 1) == (
        f"pipetask exited with code 1: 2 quanta failed (tasks isr); first: task isr failed on {ISR_ID}: "
        "worker process killed by signal 9 (Killed)"
    )
    # Killed while two quanta ran in workers; the exception of an earlier failure follows.
    running = GRAPH + COMBINE_STARTED + COMBINE_FAILED + log_text.split(f"{main}Task")[0]
    assert failure_reason(running, 137) == (
        f"pipetask killed by signal 9 (SIGKILL) while running isr on {ISR_ID} and isr on {isr_2}; "
        f"earlier, task cpBiasCombine failed on {COMBINE_ID}: ValueError: Input 2022092900001 is in 'adu'"
    )


def test_client_message_names_job_reason_and_log_once():
    job = ClientJob(job_id="abc", description="bias generation", exit_code=137)
    job.result = {
        "logFile": LOG,
        "error": f"pipetask killed by signal 9 (SIGKILL) while running cpBiasCombine on {COMBINE_ID}; "
        f"log: {LOG}",
    }
    assert failure_message(job) == (
        "OCPS job abc (bias generation) failed with exit code 137: pipetask killed by signal 9 (SIGKILL) "
        f"while running cpBiasCombine on {COMBINE_ID}; see the job log {LOG}"
    )
    job.exit_code = 1
    job.result["error"] = (
        f"pipetask exited with code 1: task isr failed on {ISR_ID}: ValueError: x; log: {LOG}"
    )
    assert failure_message(job) == (
        f"OCPS job abc (bias generation) failed with exit code 1: task isr failed on {ISR_ID}: "
        f"ValueError: x; see the job log {LOG}"
    )
    # Another OCPS's reason, or none, is kept as it is.
    job.result = {"error": "injected failure", "logFile": LOG}
    assert failure_message(job).endswith(f"failed with exit code 1: injected failure; see the job log {LOG}")
    job.result = {"phase": "error"}
    assert failure_message(job) == (
        "OCPS job abc (bias generation) failed with exit code 1: job ended in phase error; "
        "see the job log /scratch/uws/abc/outs/ocps.log"
    )


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
    # The job supervisor leads the group of the command and its workers.
    assert job.pid is not None and {os.getpgid(pid) for pid in pids} == {job.pid}
    await job.abort("test abort")
    await task
    assert (job.phase, job.exit_code, job.error) == (JobPhase.ABORTED, 255, "test abort")
    assert not is_alive(job.pid)
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
    assert job.error == f"job exceeded its time limit of 0.2 s and was stopped; log: {job.log_path}"
    assert job.pid is not None and not is_alive(job.pid)


async def test_a_command_that_cannot_start_ends_in_error(tmp_path: Path):
    job, task = start_job(tmp_path, [str(tmp_path / "no-pipetask")])
    await task
    assert (job.phase, job.exit_code) == (JobPhase.ERROR, 1)
    assert job.error is not None and job.error.startswith("FileNotFoundError")
    assert f"OCPS error: {job.error}" in job.log_path.read_text()


async def test_a_pipetask_killed_mid_job_is_reported_with_its_task(tmp_path: Path):
    # A fake pipetask that starts a quantum and is killed, as by the out-of-memory killer.
    started = f"{EXECUTOR}Preparing execution of quantum for label=cpBiasCombine dataId={COMBINE_ID}."
    job, task = start_job(tmp_path, ["sh", "-c", 'printf "%s\\n" "$1"; kill -9 $$', "sh", started])
    await task
    assert (job.phase, job.exit_code) == (JobPhase.ERROR, 137)
    assert job.error == (
        f"pipetask killed by signal 9 (SIGKILL) while running cpBiasCombine on {COMBINE_ID}; "
        f"log: {job.log_path}"
    )
    log = job.log_path.read_text()
    assert f"pipetask started under the job supervisor (process group {job.pid})" in log
    assert f"failed: {job.error}" in log
