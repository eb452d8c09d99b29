"""What the OCPS makes of a bps run's status and logs, and a stop at the time limit (no bps runs here)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from lsst.ts.calibscripts.simulator.executors.bps import BpsProcess
from lsst.ts.calibscripts.simulator.executors.bps_outcome import (
    append_bps_logs,
    bps_failure_reason,
    partial_run_note,
    running_jobs_text,
)
from lsst.ts.calibscripts.simulator.job_supervisor import session_members
from lsst.ts.calibscripts.simulator.ocps_job import JobParameters, JobPhase, OcpsJob

ISR = "{instrument: 'LATISS', detector: 0, exposure: 2022093000001}"
COMBINE = "{instrument: 'LATISS', detector: 0}"
# What pipetask run-qbb logs for a cluster whose first quantum fails.
FAILED_JOB_LOG = f"""\
--> executable follows <--
pipetask --long-log run-qbb /repo /submit/x.qg --qgraph-node-id a,b
--> end executable <--
INFO 2026-01-01T00:00:01.000+00:00 lsst.pipe.base.single_quantum_executor (isr:{ISR})() - \
Preparing execution of quantum for label=isr dataId={ISR}.
ERROR 2026-01-01T00:00:02.000+00:00 lsst.pipe.base.single_quantum_executor (isr:{ISR})() - \
Execution of task 'isr' on quantum {ISR} failed. Exception ValueError: decompression error
ERROR 2026-01-01T00:00:02.000+00:00 lsst.pipe.base.mp_graph_executor ()() - \
Upstream job failed for task 0123 (cpBiasCombine@{COMBINE}), skipping this quantum.
"""


def job(submit: Path, name: str, label: str, status: str, exit_code: int | None) -> dict[str, Any]:
    logs = submit / "logs" / label
    return {
        "name": name,
        "label": label,
        "quanta": {},
        "status": status,
        "exitCode": exit_code,
        "error": None,
        "stdout": str(logs / f"{name}.stdout"),
        "stderr": str(logs / f"{name}.stderr"),
    }


def make_run(tmp_path: Path) -> tuple[dict[str, Any], Path, Path]:
    submit = tmp_path / "submit"
    (submit / "logs" / "detector").mkdir(parents=True)
    (submit / "logs" / "finalJob").mkdir(parents=True)
    (submit / "quantumGraphGeneration.out").write_text("QuantumGraph contains 4 quanta for 2 tasks\n")
    (submit / "logs" / "detector" / "detector_0.stderr").write_text(FAILED_JOB_LOG)
    (submit / "logs" / "finalJob" / "finalJob.stderr").write_text("Ingested 3 dataset(s)\n")
    status = {
        "stage": "done",
        "outputRun": "u/ocps/j1/20260101T000000Z",
        "jobs": [
            job(submit, "detector_0", "detector", "failed", 1),
            job(submit, "verify_1", "verify", "blocked", None),
        ],
        "finalJob": job(submit, "finalJob", "finalJob", "succeeded", 0),
    }
    log_path = tmp_path / "outs" / "ocps.log"
    log_path.parent.mkdir()
    log_path.write_text("ocps: 2026-01-01T00:00:00.000+00:00 job j1\n")
    return status, submit, log_path


def test_a_failed_run_names_jobs_task_exception_and_blocked_quanta(tmp_path: Path) -> None:
    status, submit, log_path = make_run(tmp_path)
    assert bps_failure_reason(status, 1, submit, log_path) == (
        f"bps: 1 of 2 jobs failed (detector_0 exit code 1): task isr failed on {ISR}: ValueError: "
        f"decompression error; 1 quantum blocked (cpBiasCombine on {COMBINE}); 1 jobs blocked by them "
        f"(verify_1); log: {log_path}"
    )
    assert partial_run_note(status, "u/ocps/j1") == (
        "partial run ingested: u/ocps/j1 (run u/ocps/j1/20260101T000000Z) holds what the quanta that "
        "succeeded wrote (0 of 2 jobs succeeded); it is not a complete product: do not certify it"
    )


def test_every_log_is_appended_after_a_line_naming_it(tmp_path: Path) -> None:
    status, submit, log_path = make_run(tmp_path)
    assert append_bps_logs(status, submit, log_path) == 3
    text = log_path.read_text()
    names = [line.split("==> ")[1].split(" <==")[0] for line in text.splitlines() if "==> " in line]
    assert names == [
        "submit/quantumGraphGeneration.out",
        "submit/logs/detector/detector_0.stderr",
        "submit/logs/finalJob/finalJob.stderr",
    ]
    assert FAILED_JOB_LOG in text
    assert text.rstrip().endswith("<== end of bps logs")


def test_quantum_graph_failures_and_running_jobs(tmp_path: Path) -> None:
    status, submit, log_path = make_run(tmp_path)
    (submit / "quantumGraphGeneration.out").write_text(
        "lsst.daf.butler._exceptions.InvalidQueryError: Failed to parse expression\n"
    )
    assert bps_failure_reason({"stage": "preparing failed", "error": "x"}, 1, submit, log_path) == (
        "bps could not build the quantum graph: lsst.daf.butler._exceptions.InvalidQueryError: Failed to "
        f"parse expression; log: {log_path}"
    )
    status["stage"] = "running"
    status["jobs"][0]["status"] = "pending"
    (submit / "logs" / "detector" / "detector_0.stderr").write_text(FAILED_JOB_LOG.split("ERROR")[0])
    assert running_jobs_text(status) == f"detector_0 (isr on {ISR})"


async def test_a_bps_job_over_its_time_limit_names_what_ran_and_stops(tmp_path: Path) -> None:
    status, submit, _ = make_run(tmp_path)
    status.update(stage="running", outputRun=None)
    status["jobs"][0]["status"] = "pending"
    (submit / "logs" / "detector" / "detector_0.stderr").write_text(FAILED_JOB_LOG.split("ERROR")[0])
    status_path = tmp_path / "bps_status.json"
    status_path.write_text(json.dumps(status))
    # A driver that never ends, with a worker in a process group of its own (as Parsl's pool).
    worker = f"{sys.executable} -c 'import os, time; os.setpgid(0, 0); time.sleep(300)'"
    command = ["sh", "-c", f"{worker} & sleep 300"]
    process = BpsProcess(
        command,
        dict(os.environ),
        cwd=tmp_path,
        notes=["bps configuration: bps.yaml"],
        status_path=status_path,
        submit_path=submit,
        repo=str(tmp_path / "repo"),
        output_collection="u/ocps/j1",
    )
    job = OcpsJob(
        job_id="j1",
        number=1,
        instrument="LATISS",
        parameters=JobParameters(pipeline="p.yaml"),
        log_path=tmp_path / "uws" / "j1" / "outs" / "ocps.log",
    )
    run = asyncio.create_task(job.run([], repo="/repo", time_limit=3.0, kill_grace=1.0, process=process))
    async with asyncio.timeout(10):
        while job.pid is None or len({pgid for _, pgid in session_members(job.pid)}) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await run
    assert job.phase == JobPhase.ERROR
    assert job.error == (
        f"job exceeded its time limit of 3 s and was stopped while running detector_0 (isr on {ISR}); "
        f"log: {job.log_path}"
    )
    assert job.pid is not None and session_members(job.pid) == []
    log = job.log_path.read_text()
    assert "bps started under the job supervisor" in log
    assert "==> submit/logs/detector/detector_0.stderr <==" in log
    assert "partial run: nothing to clean up" in log
