"""One OCPS job: a ``pipetask run`` subprocess with its log and final state.

The simulated OCPS (`lsst.ts.calibscripts.simulator.ocps`) turns each
``execute`` command into an `OcpsJob`. A job knows nothing about SAL: it
waits for its prerequisite jobs, runs pipetask in its own process group with
all output going to ``<scratch>/uws/<jobId>/outs/ocps.log``, can be aborted
at any point, and describes itself as the JSON ``result`` of the
``job_result`` event (`OcpsJob.result`).

pipetask runs under the job supervisor
(`lsst.ts.calibscripts.simulator.job_supervisor`), so that neither it nor
its ``-j`` workers outlive the process that runs the OCPS, even if that
process is killed with SIGKILL. A failed job's ``error`` is made by
`failure_reason` from the exit code and the job log: it names the failing
or running task and quantum, the exit code or signal, the exception and
the log path.
"""

from __future__ import annotations

__all__ = [
    "ABORTED_EXIT_CODE",
    "FAILED_EXIT_CODE",
    "JobParameters",
    "JobPhase",
    "JobProcess",
    "JobRequestError",
    "OcpsJob",
    "build_pipetask_command",
    "describe_failed_quanta",
    "failure_reason",
    "job_log_path",
    "last_error_line",
    "output_collection",
    "read_log_tail",
    "resolve_pipeline",
    "running_quanta",
]

import asyncio
import contextlib
import dataclasses
import datetime
import enum
import errno
import logging
import os
import re
import shlex
import shutil
import signal
import string
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cp.butler.pipeline_locations import (
    CP_PIPE_DIR_VARIABLE,
    CP_VERIFY_DIR_VARIABLE,
    cp_pipe_dir,
    cp_verify_dir,
)
from ..cp.butler.pipetask_options import (
    PipetaskOptionError,
    check_data_query,
    check_pipeline,
    parse_job_config,
)
from .job_supervisor import session_groups, session_members, shell_exit_code, supervised_command

ABORTED_EXIT_CODE = 255
"""Exit code of an aborted job, as the production OCPS reports it."""

FAILED_EXIT_CODE = 1
"""Exit code of a job that failed before pipetask could run (bad request,
failed prerequisite, injected fault) or whose process could not start."""

# Last line of a failed pipetask run that names the cause: a Python
# exception ("FileNotFoundError: ...", "lsst....InvalidQueryError: ...") or
# a click error ("Error: QuantumGraph was empty; ...").
_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)|Error): \S")

# What pipetask (lsst.pipe.base's single_quantum_executor and
# mp_graph_executor) logs about each quantum. A quantum is a task label and
# a data id such as "{instrument: 'LATISS', detector: 0}"; all these
# messages spell the data id the same way.
_QUANTUM_STARTED = re.compile(
    r"Preparing execution of quantum for label=(?P<label>\S+) dataId=(?P<data_id>\{.*\})"
)
_QUANTUM_SUCCEEDED = re.compile(r"Execution of task '(?P<label>[^']+)' on quantum (?P<data_id>\{.*\}) took ")
_QUANTUM_FAILED = re.compile(
    r"Execution of task '(?P<label>[^']+)' on quantum (?P<data_id>\{.*\}) failed\. Exception (?P<error>.+)$"
)
# -j N: the main process about a worker process that failed or was killed.
_WORKER_FAILED = re.compile(
    r"Task <(?P<label>\S+) dataId=(?P<data_id>\{.*\})> failed, (?P<error>exit code=\d+|killed by signal .+?)"
    r"(?:; processing will continue.*)?$"
)
_WORKER_TIMED_OUT = re.compile(
    r"Timeout \((?P<error>[^)]*)\) for task <(?P<label>\S+) dataId=(?P<data_id>\{.*\})>"
)
_GRAPH_BUILT = re.compile(r"QuantumGraph contains (?P<quanta>\d+) quanta")
_PROGRESS = re.compile(r"Executed (?P<done>\d+) quanta successfully, (?P<failed>\d+) failed")

# Longest data id and exception text quoted in a reason.
_MAX_DATA_ID = 200
_MAX_ERROR = 500
# Most quanta named in a reason.
_MAX_QUANTA = 3

# How much of the end of a log is searched for the failure reason (the
# start of a quantum still running may be far back).
_LOG_TAIL_BYTES = 8 * 1024 * 1024

# Seconds between checks that a stopped job's processes are gone.
_GROUP_POLL_INTERVAL = 0.05


