"""The program the OCPS runs for a bps job: ``bps submit`` with an outcome that tells the truth.

Run as::

    python -m lsst.ts.calibscripts.simulator.executors.bps_driver bps.yaml --status bps_status.json

in the job's directory (Parsl writes ``./runinfo`` there), under the job
supervisor. It does what ``bps submit`` does with the Parsl plugin, through
bps's own Python API:

1. `lsst.ctrl.bps.drivers.prepare_driver`: builds the quantum graph
   (``pipetask qgraph``), clusters it, and prepares the Parsl workflow;
2. ``workflow.start()``: runs ``pipetaskInit`` locally and starts Parsl;
3. ``workflow.run(block=False)``, then waits for the future of every job;
4. ``workflow.shutdown()`` (stops Parsl's interchange and worker pool) and
   ``workflow.finalize_jobs()`` (the final job, ``butler
   aggregate-graph``, which registers the outputs in the repository).

``bps submit`` exits with 0 even when quanta fail, and ``bps report``,
``status`` and ``cancel`` are not implemented for Parsl. This driver
instead records what happened to each job in the status file (JSON; see
`read_status`), rewritten at every stage, and exits with:

- 0 if every job and the final job succeeded;
- 1 if anything failed: the quantum graph could not be built, a job failed
  (its exit code is recorded) or was blocked by a failed job it depends on,
  or the final job failed;
- 128 + N if it was stopped by signal N (SIGTERM: an abort or the OCPS's
  time limit). It then records the stage it was in and exits at once: it
  does not run the final job (nothing of the run is registered), and it
  leaves Parsl's processes (interchange, worker pool) to the stop, which
  signals every process group of the job's session. A graceful
  ``workflow.shutdown()`` would wait on the interchange the same stop has
  already killed.

Only `lsst.ctrl.bps` (with its Parsl plugin) and the standard library are
used, so that the driver is the same bps an operator would run.
"""

from __future__ import annotations

__all__ = ["STATUS_VERSION", "JobStatus", "main", "read_status"]

import argparse
import contextlib
import datetime
import enum
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import Any

STATUS_VERSION = 1
"""Version of the status file's layout."""

# Seconds between checks of the jobs' futures and of a stop request.
_POLL_INTERVAL = 0.2

_log = logging.getLogger("lsst.ts.calibscripts.bps_driver")


class JobStatus(enum.StrEnum):
    """What happened to one bps job (a cluster of quanta)."""

    PENDING = "pending"
    """Not finished yet (or never started: the run stopped first)."""
    SUCCEEDED = "succeeded"
    """Its command exited with 0."""
    FAILED = "failed"
    """Its command exited with another code (``exitCode``)."""
    BLOCKED = "blocked"
    """Not run: a job it depends on failed."""


class _UtcFormatter(logging.Formatter):
    """``LEVEL <ISO time UTC> logger - message``, as pipetask's ``--long-log``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        time = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return time.isoformat(timespec="milliseconds")


def _quiet_parsl(record: logging.LogRecord) -> bool:
    # Parsl makes some loggers after bps has set their level (parsl.log_level)
    # and sets them to DEBUG: only its warnings and errors go to the job log.
    return not record.name.startswith("parsl") or record.levelno >= logging.WARNING


def _set_up_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_UtcFormatter("%(levelname)s %(asctime)s %(name)s - %(message)s"))
    handler.addFilter(_quiet_parsl)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


class _Stopped(BaseException):
    """Raised by the signal handler to leave bps's preparation at once."""


