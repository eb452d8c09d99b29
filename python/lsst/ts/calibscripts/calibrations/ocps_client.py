"""Run OCPS jobs and get each job's own result, even with several at once."""

from __future__ import annotations

__all__ = ["OcpsClient", "OcpsJob", "OcpsJobError", "failure_cause", "failure_message"]

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..sal import BaseMessage
from ..salobj import AckError, Remote


class OcpsJobError(RuntimeError):
    """An OCPS job failed; the message names the job id and its log.

    Parameters
    ----------
    message : `str`
        The whole story (job, what it was for, exit code, reason, log).
    job_id : `str`, optional
        The job, if the OCPS gave it an id.
    cause : `str`, optional
        Why it failed, without the job and log (for one-line summaries);
        the message if not given.
    """

    def __init__(self, message: str, *, job_id: str | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.cause = cause if cause is not None else message


@dataclass
class OcpsJob:
    """One OCPS job and, once finished, its result.

    Attributes
    ----------
    job_id : `str`
        Hex id the OCPS gave the job.
    description : `str`
        What the job is for ("bias generation").
    exit_code : `int` or None
        Exit code, once finished.
    result : `dict`
        The ``result`` JSON of ``job_result``.
    """

    job_id: str
    description: str
    exit_code: int | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def output_collection(self) -> str:
        """The job's output collection (``u/ocps/<job id>``)."""
        return str(self.result.get("outputCollection") or f"u/ocps/{self.job_id}")

    @property
    def log_path(self) -> str:
        """Where the OCPS wrote the complete job log."""
        return str(self.result.get("logFile") or f"/scratch/uws/{self.job_id}/outs/ocps.log")


def failure_cause(job: OcpsJob) -> str:
    """Say why a job failed, without naming the job or its log.

    The OCPS's reason (its ``error``) without its own "pipetask exited with
    code N" and "; log: PATH", which `failure_message` states once.

    Parameters
    ----------
    job : `OcpsJob`
        A finished job with a non-zero exit code.

    Returns
    -------
    cause : `str`
        E.g. "task cpBiasCombine failed on {instrument: 'LATISS',
        detector: 0}: ValueError: ...".
    """
    reason = str(job.result.get("error") or "").strip()
    if not reason:
        reason = f"job ended in phase {job.result.get('phase') or 'unknown'}"
    log_suffix = f"; log: {job.log_path}"
    if reason.endswith(log_suffix):
        reason = reason[: -len(log_suffix)]
    exit_prefix = f"pipetask exited with code {job.exit_code}"
    if reason.startswith(exit_prefix):
        rest = reason[len(exit_prefix) :]
        if rest.startswith(": "):
            reason = rest[2:]
        else:  # " while running ...", " without output" or nothing
            reason = f"pipetask failed{rest or ' (no error line in its log)'}"
    return reason


def failure_message(job: OcpsJob) -> str:
    """Say what failed, in words an operator can act on.

    The message names the job, what it was for, its exit code, the OCPS's
    reason (its ``error``: the simulated OCPS names the failing or running
    task and quantum, the signal or the exception) and the job log, once
    each: the reason's own "pipetask exited with code N" and "; log: PATH"
    are not repeated.

    Parameters
    ----------
    job : `OcpsJob`
        A finished job with a non-zero exit code.

    Returns
    -------
    message : `str`
        E.g. "OCPS job 1f2e... (bias generation) failed with exit code 137:
        pipetask killed by signal 9 (SIGKILL) while running cpBiasCombine on
        {instrument: 'LATISS', detector: 0}; see the job log
        /scratch/uws/1f2e.../outs/ocps.log".
    """
    return (
        f"OCPS job {job.job_id} ({job.description}) failed with exit code {job.exit_code}: "
        f"{failure_cause(job)}; "
        f"see the job log {job.log_path}"
    )


class OcpsClient:
    """Submit pipetask jobs to an OCPS and wait for their results.

    Each ``job_result`` is routed by job id to the task that submitted the
    job (the production script read one shared queue, so concurrent tasks
    could take each other's results). Results that arrive before the
    submitter has learned its job id are kept until claimed.

    Parameters
    ----------
    remote : `Remote`
        Remote of the OCPS (with commands).
    log : `logging.Logger`
        Where progress is logged (the script's logger, seen by the operator).
    job_timeout : `float`
        Time a job may take (s) before it is aborted and reported as failed.
    """

    #: Time for the OCPS to acknowledge an execute command (s).
    ack_timeout = 60.0

    def __init__(self, remote: Remote, log: logging.Logger, job_timeout: float) -> None:
        self.remote = remote
        self.log = log
        self.job_timeout = job_timeout
        self.jobs: dict[str, OcpsJob] = {}
        self._waiters: dict[str, asyncio.Future[BaseMessage]] = {}
        self._unclaimed: dict[str, BaseMessage] = {}
        remote.evt_job_result.callback = self._on_job_result

    def _on_job_result(self, data: BaseMessage) -> None:
        waiter = self._waiters.pop(data.job_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)
        else:
            self._unclaimed[data.job_id] = data

    @property
    def running(self) -> list[OcpsJob]:
        """Jobs submitted and not finished."""
        return [job for job in self.jobs.values() if job.exit_code is None]

    async def run(self, *, pipeline: str, config: str, data_query: str, description: str) -> OcpsJob:
        """Run one job and return it when it has finished successfully.

        Parameters
        ----------
        pipeline : `str`
            Pipeline file (``${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml``).
        config : `str`
            Extra pipetask arguments.
        data_query : `str`
            Butler data query.
        description : `str`
            What the job is for, for messages.

        Raises
        ------
        OcpsJobError
            If the OCPS refuses the job, the job fails (non-zero exit code)
            or takes longer than ``job_timeout``; the message names the job
            id and the path of its log.
        """
        try:
            ack = await self.remote.cmd_execute.set_start(
                pipeline=pipeline,
                config=config,
                data_query=data_query,
                timeout=self.ack_timeout,
                wait_done=False,
            )
        except AckError as e:
            raise OcpsJobError(f"The OCPS refused the {description} job: {e.ackcmd.result}") from e
        try:
            job_id = str(json.loads(ack.result)["job_id"])
        except (ValueError, KeyError, TypeError) as e:
            raise OcpsJobError(f"The OCPS gave no job id for the {description} job: {ack.result!r}") from e
        job = OcpsJob(job_id=job_id, description=description)
        self.jobs[job_id] = job
        self.log.info("OCPS job %s started: %s (%s)", job_id, description, pipeline)
        data = self._unclaimed.pop(job_id, None)
        if data is None:
            waiter: asyncio.Future[BaseMessage] = asyncio.get_running_loop().create_future()
            self._waiters[job_id] = waiter
            try:
                data = await asyncio.wait_for(waiter, self.job_timeout)
            except TimeoutError:
                await self.abort(job)
                raise OcpsJobError(
                    f"OCPS job {job_id} ({description}) did not finish within {self.job_timeout:.0f} s "
                    f"and was aborted; see its log {job.log_path}",
                    job_id=job_id,
                    cause=f"did not finish within {self.job_timeout:.0f} s (job_timeout) and was aborted",
                ) from None
            finally:
                self._waiters.pop(job_id, None)
        await self._final_ack(ack, job)
        job.exit_code = int(data.exit_code)
        try:
            job.result = json.loads(data.result) if data.result else {}
        except ValueError:
            job.result = {"raw": data.result}
        if job.exit_code != 0:
            raise OcpsJobError(failure_message(job), job_id=job_id, cause=failure_cause(job))
        self.log.info("OCPS job %s finished: %s -> %s", job_id, description, job.output_collection)
        return job

    async def _final_ack(self, ack: BaseMessage, job: OcpsJob) -> None:
        """Collect the execute command's final acknowledgement (sent after job_result)."""
        try:
            await self.remote.cmd_execute.next_ackcmd(ack, timeout=self.ack_timeout)
        except AckError as e:
            # The job_result already says how the job ended; the ack only confirms it.
            self.log.warning("OCPS execute of job %s ended with %s", job.job_id, e)

    async def abort(self, job: OcpsJob) -> None:
        """Ask the OCPS to abort a job; a failure to do so is logged."""
        try:
            await self.remote.cmd_abort_job.set_start(job_id=job.job_id, timeout=self.ack_timeout)
            self.log.warning("Aborted OCPS job %s (%s)", job.job_id, job.description)
        except AckError as e:
            self.log.error("Could not abort OCPS job %s (%s): %s", job.job_id, job.description, e)

    async def abort_running(self) -> None:
        """Abort every job of this client that has not finished."""
        for job in self.running:
            await self.abort(job)
        for waiter in self._waiters.values():
            waiter.cancel()