class JobPhase(enum.StrEnum):
    """Phase of a job, as in the IVOA UWS protocol the production OCPS uses."""

    PENDING = "pending"
    """Accepted; waiting for prerequisite jobs."""
    EXECUTING = "executing"
    """pipetask is running."""
    COMPLETED = "completed"
    """pipetask exited with code 0."""
    ERROR = "error"
    """The job failed; ``error`` in the result says why."""
    ABORTED = "aborted"
    """Stopped by ``abort_job`` or because the OCPS left ENABLED."""

    @property
    def is_final(self) -> bool:
        """Is this the phase of a finished job?"""
        return self in (JobPhase.COMPLETED, JobPhase.ERROR, JobPhase.ABORTED)


class JobRequestError(ValueError):
    """The fields of an ``execute`` command cannot make a pipetask job."""


@dataclasses.dataclass(frozen=True)
class JobParameters:
    """The fields of one ``execute`` command, as received.

    Attributes
    ----------
    pipeline : `str`
        Pipeline file; may use ``${CP_PIPE_DIR}``/``${CP_VERIFY_DIR}`` and
        end with ``#subset``.
    version : `str`
        Requested science pipelines version (blank: the installed one).
    config : `str`
        Extra pipetask arguments.
    data_query : `str`
        Butler data query.
    prereq_jobs : `str`
        Comma-separated ids of jobs that must finish first.
    output_dataset_types : `str`
        Comma-separated dataset types of interest (recorded only).
    """

    pipeline: str = ""
    version: str = ""
    config: str = ""
    data_query: str = ""
    prereq_jobs: str = ""
    output_dataset_types: str = ""

    @classmethod
    def from_message(cls, data: Any) -> JobParameters:
        """Take the parameters from an ``execute`` command message."""
        return cls(**{field.name: getattr(data, field.name) for field in dataclasses.fields(cls)})

    @property
    def prerequisite_ids(self) -> list[str]:
        """Ids in ``prereq_jobs``, blanks dropped, in order."""
        return [job_id.strip() for job_id in self.prereq_jobs.split(",") if job_id.strip()]

    def as_dict(self) -> dict[str, str]:
        """Return the parameters as a dict (for the result JSON)."""
        return dataclasses.asdict(self)


def output_collection(job_id: str) -> str:
    """Return the output collection of a job: ``u/ocps/<jobId>``."""
    return f"u/ocps/{job_id}"


def job_log_path(scratch_dir: Path, job_id: str) -> Path:
    """Return where a job's log goes: ``<scratch>/uws/<jobId>/outs/ocps.log``."""
    return scratch_dir / "uws" / job_id / "outs" / "ocps.log"


def resolve_pipeline(pipeline: str) -> str:
    """Replace ``$CP_PIPE_DIR``/``$CP_VERIFY_DIR`` (with or without braces).

    Other ``$`` variables are left as they are; a ``#subset`` suffix is kept.

    Parameters
    ----------
    pipeline : `str`
        Pipeline as given in the ``execute`` command.

    Returns
    -------
    pipeline : `str`
        The pipeline with this package's pipeline directories filled in.
    """
    variables = {CP_PIPE_DIR_VARIABLE: str(cp_pipe_dir()), CP_VERIFY_DIR_VARIABLE: str(cp_verify_dir())}
    return string.Template(pipeline).safe_substitute(variables)