class _Driver:
    """One bps run and its status file."""

    def __init__(self, config_file: Path, status_file: Path) -> None:
        self.config_file = config_file
        self.status_file = status_file
        self.stop_signal: int | None = None
        self.stopped = threading.Event()
        # While bps prepares (imports, quantum graph), a stop must not wait
        # for it: the handler raises _Stopped. Elsewhere it only sets the flag.
        self.interruptible = False
        self.status: dict[str, Any] = {
            "version": STATUS_VERSION,
            "stage": "preparing",
            "pid": os.getpid(),
            "config": str(config_file),
            "outputRun": None,
            "submitPath": None,
            "qgraphFile": None,
            "jobs": [],
            "finalJob": None,
            "error": None,
            "stopSignal": None,
            "stageTimes": {},
        }

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self.stopped.set()
        if self.interruptible:
            self.interruptible = False
            raise _Stopped()

    def write_status(self, **changes: Any) -> None:
        self.status.update(changes)
        # When each stage began (UTC, ISO 8601).
        self.status["stageTimes"].setdefault(self.status["stage"], _now())
        temporary = self.status_file.with_name(self.status_file.name + ".tmp")
        temporary.write_text(json.dumps(self.status, indent=1))
        os.replace(temporary, self.status_file)

    def stop_code(self) -> int:
        assert self.stop_signal is not None
        signame = signal.Signals(self.stop_signal).name
        stage = self.status["stage"]
        _log.warning("Stopped by signal %d (%s) during stage %s", self.stop_signal, signame, stage)
        self.write_status(stopSignal=self.stop_signal)
        return 128 + self.stop_signal

    def run(self) -> int:
        self.interruptible = True
        try:
            if self.stopped.is_set():
                raise _Stopped()
            # Imported here: a bad installation becomes a recorded error.
            try:
                from lsst.ctrl.bps.drivers import prepare_driver  # type: ignore[import-untyped]
            except Exception as e:
                return self.fail(f"cannot import lsst.ctrl.bps: {type(e).__name__}: {e}")
            config, workflow = prepare_driver(str(self.config_file))
            self.interruptible = False
        except BaseException as e:
            self.interruptible = False
            if self.stopped.is_set():
                return self.stop_code()
            return self.fail(_exception_text(e))
        self.write_status(
            stage="starting",
            outputRun=str(config["outputRun"]),
            submitPath=str(config[".bps_defined.submitPath"]),
            qgraphFile=str(config[".bps_defined.runQgraphFile"]),
            jobs=[_job_record(job) for job in workflow.jobs.values()],
            finalJob=_job_record(workflow.final) if workflow.final is not None else None,
        )
        if self.stopped.is_set():
            return self.stop_code()
        try:
            workflow.start()
        except BaseException as e:
            self._record_init(workflow, e)
            if workflow.dfk is not None:
                with contextlib.suppress(Exception):
                    workflow.shutdown()
            if self.stopped.is_set():
                return self.stop_code()
            return self.fail(f"pipetaskInit failed: {_exception_text(e)}")
        self._record_init(workflow, None)
        self.write_status(stage="running")
        workflow.run(block=False)
        if self._wait(workflow) or self.stopped.is_set():
            # No graceful shutdown: Parsl's would talk to an interchange
            # that the same stop has already signalled, and wait. The OCPS
            # stops every process of the job's session; main() leaves
            # without Parsl's exit handlers.
            self._record_jobs(workflow)
            return self.stop_code()
        start = time.monotonic()
        workflow.shutdown()
        _log.info("Parsl shut down in %.1f s", time.monotonic() - start)
        self._record_jobs(workflow)
        counts = _counts(self.status["jobs"])
        _log.info("Jobs: %s", ", ".join(f"{n} {status}" for status, n in counts.items()) or "none")
        self.write_status(stage="finalizing")
        final_error: BaseException | None = None
        try:
            workflow.finalize_jobs()
        except BaseException as e:
            final_error = e
        if self.stopped.is_set():
            return self.stop_code()
        if workflow.final is not None:
            if final_error is None:
                self.status["finalJob"] = _job_record(workflow.final, JobStatus.SUCCEEDED, 0)
            else:
                self.status["finalJob"] = _job_record(
                    workflow.final,
                    JobStatus.FAILED,
                    getattr(final_error, "returncode", None),
                    _exception_text(final_error),
                )
        unsuccessful = [job for job in self.status["jobs"] if job["status"] != JobStatus.SUCCEEDED]
        self.write_status(stage="done")
        return 1 if unsuccessful or final_error is not None else 0

    def fail(self, error: str) -> int:
        _log.error("%s", error)
        self.write_status(stage=f"{self.status['stage']} failed", error=error)
        return 1

    def _record_init(self, workflow: Any, error: BaseException | None) -> None:
        init = workflow.jobs.get("pipetaskInit")
        if init is None:
            return
        for record in self.status["jobs"]:
            if record["name"] == "pipetaskInit":
                if error is None:
                    record.update(status=JobStatus.SUCCEEDED, exitCode=0)
                else:
                    record.update(
                        status=JobStatus.FAILED,
                        exitCode=getattr(error, "returncode", None),
                        error=_exception_text(error),
                    )
        self.write_status()

    def _futures(self, workflow: Any) -> dict[str, Future[Any]]:
        return {name: job.future for name, job in workflow.jobs.items() if job.future is not None}

    def _wait(self, workflow: Any) -> bool:
        """Wait until every job's future is done; return True if stopped first."""
        futures = self._futures(workflow)
        reported: set[str] = set()
        while True:
            for name, future in futures.items():
                if future.done() and name not in reported:
                    reported.add(name)
                    self._record_jobs(workflow)
            if len(reported) == len(futures):
                return False
            if self.stopped.wait(_POLL_INTERVAL):
                return True

    def _record_jobs(self, workflow: Any) -> None:
        records = []
        for name, job in workflow.jobs.items():
            previous = next((r for r in self.status["jobs"] if r["name"] == name), None)
            if name == "pipetaskInit" and previous is not None:
                records.append(previous)
                continue
            future = job.future
            if future is None or not future.done():
                records.append(_job_record(job))
                continue
            error = future.exception()
            if error is None:
                records.append(_job_record(job, JobStatus.SUCCEEDED, 0))
            elif type(error).__name__ == "DependencyError":
                records.append(_job_record(job, JobStatus.BLOCKED, None, "a job it depends on failed"))
            else:
                exit_code = getattr(error, "exitcode", None)
                records.append(_job_record(job, JobStatus.FAILED, exit_code, _exception_text(error)))
        self.write_status(jobs=records)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _exception_text(error: BaseException) -> str:
    text = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _job_record(
    job: Any,
    status: JobStatus = JobStatus.PENDING,
    exit_code: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    generic = job.generic
    counts = getattr(generic, "quanta_counts", None) or {}
    return {
        "name": job.name,
        "label": generic.label,
        "quanta": dict(counts),
        "status": str(status),
        "exitCode": exit_code,
        "error": error,
        "stdout": job.stdout,
        "stderr": job.stderr,
    }


def _counts(jobs: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return counts


def read_status(path: Path) -> dict[str, Any] | None:
    """Read a driver's status file.

    Parameters
    ----------
    path : `~pathlib.Path`
        The status file.

    Returns
    -------
    status : `dict` or `None`
        None if the file does not exist or cannot be read (the driver
        never got that far). Keys: ``stage`` (``preparing``, ``starting``,
        ``running``, ``finalizing``, ``done``, or ``<stage> failed``),
        ``outputRun``, ``submitPath``, ``qgraphFile``, ``jobs`` (one dict
        per job: ``name``, ``label``, ``quanta`` (count per task label),
        ``status`` (a `JobStatus`), ``exitCode``, ``error``, ``stdout``,
        ``stderr``), ``finalJob`` (same, or None), ``error`` (why the run
        could not start), ``stopSignal`` and ``stageTimes`` (when each
        stage began, ISO 8601 UTC).
    """
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one bps submission to its end; return the exit code described above.

    Parameters
    ----------
    argv : `~collections.abc.Sequence` [`str`], optional
        ``CONFIG --status FILE``; default: `sys.argv`.
    """
    parser = argparse.ArgumentParser(
        prog="python -m " + __name__, description="Run a bps submission with the Parsl plugin to its end."
    )
    parser.add_argument("config", type=Path, help="the bps YAML")
    parser.add_argument("--status", type=Path, required=True, help="where to write the status (JSON)")
    args = parser.parse_args(argv)
    _set_up_logging()
    driver = _Driver(args.config.resolve(), args.status.resolve())
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, driver.on_signal)
    driver.write_status()
    code = driver.run()
    if driver.stop_signal is not None:
        # Parsl's exit handlers would try to shut down what the stop has
        # already signalled, and hang: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
