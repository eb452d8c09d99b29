"""The ``bps`` execution mode: each job is a bps submission with the Parsl plugin.

Per job, in its directory ``<scratch>/uws/<jobId>/``:

- ``bps.yaml``: the bps configuration written from the ``execute`` fields
  (`~.bps_config.build_bps_config`) and the site (`~.bps_site`);
- the bps driver (`~.bps_driver`) runs it under the job supervisor, with
  that directory as its working directory (Parsl keeps ``runinfo/`` there)
  and this environment's ``bin`` first on ``PATH`` (bps starts
  ``pipetask``, ``butler`` and Parsl's ``process_worker_pool.py`` by bare
  name); its output goes to ``outs/ocps.log``, its status to
  ``bps_status.json``;
- ``submit/``: bps's submit directory (quantum graph, job logs).

The job's outcome is the driver's (`BpsProcess.conclude`): every job and
the final job succeeded, or the reason names the failed and blocked jobs
and the first failed task with its exception. An abort or the time limit
stops every process group of the job's session (the driver shuts Parsl
down on SIGTERM), then the files the stopped run wrote are removed
(`BpsProcess.after_stop`).
"""

from __future__ import annotations

__all__ = ["BPS_CONFIG_NAME", "BPS_STATUS_NAME", "DRIVER_MODULE", "BpsExecutor", "BpsProcess"]

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ...cp.butler.pipeline_locations import pipeline_environment
from ..ocps_job import JobProcess
from .base import JobExecutor, JobRequest
from .bps_config import build_bps_config, write_bps_config
from .bps_driver import read_status
from .bps_outcome import (
    append_bps_logs,
    bps_failure_reason,
    clean_up_stopped_run,
    partial_run_note,
    running_jobs_text,
)
from .bps_site import BpsSite, local_site

DRIVER_MODULE = read_status.__module__
"""Module run with ``python -m`` for each job."""

BPS_CONFIG_NAME = "bps.yaml"
"""The job's bps configuration, in its directory."""

BPS_STATUS_NAME = "bps_status.json"
"""The driver's status file, in the job's directory."""


def bps_environment() -> dict[str, str]:
    """Return the environment of the bps driver.

    The pipeline variables (the quantum graph is built in the driver's
    process tree), unbuffered output, and this environment's ``bin`` first
    on ``PATH``.
    """
    env = pipeline_environment()
    env["PYTHONUNBUFFERED"] = "1"
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)])
    return env


class BpsProcess(JobProcess):
    """The bps driver of one job, and how its outcome is read.

    Parameters
    ----------
    command : `~collections.abc.Sequence` [`str`]
        The driver's command line.
    env : `dict` [`str`, `str`]
        Its environment.
    cwd : `~pathlib.Path`
        The job's directory.
    notes : `~collections.abc.Sequence` [`str`]
        Lines for the job log.
    status_path : `~pathlib.Path`
        The driver's status file.
    submit_path : `~pathlib.Path`
        bps's submit directory.
    repo : `str`
        Butler repository.
    output_collection : `str`
        ``u/ocps/<jobId>``.
    """

    program = "bps"

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        *,
        cwd: Path,
        notes: Sequence[str],
        status_path: Path,
        submit_path: Path,
        repo: str,
        output_collection: str,
    ) -> None:
        super().__init__(command, env, cwd=cwd, notes=notes)
        self.status_path = status_path
        self.submit_path = submit_path
        self.repo = repo
        self.output_collection = output_collection

    async def conclude(self, exit_code: int, log_path: Path, log: Callable[[str], None]) -> str | None:
        """Append bps's logs, then read the driver's status (see `JobProcess.conclude`)."""
        status = read_status(self.status_path)
        await asyncio.to_thread(append_bps_logs, status, self.submit_path, log_path)
        if status is not None and (note := partial_run_note(status, self.output_collection)):
            log(note)
        if exit_code == 0 and status is not None and status.get("stage") == "done":
            return None
        return await asyncio.to_thread(bps_failure_reason, status, exit_code, self.submit_path, log_path)

    async def running_text(self, log_path: Path) -> str | None:
        """Name the bps jobs running now, with their quanta."""
        return await asyncio.to_thread(running_jobs_text, read_status(self.status_path))

    async def after_stop(self, log_path: Path, log: Callable[[str], None]) -> None:
        """Append bps's logs and remove what the stopped run wrote."""
        status = read_status(self.status_path)
        await asyncio.to_thread(append_bps_logs, status, self.submit_path, log_path)
        try:
            note = await asyncio.to_thread(clean_up_stopped_run, status, self.repo, self.output_collection)
        except Exception as e:
            note = f"partial run NOT cleaned up: {type(e).__name__}: {e}"
        log(note)


class BpsExecutor(JobExecutor):
    """Run each job through bps with the Parsl plugin.

    Parameters
    ----------
    site : `~.bps_site.BpsSite`, optional
        Where jobs run; default: Parsl ``Local`` with this machine's cores.
    cluster_by : `~collections.abc.Sequence` [`str`], optional
        Dimensions to cluster quanta by: one bps job per detector by
        default; empty for one job per quantum.
    final_job_cpus : `int`, optional
        Processes of the final job (``butler aggregate-graph -j``) when
        the site file does not say. Default 1: each more process costs
        about 10 s to start here, which pays only for graphs of many
        thousand quanta (bps's own default is 16).
    """

    name = "bps"

    def __init__(
        self,
        site: BpsSite | None = None,
        *,
        cluster_by: Sequence[str] = ("detector",),
        final_job_cpus: int = 1,
    ) -> None:
        self.site = site if site is not None else local_site()
        self.cluster_by = tuple(cluster_by)
        self.final_job_cpus = final_job_cpus

    async def prepare(self, request: JobRequest) -> JobProcess:
        """Write the job's bps YAML and return its driver (see `JobExecutor.prepare`)."""
        config = await asyncio.to_thread(
            build_bps_config,
            request,
            site=self.site,
            cluster_by=self.cluster_by,
            final_job_cpus=self.final_job_cpus,
        )
        config_path = request.job_dir / BPS_CONFIG_NAME
        await asyncio.to_thread(write_bps_config, config, request, config_path)
        status_path = request.job_dir / BPS_STATUS_NAME
        command = [sys.executable, "-m", DRIVER_MODULE, str(config_path), "--status", str(status_path)]
        notes = [f"bps configuration: {config_path}", f"bps: {self.site.describe()}", *config.notes]
        return BpsProcess(
            command,
            bps_environment(),
            cwd=request.job_dir,
            notes=notes,
            status_path=status_path,
            submit_path=Path(config.settings["submitPath"]),
            repo=request.repo,
            output_collection=request.output_collection,
        )

    def describe(self) -> str:
        """Say how jobs run."""
        clustering = f"one job per {', '.join(self.cluster_by)}" if self.cluster_by else "one job per quantum"
        return f"bps with the Parsl plugin on {self.site.describe()}, {clustering}"