def build_pipetask_command(
    pipetask: str | Path,
    *,
    repo: str | Path,
    raw_collection: str,
    job_id: str,
    parameters: JobParameters,
) -> list[str]:
    """Build the ``pipetask run`` command line of a job.

    The command is ``pipetask --long-log run -b REPO -i RAW[,INPUTS] -o
    u/ocps/<jobId> -p PIPELINE [-d QUERY] OPTIONS``. The OCPS is a
    service: it checks every request on its own account, whatever its
    client checked. The ``config`` is parsed against the allow-list of
    `~lsst.ts.calibscripts.cp.butler.pipetask_options.parse_job_config`
    (``-c``, ``-C`` from the pipelines' config directories, ``-i``, ``-j``,
    ``--register-dataset-types``) and rebuilt from what was recognised;
    ``INPUTS`` are its ``-i`` collections (duplicates dropped). The
    pipeline must be one of this package's, and the data query one line.
    So a job can never write outside its own output run, read another
    repository or run code that is not part of the pipelines.

    Parameters
    ----------
    pipetask : `str` or `~pathlib.Path`
        The pipetask executable.
    repo : `str` or `~pathlib.Path`
        Butler repository.
    raw_collection : `str`
        ``<instrument>/raw/all``, always the first input.
    job_id : `str`
        Job id (names the output collection).
    parameters : `JobParameters`
        The request.

    Returns
    -------
    command : `list` [`str`]
        Arguments for `asyncio.create_subprocess_exec`.

    Raises
    ------
    JobRequestError
        If the pipeline is blank or not one of this package's, the data
        query is not one bounded line, or the config cannot be parsed or
        holds an option that is not allowed.
    """
    if not parameters.pipeline.strip():
        raise JobRequestError("pipeline is blank")
    try:
        pipeline = check_pipeline(parameters.pipeline)
        options = parse_job_config(parameters.config)
        query = check_data_query(parameters.data_query.strip())
    except PipetaskOptionError as e:
        raise JobRequestError(str(e)) from None
    inputs = list(dict.fromkeys([raw_collection, *options.inputs]))
    command = [
        str(pipetask),
        # Timestamps and logger names in the job log help operators.
        "--long-log",
        "run",
        "-b",
        str(repo),
        "-i",
        ",".join(inputs),
        "-o",
        output_collection(job_id),
        "-p",
        pipeline,
    ]
    if query:
        command += ["-d", query]
    return command + options.arguments()


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class _LogSummary:
    """What a pipetask log says about the quanta it ran."""

    running: dict[tuple[str, str], None] = dataclasses.field(default_factory=dict)
    """Quanta started and not finished, in order (an ordered set)."""
    failed: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """Failed quanta and why (exception line or worker exit), in order."""
    graph_quanta: int | None = None
    """Size of the quantum graph, once built."""
    succeeded: int = 0
    """Quanta that succeeded (pipetask's own count)."""
    error_line: str | None = None
    """The last exception or ``Error:`` line."""


def _summarize_log(log_text: str) -> _LogSummary:
    summary = _LogSummary()
    for raw_line in log_text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("ocps: "):
            continue  # the OCPS's own lines quote the request, not pipetask
        if _ERROR_LINE.match(line):
            summary.error_line = line
        if match := _QUANTUM_STARTED.search(line):
            summary.running[match["label"], match["data_id"]] = None
        elif match := _QUANTUM_SUCCEEDED.search(line):
            summary.running.pop((match["label"], match["data_id"]), None)
        elif match := _QUANTUM_FAILED.search(line):
            key = (match["label"], match["data_id"])
            summary.running.pop(key, None)
            summary.failed[key] = match["error"]
        elif match := (_WORKER_FAILED.search(line) or _WORKER_TIMED_OUT.search(line)):
            key = (match["label"], match["data_id"])
            summary.running.pop(key, None)
            # The worker's own exception line, if any, says more.
            summary.failed.setdefault(key, f"worker process {match['error']}")
        elif match := _GRAPH_BUILT.search(line):
            summary.graph_quanta = int(match["quanta"])
        elif match := _PROGRESS.search(line):
            summary.succeeded = int(match["done"])
    return summary


def _quanta_text(quanta: Sequence[tuple[str, str]]) -> str:
    named = [f"{label} on {_shorten(data_id, _MAX_DATA_ID)}" for label, data_id in quanta[:_MAX_QUANTA]]
    if len(quanta) > _MAX_QUANTA:
        named.append(f"{len(quanta) - _MAX_QUANTA} more")
    return ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]


def _failed_text(failed: Mapping[tuple[str, str], str]) -> str:
    (label, data_id), error = next(iter(failed.items()))
    first = f"task {label} failed on {_shorten(data_id, _MAX_DATA_ID)}: {_shorten(error, _MAX_ERROR)}"
    if len(failed) == 1:
        return first
    labels = ", ".join(dict.fromkeys(label for label, _ in failed))
    return f"{len(failed)} quanta failed (tasks {labels}); first: {first}"


def _signal_name(exit_code: int | None) -> tuple[int, str] | None:
    """Return (N, name) if ``exit_code`` is 128 + N for a signal N, else None."""
    if exit_code is None or exit_code <= 128:
        return None
    try:
        return exit_code - 128, signal.Signals(exit_code - 128).name
    except ValueError:
        return None


