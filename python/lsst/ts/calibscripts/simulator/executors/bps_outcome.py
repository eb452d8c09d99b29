"""What a bps run did: its logs, the reason of a failure, and its partial outputs.

After the bps driver (`~lsst.ts.calibscripts.simulator.executors.bps_driver`)
has exited or been stopped, the OCPS

- appends every log bps wrote to the job log (`append_bps_logs`): the
  quantum graph generation (``submit/quantumGraphGeneration.out``) and the
  output of every job (``submit/logs/<label>/<job>.stderr``/``.stdout``:
  ``pipetaskInit``, each cluster's ``pipetask run-qbb``, the final job's
  ``butler aggregate-graph``), each after a line naming the file, so that
  ``ocps.log`` is complete on its own;
- says why a run failed in one line (`bps_failure_reason`): the failed and
  blocked jobs, and the first failed task, quantum and exception as
  pipetask logs them;
- decides what becomes of a partial run: after failed quanta the final job
  has run, as bps always runs it, so the outputs of the quanta that
  succeeded are registered in ``u/ocps/<jobId>`` ("partial run ingested");
  a run that was stopped (abort, time limit) never reaches the final job,
  so nothing of it is registered, and the files its jobs wrote are removed
  from the datastore (`clean_up_stopped_run`, "partial run cleaned up").
  The job log says which.
"""

from __future__ import annotations

__all__ = [
    "append_bps_logs",
    "blocked_quanta",
    "bps_failure_reason",
    "clean_up_stopped_run",
    "partial_run_note",
    "running_jobs_text",
]

import contextlib
import datetime
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..ocps_job import describe_failed_quanta, last_error_line, read_log_tail, running_quanta
from .bps_driver import JobStatus

# pipetask run-qbb about a quantum not run because one it depends on failed.
_BLOCKED = re.compile(
    r"Upstream job failed for task \S+ \((?P<label>[^@\s]+)@(?P<data_id>\{.*\})\), skipping"
)

# Longest part of a job's log read to explain it.
_JOB_LOG_BYTES = 4 * 1024 * 1024

_MAX_NAMED = 3


def _submit_files(status: Mapping[str, Any] | None, submit_path: Path) -> list[Path]:
    """Return the logs bps wrote for a run, in the order it wrote them."""
    files = [submit_path / "quantumGraphGeneration.out"]
    jobs: list[Mapping[str, Any]] = list(status["jobs"]) if status else []
    if status and status.get("finalJob"):
        jobs.append(status["finalJob"])
    for job in jobs:
        files += [Path(job["stderr"]), Path(job["stdout"])]
    # Logs of jobs the status does not know (a driver killed early).
    logs = submit_path / "logs"
    if logs.is_dir():
        known = set(files)
        files += sorted(p for p in logs.rglob("*") if p.is_file() and p not in known)
    return files


