"""The simulated OCPS: runs real ``pipetask run`` (or bps) jobs on request.

`OcpsCsc` serves the ``OCPS`` interface (``schemas/interfaces/OCPS.yaml``)
for one instrument (index 1 LATISS, 2 LSSTComCam) as Rubin's OCS-controlled
pipeline service does: ``execute`` gives each job a hex id, acknowledges
"in progress" with ``{"job_id": ...}``, runs the job as a subprocess with
output collection ``u/ocps/<jobId>`` and the log in
``<scratch>/uws/<jobId>/outs/ocps.log``, writes ``job_result`` and then
completes the command. What runs for a job is its executor's choice
(`lsst.ts.calibscripts.simulator.executors`): one ``pipetask run`` (the
default) or a bps submission with the Parsl plugin. See
``doc/simulator-ocps.rst`` and ``doc/scaling-out.rst``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_JOB_TIME_LIMIT",
    "INSTRUMENT_BY_INDEX",
    "SUPPORTED_INSTRUMENTS",
    "OcpsCsc",
    "OcpsFaults",
    "instrument_for_index",
]

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path

from .. import sal
from ..cp.butler.instrument import instrument_names
from ..cp.butler.repository import raw_collection
from .executors.base import JobExecutor, JobRequest
from .executors.pipetask import PipetaskExecutor
from .ocps_job import (
    JobParameters,
    JobPhase,
    JobRequestError,
    OcpsJob,
    job_log_path,
)

INSTRUMENT_BY_INDEX = {1: "LATISS", 2: "LSSTComCam", 3: "LSSTCam"}
"""OCPS SAL index -> instrument, as at the summit."""

SUPPORTED_INSTRUMENTS = ("LATISS", "LSSTComCam")
"""Instruments the simulated OCPS can run jobs for."""

DEFAULT_JOB_TIME_LIMIT = 3600.0
"""Seconds a pipetask run may take before the OCPS stops it (phase error)."""


def instrument_for_index(index: int, instrument: str | None = None) -> str:
    """Return the instrument an OCPS serves.

    Parameters
    ----------
    index : `int`
        SAL index: 1 LATISS, 2 LSSTComCam (3 LSSTCam is not supported).
    instrument : `str`, optional
        Explicit instrument, overriding the index (e.g. a LATISS OCPS at a
        test index).

    Raises
    ------
    ValueError
        If the instrument is not supported or the index maps to none.
    """
    if instrument is None:
        instrument = INSTRUMENT_BY_INDEX.get(index)
        if instrument is None:
            known = ", ".join(f"{i} {name}" for i, name in INSTRUMENT_BY_INDEX.items())
            raise ValueError(f"OCPS index {index} serves no instrument (indices: {known}); pass instrument=")
    if instrument not in SUPPORTED_INSTRUMENTS:
        raise ValueError(
            f"The simulated OCPS does not support {instrument}: it runs jobs for "
            f"{' and '.join(SUPPORTED_INSTRUMENTS)} only (OCPS index 1 and 2)"
        )
    if instrument not in instrument_names():
        raise ValueError(f"Instrument {instrument} has no Butler instrument class")
    return instrument


@dataclasses.dataclass
class OcpsFaults:
    """Faults the simulated OCPS injects, for tests of the scripts; none by default.

    Attributes
    ----------
    fail_job_numbers : `set` [`int`]
        1-based numbers of the jobs to fail: the Nth ``execute`` the OCPS
        accepted (counted from its start). Such a job does not run
        pipetask; it ends in phase ``error`` with exit code
        ``FAILED_EXIT_CODE`` (1) and its log and ``error`` say the failure
        was injected. Prerequisites are still waited for first.
    """

    fail_job_numbers: set[int] = dataclasses.field(default_factory=set)

    def fault_for(self, number: int) -> str | None:
        """Return the injected failure message for job ``number``, or None."""
        if number in self.fail_job_numbers:
            return f"injected failure of job number {number} (OcpsFaults.fail_job_numbers)"
        return None


class OcpsCsc(sal.BaseCsc):
    """Simulated OCPS for one instrument, running real pipetask jobs.

    Jobs run concurrently (``cmd_execute.allow_multiple_callbacks``). The
    ``execute`` command completes (CMD_COMPLETE) after its ``job_result``
    has been written, whatever the job's outcome, as the production OCPS
    does: callers must check ``exit_code`` (or ``phase`` in ``result``).
    It fails only if the OCPS is not ENABLED. Leaving ENABLED, or closing,
    aborts every unfinished job.

    Parameters
    ----------
    index : `int`
        SAL index: 1 LATISS, 2 LSSTComCam; 3 (LSSTCam) is refused.
    repo : `str` or `~pathlib.Path`
        Butler repository (with the instrument registered and raws in
        ``<instrument>/raw/all``).
    scratch_dir : `str` or `~pathlib.Path`
        Plays the role of ``/scratch``: job logs go to
        ``<scratch_dir>/uws/<jobId>/outs/ocps.log``.
    instrument : `str`, optional
        Instrument, overriding the one of ``index``.
    faults : `OcpsFaults`, optional
        Faults to inject (none by default); may also be changed later
        through the `faults` attribute.
    pipetask : `str` or `~pathlib.Path`, optional
        pipetask executable; default: the one next to this Python, else
        the one on ``PATH``.
    executor : `~lsst.ts.calibscripts.simulator.executors.base.JobExecutor`, optional
        What runs each job; default: a
        `~lsst.ts.calibscripts.simulator.executors.pipetask.PipetaskExecutor`
        with ``pipetask``. A
        `~lsst.ts.calibscripts.simulator.executors.bps.BpsExecutor` runs
        them through bps with the Parsl plugin.
    job_time_limit : `float`, optional
        Seconds a pipetask run may take before it is stopped (phase
        error); also the time promised in the in-progress acknowledgement.
    kill_grace : `float`, optional
        Seconds between SIGTERM and SIGKILL when a job is stopped.
    initial_state : `sal.State`, optional
        Initial summary state.
    domain : `sal.Domain`, optional
        Domain to use.

    Attributes
    ----------
    instrument : `str`
        Instrument served.
    repo : `str`
        Butler repository.
    scratch_dir : `~pathlib.Path`
        Root of the job directories.
    faults : `OcpsFaults`
        Injected faults.
    executor : `~lsst.ts.calibscripts.simulator.executors.base.JobExecutor`
        What runs each job.
    jobs : `dict` [`str`, `OcpsJob`]
        Every job accepted since start, by id, in order.

    Raises
    ------
    ValueError
        If the instrument is not supported, the repository does not exist
        or pipetask cannot be found.
    """

    def __init__(
        self,
        index: int,
        *,
        repo: str | Path,
        scratch_dir: str | Path,
        instrument: str | None = None,
        faults: OcpsFaults | None = None,
        pipetask: str | Path | None = None,
        executor: JobExecutor | None = None,
        job_time_limit: float = DEFAULT_JOB_TIME_LIMIT,
        kill_grace: float = 5.0,
        initial_state: sal.State = sal.State.STANDBY,
        domain: sal.Domain | None = None,
    ) -> None:
        self.instrument = instrument_for_index(index, instrument)
        repo_text = str(repo)
        if "://" not in repo_text and not Path(repo_text).expanduser().exists():
            raise ValueError(
                f"Butler repository {repo_text} does not exist (create it with 'calibscripts repo create')"
            )
        self.repo = repo_text if "://" in repo_text else str(Path(repo_text).expanduser().resolve())
        self.scratch_dir = Path(scratch_dir).expanduser().resolve()
        self.executor = executor if executor is not None else PipetaskExecutor(pipetask)
        self.pipetask = getattr(self.executor, "pipetask", None)
        self.faults = faults if faults is not None else OcpsFaults()
        self.job_time_limit = job_time_limit
        self.kill_grace = kill_grace
        self.jobs: dict[str, OcpsJob] = {}
        self._job_count = 0
        super().__init__("OCPS", index, initial_state=initial_state, domain=domain)
        self.cmd_execute.allow_multiple_callbacks = True

    async def start(self) -> None:
        """Start the CSC and say how it runs jobs."""
        await super().start()
        self.log.info("OCPS for %s runs jobs with %s", self.instrument, self.executor.describe())

    @property
    def _in_progress_timeout(self) -> float:
        # What a caller should add to its own timeout: the job's time limit
        # plus the time to stop it and report.
        return self.job_time_limit + self.kill_grace + 30.0

    async def do_execute(self, data: sal.BaseMessage) -> None:
        """Run a pipetask job; complete after its ``job_result``."""
        self.assert_enabled("execute")
        self._job_count += 1
        job_id = uuid.uuid4().hex
        job = OcpsJob(
            job_id=job_id,
            number=self._job_count,
            instrument=self.instrument,
            parameters=JobParameters.from_message(data),
            log_path=job_log_path(self.scratch_dir, job_id),
            owner=data.private_identity,
            log=self.log,
        )
        self.jobs[job.job_id] = job
        await self.cmd_execute.ack_in_progress(
            data, timeout=self._in_progress_timeout, result=json.dumps({"job_id": job.job_id})
        )
        try:
            await self._run_job(job, data)
        except Exception as e:
            # Not the job's fault: still end it, so that the caller gets a
            # job_result and abort_all_jobs never waits for it.
            self.log.exception("OCPS error running job %s", job.job_id)
            job.end_early(f"OCPS error: {type(e).__name__}: {e}")
        finally:
            # Cancelled before job.run could finish the job (OCPS closing).
            job.end_early("OCPS stopped before the job ran", phase=JobPhase.ABORTED)
            await self._report(job)

    async def _run_job(self, job: OcpsJob, data: sal.BaseMessage) -> None:
        prerequisite_ids = job.parameters.prerequisite_ids
        self.log.info(
            "Job %s accepted (job number %d): pipeline %s%s",
            job.job_id,
            job.number,
            job.parameters.pipeline,
            f", after job(s) {', '.join(prerequisite_ids)}" if prerequisite_ids else "",
        )
        unknown = [job_id for job_id in prerequisite_ids if job_id not in self.jobs]
        try:
            if unknown:
                raise JobRequestError(f"unknown prerequisite job id(s): {', '.join(unknown)}")
            process = await self.executor.prepare(
                JobRequest(
                    job_id=job.job_id,
                    instrument=self.instrument,
                    repo=self.repo,
                    raw_collection=raw_collection(self.instrument),
                    parameters=job.parameters,
                    job_dir=job.log_path.parent.parent,
                )
            )
        except JobRequestError as e:
            job.end_early(str(e))
            return

        async def extend_wait() -> None:
            # The caller's deadline ran from the first acknowledgement; a
            # job that waited for others gets a fresh one when it starts.
            await self.cmd_execute.ack_in_progress(
                data, timeout=self._in_progress_timeout, result=json.dumps({"job_id": job.job_id})
            )

        await job.run(
            [self.jobs[job_id] for job_id in prerequisite_ids],
            process=process,
            repo=self.repo,
            time_limit=self.job_time_limit,
            kill_grace=self.kill_grace,
            injected_fault=self.faults.fault_for(job.number),
            on_start=extend_wait if prerequisite_ids else None,
        )

    async def _report(self, job: OcpsJob) -> None:
        try:
            # Log messages about the job first, then its result.
            await self.flush_log()
            assert job.exit_code is not None
            await self.evt_job_result.set_write(
                job_id=job.job_id,
                exit_code=job.exit_code,
                result=json.dumps(job.result()),
                force_output=True,
            )
        finally:
            job.reported.set()

    async def do_abort_job(self, data: sal.BaseMessage) -> None:
        """Abort a job; complete once its ``job_result`` (exit code 255) is written."""
        self.assert_enabled("abort_job")
        job = self.jobs.get(data.job_id)
        if job is None:
            raise sal.ExpectedError(
                f"Unknown job id {data.job_id!r}: this OCPS has run {len(self.jobs)} job(s) since it started"
            )
        if job.finished.is_set():
            raise sal.ExpectedError(
                f"Job {job.job_id} already finished (phase {job.phase}, exit code {job.exit_code})"
            )
        self.log.info("Aborting job %s at the request of %s", job.job_id, data.private_identity or "unknown")
        await job.abort(f"aborted by abort_job from {data.private_identity or 'unknown'}")
        await job.reported.wait()

    @property
    def running_jobs(self) -> list[OcpsJob]:
        """Jobs not finished yet (pending or executing)."""
        return [job for job in self.jobs.values() if not job.finished.is_set()]

    async def abort_all_jobs(self, reason: str) -> None:
        """Abort every unfinished job and wait until their results are written.

        Parameters
        ----------
        reason : `str`
            Why (goes to each job's log and ``error``).
        """
        jobs = self.running_jobs
        if not jobs:
            return
        self.log.warning("Aborting %d unfinished job(s): %s", len(jobs), reason)
        # Each job ends once its process group is gone (SIGKILL after
        # kill_grace at worst), and its execute callback then writes the
        # result; the time limit only guards against a callback that was
        # cancelled meanwhile.
        try:
            async with asyncio.timeout(self.kill_grace + 10.0):
                await asyncio.gather(*(job.abort(reason) for job in jobs))
                await asyncio.gather(*(job.reported.wait() for job in jobs))
        except TimeoutError:
            self.log.error(
                "Jobs not reported after abort: %s",
                ", ".join(j.job_id for j in jobs if not j.reported.is_set()),
            )

    async def handle_summary_state(self) -> None:
        """Abort unfinished jobs when the OCPS leaves ENABLED."""
        if self.summary_state != sal.State.ENABLED:
            await self.abort_all_jobs(f"OCPS left ENABLED (now {self.summary_state.name})")

    async def close_tasks(self) -> None:
        """Abort unfinished jobs (no pipetask outlives the OCPS), then stop."""
        await self.abort_all_jobs("OCPS closing")
        await super().close_tasks()