def failure_reason(log_text: str, exit_code: int | None = None, log_path: str | Path | None = None) -> str:
    """Say why a pipetask run failed, from its exit code and its log.

    pipetask logs the start (``Preparing execution of quantum for
    label=LABEL dataId={...}``) and the end (``Execution of task 'LABEL' on
    quantum {...} took ...`` or ``... failed. Exception ...``) of every
    quantum, and with ``-j N`` the failure of each worker process (``Task
    <LABEL dataId={...}> failed, exit code=N`` or ``killed by signal N``).
    The reason names the quanta that failed, or, for a pipetask killed by
    a signal, the quanta it was running.

    Parameters
    ----------
    log_text : `str`
        The (end of the) job log; lines starting ``ocps:`` are ignored.
    exit_code : `int`, optional
        pipetask's exit code as a shell reports it: 128 + N means killed by
        signal N.
    log_path : `str` or `~pathlib.Path`, optional
        The job log, named at the end of the reason.

    Returns
    -------
    reason : `str`
        One line, e.g. "pipetask killed by signal 9 (SIGKILL) while running
        cpBiasCombine on {instrument: 'LATISS', detector: 0}; log:
        /scratch/uws/<jobId>/outs/ocps.log" or "pipetask exited with code
        1: task cpBiasCombine failed on {instrument: 'LATISS', detector:
        0}: ValueError: ...; log: ...". Without a failed task to name, the
        last exception or ``Error:`` line of the log follows the exit code.
    """
    summary = _summarize_log(log_text)
    if (killed_by := _signal_name(exit_code)) is not None:
        reason = f"pipetask killed by signal {killed_by[0]} ({killed_by[1]})"
        if summary.running:
            reason += f" while running {_quanta_text(list(summary.running))}"
        elif summary.graph_quanta is None:
            reason += " before its quantum graph was built"
        elif summary.succeeded == 0 and not summary.failed:
            reason += f" before any task started (quantum graph of {summary.graph_quanta} quanta)"
        else:
            done = f"{summary.succeeded} of {summary.graph_quanta}"
            reason += f" with no task running ({done} quanta had succeeded)"
        if summary.failed:
            reason += f"; earlier, {_failed_text(summary.failed)}"
    else:
        reason = "pipetask failed" if exit_code is None else f"pipetask exited with code {exit_code}"
        if summary.failed:
            reason += f": {_failed_text(summary.failed)}"
        elif summary.error_line is not None:
            reason += f": {_shorten(summary.error_line, _MAX_ERROR)}"
        elif summary.running:
            reason += f" while running {_quanta_text(list(summary.running))}"
        elif not log_text.strip():
            reason += " without output"
    if log_path is not None:
        reason += f"; log: {log_path}"
    return reason


def describe_failed_quanta(log_text: str) -> str | None:
    """Name the quanta a pipetask log says failed, with the first exception.

    Parameters
    ----------
    log_text : `str`
        pipetask output (``pipetask run`` or ``pipetask run-qbb``).

    Returns
    -------
    text : `str` or `None`
        E.g. "task isr failed on {instrument: 'LATISS', detector: 0, ...}:
        ValueError: ..." or "3 quanta failed (tasks isr, cpBiasCombine);
        first: ...", or None if no quantum failed.
    """
    failed = _summarize_log(log_text).failed
    return _failed_text(failed) if failed else None


def last_error_line(log_text: str) -> str | None:
    """Return the last exception or ``Error:`` line of a log (shortened), if any.

    Parameters
    ----------
    log_text : `str`
        Output of pipetask, butler or bps; lines starting ``ocps:`` are
        ignored.
    """
    line = _summarize_log(log_text).error_line
    return None if line is None else _shorten(line, _MAX_ERROR)


def running_quanta(log_text: str) -> str | None:
    """Name the quanta a pipetask log shows started and not finished.

    Parameters
    ----------
    log_text : `str`
        pipetask output.

    Returns
    -------
    text : `str` or `None`
        E.g. "cpBiasCombine on {instrument: 'LATISS', detector: 0}", at
        most three quanta named; None if none is running.
    """
    running = _summarize_log(log_text).running
    return _quanta_text(list(running)) if running else None


