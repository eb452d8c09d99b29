"""The ``pipetask`` execution mode: one ``pipetask run`` per job (the default).

The command line is `~lsst.ts.calibscripts.simulator.ocps_job.build_pipetask_command`'s,
with the pipeline variables in its environment; the outcome is pipetask's
exit code, and a failure is explained from its output in the job log
(`~lsst.ts.calibscripts.simulator.ocps_job.failure_reason`). See
``doc/simulator-ocps.rst``.
"""

from __future__ import annotations

__all__ = ["PipetaskExecutor", "find_pipetask"]

import shutil
import sys
from pathlib import Path

from ...cp.butler.pipeline_locations import pipeline_environment
from ..ocps_job import JobProcess, build_pipetask_command
from .base import JobExecutor, JobRequest


def find_pipetask(pipetask: str | Path | None = None) -> str:
    """Return the pipetask executable to run.

    Parameters
    ----------
    pipetask : `str` or `~pathlib.Path`, optional
        An explicit choice; default: the one next to this Python, else the
        one on ``PATH``.

    Raises
    ------
    ValueError
        If there is none.
    """
    if pipetask is not None:
        return str(pipetask)
    beside = Path(sys.executable).parent / "pipetask"
    if beside.exists():
        return str(beside)
    found = shutil.which("pipetask")
    if found is None:
        raise ValueError("pipetask not found next to this Python or on PATH; install lsst-ctrl-mpexec")
    return found


class PipetaskExecutor(JobExecutor):
    """Run each job as one ``pipetask run`` subprocess.

    Parameters
    ----------
    pipetask : `str` or `~pathlib.Path`, optional
        pipetask executable (see `find_pipetask`).

    Raises
    ------
    ValueError
        If pipetask cannot be found.
    """

    name = "pipetask"

    def __init__(self, pipetask: str | Path | None = None) -> None:
        self.pipetask = find_pipetask(pipetask)

    async def prepare(self, request: JobRequest) -> JobProcess:
        """Return the ``pipetask run`` of a request (see `JobExecutor.prepare`)."""
        command = build_pipetask_command(
            self.pipetask,
            repo=request.repo,
            raw_collection=request.raw_collection,
            job_id=request.job_id,
            parameters=request.parameters,
        )
        env = pipeline_environment()
        # Unbuffered, so that an aborted job's log still holds everything
        # pipetask printed.
        env["PYTHONUNBUFFERED"] = "1"
        return JobProcess(command, env)

    def describe(self) -> str:
        """Say how jobs run."""
        return f"pipetask run ({self.pipetask})"