def append_bps_logs(status: Mapping[str, Any] | None, submit_path: Path, log_path: Path) -> int:
    """Append bps's logs to the job log; return how many files were appended.

    Each non-empty file follows a line ``ocps: <time> ==> <file> <==``.

    Parameters
    ----------
    status : `~collections.abc.Mapping` or `None`
        The driver's status (`~.bps_driver.read_status`).
    submit_path : `~pathlib.Path`
        bps's submit directory.
    log_path : `~pathlib.Path`
        The job log.
    """
    appended = 0
    with log_path.open("a") as log:
        for path in _submit_files(status, submit_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if not text.strip():
                continue
            name = path.relative_to(submit_path.parent) if path.is_relative_to(submit_path.parent) else path
            log.write(f"ocps: {_now()} ==> {name} <==\n{text}")
            if not text.endswith("\n"):
                log.write("\n")
            appended += 1
        log.write(f"ocps: {_now()} <== end of bps logs\n" if appended else "")
    return appended


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def blocked_quanta(log_text: str) -> list[str]:
    """Name the quanta a ``pipetask run-qbb`` log says were skipped after an upstream failure.

    Parameters
    ----------
    log_text : `str`
        The job's output.
    """
    return list(dict.fromkeys(f"{m['label']} on {m['data_id']}" for m in _BLOCKED.finditer(log_text)))


def _job_log(job: Mapping[str, Any]) -> str:
    return "".join(read_log_tail(Path(job[name]), _JOB_LOG_BYTES) for name in ("stderr", "stdout"))


def _named(items: Sequence[str]) -> str:
    text = ", ".join(items[:_MAX_NAMED])
    return text + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


def _failed_jobs_text(jobs: Sequence[Mapping[str, Any]]) -> str | None:
    failed = [j for j in jobs if j["status"] == JobStatus.FAILED]
    if not failed:
        return None
    named = _named([f"{j['name']} exit code {j['exitCode']}" for j in failed])
    return f"{len(failed)} of {len(jobs)} jobs failed ({named})"


def _blocked_jobs_text(jobs: Sequence[Mapping[str, Any]]) -> str | None:
    blocked = [j for j in jobs if j["status"] == JobStatus.BLOCKED]
    if not blocked:
        return None
    return f"{len(blocked)} jobs blocked by them ({_named([j['name'] for j in blocked])})"


def bps_failure_reason(
    status: Mapping[str, Any] | None, exit_code: int, submit_path: Path, log_path: Path
) -> str:
    """Say why a bps run failed, in one line ending with the job log's path.

    Parameters
    ----------
    status : `~collections.abc.Mapping` or `None`
        The driver's status.
    exit_code : `int`
        The driver's exit code (128 + N: killed by signal N).
    submit_path : `~pathlib.Path`
        bps's submit directory.
    log_path : `~pathlib.Path`
        The job log.

    Returns
    -------
    reason : `str`
        E.g. "bps: 1 of 1 jobs failed (detector_0 exit code 1): task isr
        failed on {...}: ValueError: ...; 1 quantum blocked (cpBiasCombine
        on {...}); log: ...".
    """
    stage = (status or {}).get("stage", "preparing")
    if status is None or stage == "preparing failed" or (stage == "preparing" and exit_code):
        text = read_log_tail(submit_path / "quantumGraphGeneration.out") or read_log_tail(log_path)
        cause = last_error_line(text) or (status or {}).get("error") or f"exit code {exit_code}"
        return f"bps could not build the quantum graph: {cause}; log: {log_path}"
    jobs = [j for j in status["jobs"] if j["name"] != "pipetaskInit"]
    init = next((j for j in status["jobs"] if j["name"] == "pipetaskInit"), None)
    if stage == "starting failed":
        cause = (init and last_error_line(_job_log(init))) or status.get("error") or f"exit code {exit_code}"
        return f"bps: pipetaskInit failed: {cause}; log: {log_path}"
    parts = []
    jobs_text = _failed_jobs_text(jobs)
    failed_logs = [_job_log(j) for j in jobs if j["status"] == JobStatus.FAILED]
    quanta = [q for text in failed_logs if (q := describe_failed_quanta(text))]
    cause = None
    if quanta:
        cause = quanta[0] + (f" (and in {len(quanta) - 1} other job(s))" if len(quanta) > 1 else "")
    elif failed_logs:
        cause = next((e for text in failed_logs if (e := last_error_line(text))), None)
    if jobs_text:
        parts.append(f"{jobs_text}: {cause}" if cause else jobs_text)
    blocked = [q for text in failed_logs for q in blocked_quanta(text)]
    if blocked:
        noun = "quantum" if len(blocked) == 1 else "quanta"
        parts.append(f"{len(blocked)} {noun} blocked ({_named(blocked)})")
    if blocked_jobs := _blocked_jobs_text(jobs):
        parts.append(blocked_jobs)
    final = status.get("finalJob")
    if final and final["status"] == JobStatus.FAILED:
        cause = last_error_line(_job_log(final)) or final.get("error") or ""
        parts.append(
            f"the final job (butler aggregate-graph) failed with exit code {final['exitCode']}: {cause}"
        )
    if exit_code > 128 and not parts:
        parts.append(f"the bps driver was killed by signal {exit_code - 128} during stage {stage}")
    if not parts:
        parts.append(f"the bps driver exited with code {exit_code} at stage {stage}")
    return "bps: " + "; ".join(parts) + f"; log: {log_path}"


def running_jobs_text(status: Mapping[str, Any] | None) -> str | None:
    """Name the jobs (and their quanta) still running, for a job over its time limit.

    Parameters
    ----------
    status : `~collections.abc.Mapping` or `None`
        The driver's status.
    """
    if status is None:
        return None
    if status.get("stage") in ("preparing", "starting"):
        return f"bps ({status['stage']})"
    running = []
    for job in status["jobs"]:
        if job["status"] != JobStatus.PENDING or not Path(job["stderr"]).exists():
            continue
        quanta = running_quanta(_job_log(job))
        running.append(f"{job['name']}" + (f" ({quanta})" if quanta else ""))
    if status.get("stage") == "finalizing":
        running.append("the final job (butler aggregate-graph)")
    return _named(running) if running else None


def partial_run_note(status: Mapping[str, Any], output_collection: str) -> str | None:
    """Say what became of the outputs of a failed run (the final job ran).

    Parameters
    ----------
    status : `~collections.abc.Mapping`
        The driver's status.
    output_collection : `str`
        ``u/ocps/<jobId>``.

    Returns
    -------
    note : `str` or `None`
        A line for the job log, or None if there is nothing partial.
    """
    jobs = [j for j in status["jobs"] if j["name"] != "pipetaskInit"]
    succeeded = sum(j["status"] == JobStatus.SUCCEEDED for j in jobs)
    final = status.get("finalJob")
    if final is None or status.get("stage") != "done":
        return None
    if final["status"] != JobStatus.SUCCEEDED:
        return (
            f"partial run NOT ingested: the final job failed, so the outputs of run {status['outputRun']} "
            f"are not (all) registered; {output_collection} may be incomplete or missing"
        )
    if succeeded == len(jobs):
        return None
    return (
        f"partial run ingested: {output_collection} (run {status['outputRun']}) holds what the quanta "
        f"that succeeded wrote ({succeeded} of {len(jobs)} jobs succeeded); it is not a complete "
        "product: do not certify it"
    )


def _datastore_run_directory(repo: str, output_run: str) -> Path | None:
    """Where a file datastore keeps a run's files, if it is a local directory."""
    from lsst.daf.butler import ButlerConfig
    from lsst.resources import ResourcePath

    config = ButlerConfig(repo)
    try:
        root = str(config["datastore", "root"])
    except KeyError:
        return None  # e.g. a chained datastore: not handled here
    root = root.replace("<butlerRoot>", str(config.configDir))
    location = ResourcePath(root, forceDirectory=True)
    if not location.isLocal:
        return None
    base = Path(location.ospath).resolve()
    run_directory = (base / output_run).resolve()
    return run_directory if run_directory.is_relative_to(base) and run_directory != base else None


def clean_up_stopped_run(status: Mapping[str, Any] | None, repo: str, output_collection: str) -> str:
    """Remove the unregistered files of a run that was stopped before its final job.

    Call it once no process of the run is left.

    Parameters
    ----------
    status : `~collections.abc.Mapping` or `None`
        The driver's status.
    repo : `str`
        Butler repository.
    output_collection : `str`
        ``u/ocps/<jobId>``.

    Returns
    -------
    note : `str`
        What was done, for the job log ("partial run cleaned up: ...").
    """
    if status is None or not status.get("outputRun"):
        return "partial run: nothing to clean up (stopped before the quantum graph was built)"
    output_run = str(status["outputRun"])
    from lsst.daf.butler import Butler, MissingCollectionError

    with Butler.from_config(repo) as butler:
        try:
            butler.collections.get_info(output_run)
            registered = True
        except MissingCollectionError:
            registered = False
    if registered:
        return (
            f"partial run left as ingested: run {output_run} was registered before the stop "
            f"(the final job had started); {output_collection} is incomplete: do not certify it"
        )
    directory = _datastore_run_directory(repo, output_run)
    if directory is None:
        return (
            f"partial run NOT cleaned up: the datastore of {repo} is not a local directory; the files of "
            f"run {output_run} were never registered"
        )
    if not directory.exists():
        return f"partial run cleaned up: nothing of run {output_run} was written or registered"
    count = sum(1 for p in directory.rglob("*") if p.is_file())
    shutil.rmtree(directory)
    # The job's own directory (u/ocps/<jobId>), if nothing else is in it.
    with contextlib.suppress(OSError):
        own = directory.parent
        if own.name == output_collection.rsplit("/", 1)[-1] and not any(own.iterdir()):
            own.rmdir()
    return (
        f"partial run cleaned up: removed {count} unregistered file(s) of run {output_run} "
        f"({directory}) from the datastore; nothing of it was registered"
    )