def read_log_tail(path: Path, size: int = _LOG_TAIL_BYTES) -> str:
    """Return the last ``size`` bytes of a log as text ("" if it does not exist).

    Parameters
    ----------
    path : `~pathlib.Path`
        The log.
    size : `int`, optional
        Bytes to read from the end.
    """
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - size))
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class JobProcess:
    """What runs for a job under the job supervisor, and how its end is read.

    The base class is the pipetask job: one ``pipetask run`` whose exit
    code is the outcome and whose output in the job log says why it
    failed (`failure_reason`). Other executors (see
    `lsst.ts.calibscripts.simulator.executors`) subclass it to read their
    own outcome and logs.

    Parameters
    ----------
    command : `~collections.abc.Sequence` [`str`]
        The command line (run without a shell, under the supervisor).
    env : `~collections.abc.Mapping` [`str`, `str`]
        Its environment.
    cwd : `~pathlib.Path`, optional
        Its working directory (default: the OCPS's).
    notes : `~collections.abc.Sequence` [`str`], optional
        Lines for the job log, written after the command line.

    Attributes
    ----------
    program : `str`
        What the job log and messages call the process (``pipetask``).
    """

    program = "pipetask"

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.cwd = cwd
        self.notes = list(notes)

    async def conclude(self, exit_code: int, log_path: Path, log: Callable[[str], None]) -> str | None:
        """Read the outcome once the process has exited by itself.

        Parameters
        ----------
        exit_code : `int`
            Its exit code (128 + N if killed by signal N).
        log_path : `~pathlib.Path`
            The job log (the process's output is in it).
        log : callable
            Writes one ``ocps:`` line to the job log.

        Returns
        -------
        reason : `str` or `None`
            None if the job succeeded, else why it failed (one line ending
            with the log path).
        """
        if exit_code == 0:
            return None
        # In a thread: a long log takes a tenth of a second to read.
        return failure_reason(await asyncio.to_thread(read_log_tail, log_path), exit_code, log_path)

    async def running_text(self, log_path: Path) -> str | None:
        """Name what is running now (for the reason of a job over its time limit).

        Parameters
        ----------
        log_path : `~pathlib.Path`
            The job log.
        """
        return running_quanta(await asyncio.to_thread(read_log_tail, log_path))

    async def after_stop(self, log_path: Path, log: Callable[[str], None]) -> None:
        """Tidy up once a stopped process (abort, time limit) is gone.

        Nothing for pipetask: what it wrote stays in its own output run.

        Parameters
        ----------
        log_path : `~pathlib.Path`
            The job log.
        log : callable
            Writes one ``ocps:`` line to the job log.
        """


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(time: datetime.datetime | None) -> str | None:
    return None if time is None else time.isoformat(timespec="milliseconds")


class OcpsJob:
    """One pipetask job of the OCPS.

    Parameters
    ----------
    job_id : `str`
        Hex job id.
    number : `int`
        1-based number of the job in the OCPS (the Nth accepted execute).
    instrument : `str`
        Instrument name, e.g. ``LATISS``.
    parameters : `JobParameters`
        The request.
    log_path : `~pathlib.Path`
        Where the job log is written.
    owner : `str`, optional
        Identity of the requester (``user@host``).
    log : `logging.Logger`, optional
        Where the job's start and end are logged (INFO; a failure at
        WARNING); the OCPS passes its own logger, published as
        ``logMessage``.

    Attributes
    ----------
    phase : `JobPhase`
        Current phase.
    exit_code : `int` or `None`
        Exit code once finished: pipetask's, `ABORTED_EXIT_CODE` if aborted,
        `FAILED_EXIT_CODE` if it failed before pipetask ran.
    error : `str` or `None`
        Why the job failed or was aborted; for a pipetask that failed, see
        `failure_reason`.
    command : `list` [`str`]
        The pipetask command line (empty if it could not be built); it runs
        under the job supervisor (see `supervised_command`).
    pid : `int` or `None`
        Process id of the job supervisor that runs pipetask, once started;
        also the id of the process group of the supervisor, pipetask and
        its ``-j`` workers.
    creation_time, start_time, end_time : `datetime.datetime` or `None`
        When the job was accepted, when pipetask started, when it finished.
    finished : `asyncio.Event`
        Set once the job is in a final phase.
    reported : `asyncio.Event`
        Set by the OCPS once the job's ``job_result`` has been written.
    """

    def __init__(
        self,
        *,
        job_id: str,
        number: int,
        instrument: str,
        parameters: JobParameters,
        log_path: Path,
        owner: str = "",
        log: logging.Logger | None = None,
    ) -> None:
        self.job_id = job_id
        self.number = number
        self.instrument = instrument
        self.parameters = parameters
        self.log_path = log_path
        self.owner = owner
        self.log = log if log is not None else logging.getLogger(__name__)
        self.phase = JobPhase.PENDING
        self.exit_code: int | None = None
        self.error: str | None = None
        self.command: list[str] = []
        self.repo = ""
        self.pid: int | None = None
        self.creation_time = _now()
        self.start_time: datetime.datetime | None = None
        self.end_time: datetime.datetime | None = None
        self.finished = asyncio.Event()
        self.reported = asyncio.Event()
        self._abort_requested = asyncio.Event()
        self._abort_reason = ""
        self._process: asyncio.subprocess.Process | None = None
        self._job_process: JobProcess | None = None

    @property
    def output_collection(self) -> str:
        """The job's output collection, ``u/ocps/<jobId>``."""
        return output_collection(self.job_id)

    def _write_header(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log(
            f"job {self.job_id} (job number {self.number}) for {self.instrument} "
            f"requested by {self.owner or 'unknown'}"
        )
        for name, value in self.parameters.as_dict().items():
            self._log(f"parameter {name}: {value}")
        if self.parameters.version.strip():
            self._log(
                f"version {self.parameters.version.strip()!r} requested; "
                "the simulated OCPS always runs the installed pipelines"
            )

    def end_early(self, reason: str, *, phase: JobPhase = JobPhase.ERROR) -> None:
        """End the job without running it (e.g. the request was unusable).

        Does nothing to a finished job.

        Parameters
        ----------
        reason : `str`
            Why (goes to the log and ``error``).
        phase : `JobPhase`, optional
            ``ERROR`` (exit code `FAILED_EXIT_CODE`) or ``ABORTED`` (exit
            code `ABORTED_EXIT_CODE`).
        """
        if self.finished.is_set():
            return
        with contextlib.suppress(Exception):
            self._write_header()
            self._log(f"request rejected: {reason}" if phase == JobPhase.ERROR else f"aborted: {reason}")
        exit_code = ABORTED_EXIT_CODE if phase == JobPhase.ABORTED else FAILED_EXIT_CODE
        self._finish(phase, exit_code, reason)

    def _log(self, message: str) -> None:
        # Lines written by the OCPS itself start with "ocps:" so that they
        # stand out from pipetask's own output in the same file.
        with self.log_path.open("a") as log:
            log.write(f"ocps: {_now().isoformat(timespec='milliseconds')} {message}\n")

    async def run(
        self,
        prerequisites: Sequence[OcpsJob],
        *,
        command: Sequence[str] = (),
        repo: str,
        env: Mapping[str, str] | None = None,
        time_limit: float,
        kill_grace: float = 5.0,
        injected_fault: str | None = None,
        on_start: Callable[[], Awaitable[None]] | None = None,
        process: JobProcess | None = None,
    ) -> None:
        """Run the job to a final phase; never raises for a failed job.

        Parameters
        ----------
        prerequisites : `~collections.abc.Sequence` [`OcpsJob`]
            Jobs that must finish (completed) before this one starts.
        command : `~collections.abc.Sequence` [`str`], optional
            pipetask command line (see `build_pipetask_command`), if no
            ``process`` is given.
        repo : `str`
            Butler repository (for the result).
        env : `~collections.abc.Mapping` [`str`, `str`], optional
            Environment of the pipetask process, if no ``process`` is given.
        time_limit : `float`
            Seconds pipetask may run before it is stopped (phase error).
        kill_grace : `float`, optional
            Seconds between SIGTERM and SIGKILL when stopping pipetask.
        injected_fault : `str`, optional
            If given, do not run pipetask: fail with `FAILED_EXIT_CODE` and
            this message in the log (fault injection for tests).
        on_start : callable, optional
            Coroutine function awaited once the prerequisites are done,
            just before pipetask starts.
        process : `JobProcess`, optional
            What to run and how to read its outcome (another executor than
            pipetask); default: ``JobProcess(command, env)``.
        """
        if process is None:
            process = JobProcess(command, env if env is not None else {})
        self._job_process = process
        self.command = list(process.command)
        self.repo = repo
        try:
            self._write_header()
            if not await self._wait_for(prerequisites):
                return
            if on_start is not None:
                await on_start()
            self._log(f"command: {shlex.join(self.command)}")
            for name in (CP_PIPE_DIR_VARIABLE, CP_VERIFY_DIR_VARIABLE):
                self._log(f"environment {name}={process.env.get(name, '')}")
            for note in process.notes:
                self._log(note)
            if injected_fault is not None:
                self._log(f"FAULT INJECTED: {injected_fault}; {process.program} was not run")
                self._finish(JobPhase.ERROR, FAILED_EXIT_CODE, injected_fault)
                return
            await self._run_process(process, time_limit, kill_grace)
        except Exception as e:
            # A job must always end with a result; anything unexpected
            # (disk full, no pipetask executable...) becomes its error.
            reason = f"{type(e).__name__}: {e}"
            with contextlib.suppress(Exception):
                self._log(f"OCPS error: {reason}")
            await self._stop_process(kill_grace)
            self._finish(JobPhase.ERROR, FAILED_EXIT_CODE, reason)
        finally:
            # Cancelled (the OCPS is closing): never leave pipetask behind.
            if not self.finished.is_set():
                await asyncio.shield(self._stop_process(kill_grace))
                self._finish(JobPhase.ABORTED, ABORTED_EXIT_CODE, "OCPS stopped while the job ran")

    async def _wait_for(self, prerequisites: Sequence[OcpsJob]) -> bool:
        """Wait for prerequisites; return whether the job may start."""
        if prerequisites:
            ids = ", ".join(job.job_id for job in prerequisites)
            self._log(f"waiting for prerequisite job(s) {ids}")
            waits: list[asyncio.Future[Any]] = [
                asyncio.gather(*(job.finished.wait() for job in prerequisites)),
                asyncio.ensure_future(self._abort_requested.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        if self._abort_requested.is_set():
            program = self._job_process.program if self._job_process is not None else "pipetask"
            self._log(f"aborted before {program} started: {self._abort_reason}")
            self._finish(JobPhase.ABORTED, ABORTED_EXIT_CODE, self._abort_reason)
            return False
        for job in prerequisites:
            self._log(f"prerequisite job {job.job_id} ended: phase {job.phase}, exit code {job.exit_code}")
            if job.phase != JobPhase.COMPLETED:
                reason = (
                    f"prerequisite job {job.job_id} ended in phase {job.phase} "
                    f"(exit code {job.exit_code}): {job.error}"
                )
                self._log(f"not running: {reason}")
                self._finish(JobPhase.ERROR, FAILED_EXIT_CODE, reason)
                return False
        return True

    async def _run_process(self, process: JobProcess, time_limit: float, kill_grace: float) -> None:
        program = process.program
        if self._abort_requested.is_set():
            self._log(f"aborted before {program} started: {self._abort_reason}")
            self._finish(JobPhase.ABORTED, ABORTED_EXIT_CODE, self._abort_reason)
            return
        if shutil.which(self.command[0]) is None:
            # Said here, as starting it directly would: the supervisor
            # below would start, and only its child fail.
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.command[0])
        self.start_time = _now()
        with self.log_path.open("ab") as log:
            # The supervisor leads a new session (and process group) and
            # runs pipetask in it: abort stops pipetask and its -j worker
            # processes together, and the supervisor kills them all if this
            # process dies (see job_supervisor).
            self._process = await asyncio.create_subprocess_exec(
                *supervised_command(self.command, parent_pid=os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=process.env,
                cwd=process.cwd,
                start_new_session=True,
            )
        self.pid = self._process.pid
        self.phase = JobPhase.EXECUTING
        self._log(f"{program} started under the job supervisor (process group {self.pid})")
        self.log.info(
            "Job %s started: %s %s on %r (pid %d)",
            self.job_id,
            program,
            resolve_pipeline(self.parameters.pipeline),
            self.parameters.data_query,
            self.pid,
        )
        exit_wait = asyncio.ensure_future(self._process.wait())
        abort_wait = asyncio.ensure_future(self._abort_requested.wait())
        try:
            done, _ = await asyncio.wait(
                [exit_wait, abort_wait], timeout=time_limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            abort_wait.cancel()
        if exit_wait in done:
            exit_code = shell_exit_code(exit_wait.result())
            # -j workers of a pipetask killed by a signal may be left.
            self._signal_group(signal.SIGKILL)
            if exit_code == 0:
                self._log(f"{program} exited with code 0")
            reason = await process.conclude(exit_code, self.log_path, self._log)
            if reason is None:
                self._finish(JobPhase.COMPLETED, exit_code, None)
            else:
                self._log(f"failed: {reason}")
                self._finish(JobPhase.ERROR, exit_code or FAILED_EXIT_CODE, reason)
            return
        exit_wait.cancel()
        if abort_wait in done:
            self._log(f"aborting: {self._abort_reason}; stopping {program} (process group {self.pid})")
            await self._stop_process(kill_grace)
            self._log(f"aborted; {program} stopped with code {self._returncode_text()}")
            await process.after_stop(self.log_path, self._log)
            self._finish(JobPhase.ABORTED, ABORTED_EXIT_CODE, self._abort_reason)
            return
        reason = f"job exceeded its time limit of {time_limit:g} s and was stopped"
        running = await process.running_text(self.log_path)
        if running:
            reason += f" while running {running}"
        reason += f"; log: {self.log_path}"
        self._log(reason)
        await self._stop_process(kill_grace)
        await process.after_stop(self.log_path, self._log)
        assert self._process.returncode is not None
        self._finish(JobPhase.ERROR, shell_exit_code(self._process.returncode), reason)

    def _returncode_text(self) -> str:
        if self._process is None or self._process.returncode is None:
            return "unknown"
        return str(shell_exit_code(self._process.returncode))

    async def _stop_process(self, grace: float) -> None:
        """Stop the job's processes: SIGTERM, then SIGKILL after ``grace`` s.

        Every process group of the supervisor's session is signalled
        (pipetask: the one group of the supervisor, pipetask and its
        workers; bps: also Parsl's worker pool, which runs in a group of
        its own). Returns once no process of the session is left running,
        so that an aborted job never leaves workers behind.
        """
        process = self._process
        if process is None or self.pid is None:
            return
        if process.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await process.wait()
        # Workers of "-j N" may outlive a killed parent: clear the session
        # and wait for the signals to take effect (delivery is asynchronous).
        self._signal_group(signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + grace
        while members := [pid for pid, _ in session_members(self.pid)]:
            if asyncio.get_running_loop().time() > deadline:
                self.log.error("Job %s: processes %s would not die", self.job_id, members)
                break
            await asyncio.sleep(_GROUP_POLL_INTERVAL)

    def _signal_group(self, signum: signal.Signals) -> None:
        """Send ``signum`` to every process group of the job's session."""
        if self.pid is None:
            return
        # The supervisor's own group first: it may have no member left
        # while others of the session still run.
        for pgid in dict.fromkeys([self.pid, *session_groups(self.pid)]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)

    def _finish(self, phase: JobPhase, exit_code: int, error: str | None) -> None:
        if self.finished.is_set():
            return
        self.phase = phase
        self.exit_code = exit_code
        self.error = error
        self.end_time = _now()
        with contextlib.suppress(Exception):
            self._log(f"job ended: phase {phase}, exit code {exit_code}")
        if phase == JobPhase.ERROR:
            # A warning: what an operator watching the OCPS must not miss.
            self.log.warning(
                "Job %s failed with exit code %d: %s; see %s", self.job_id, exit_code, error, self.log_path
            )
        else:
            self.log.info(
                "Job %s ended: phase %s, exit code %d; output %s, log %s",
                self.job_id,
                phase,
                exit_code,
                self.output_collection,
                self.log_path,
            )
        self.finished.set()

    async def abort(self, reason: str) -> None:
        """Abort the job and wait until it has finished.

        A pending job ends without starting pipetask; a running one has its
        process group stopped. Either way it ends ``aborted`` with exit code
        `ABORTED_EXIT_CODE`. Does nothing to a finished job.

        Parameters
        ----------
        reason : `str`
            Why (goes to the log and the result's ``error``).
        """
        if not self.finished.is_set():
            if not self._abort_requested.is_set():
                self._abort_reason = reason
                self._abort_requested.set()
            await self.finished.wait()

    @property
    def execution_duration(self) -> float | None:
        """Seconds from pipetask start to end, if it started and ended."""
        if self.start_time is None or self.end_time is None:
            return None
        return round((self.end_time - self.start_time).total_seconds(), 3)

    def result(self) -> dict[str, typing.Any]:
        """Describe the job as the ``result`` JSON of ``job_result``.

        Returns
        -------
        result : `dict`
            Keys: ``jobId``, ``ownerId``, ``instrument``, ``phase``,
            ``exitCode``, ``creationTime``, ``startTime``, ``endTime`` (ISO
            8601 UTC; ``startTime`` is None if pipetask never started),
            ``executionDuration`` (s), ``parameters`` (the ``execute``
            fields), ``command`` (pipetask arguments), ``butlerRepo``,
            ``outputCollection``, ``logFile``, ``error`` (None unless the
            job failed or was aborted) and ``results`` (UWS-style list of
            ``{"id", "uri"}``: the job log).
        """
        return {
            "jobId": self.job_id,
            "ownerId": self.owner,
            "instrument": self.instrument,
            "phase": str(self.phase),
            "exitCode": self.exit_code,
            "creationTime": _iso(self.creation_time),
            "startTime": _iso(self.start_time),
            "endTime": _iso(self.end_time),
            "executionDuration": self.execution_duration,
            "parameters": self.parameters.as_dict(),
            "command": self.command,
            "butlerRepo": self.repo,
            "outputCollection": self.output_collection,
            "logFile": str(self.log_path),
            "error": self.error,
            "results": [{"id": "ocps.log", "uri": self.log_path.as_uri()}],
        }
