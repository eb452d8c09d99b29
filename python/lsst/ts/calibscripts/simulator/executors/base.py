"""What an OCPS executor is: it turns a checked job request into a process to run.

The simulated OCPS (`lsst.ts.calibscripts.simulator.ocps.OcpsCsc`) keeps the
job's semantics in one place whatever runs it: the job id, the in-progress
acknowledgement, prerequisites, the job log, abort and the time limit, the
process under the job supervisor, and ``job_result``
(`lsst.ts.calibscripts.simulator.ocps_job.OcpsJob`). An executor decides
only *what* runs for a job and how its outcome is read: it checks the
request against the option allow-list, writes what it needs into the job's
directory and returns a `~lsst.ts.calibscripts.simulator.ocps_job.JobProcess`.
"""

from __future__ import annotations

__all__ = ["JobExecutor", "JobRequest"]

import abc
import dataclasses
from pathlib import Path

from ..ocps_job import JobParameters, JobProcess, output_collection


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """One ``execute`` request as an executor sees it.

    Attributes
    ----------
    job_id : `str`
        Hex job id.
    instrument : `str`
        Instrument served by the OCPS.
    repo : `str`
        Butler repository.
    raw_collection : `str`
        ``<instrument>/raw/all``, always the first input collection.
    parameters : `JobParameters`
        The ``execute`` fields, as received.
    job_dir : `~pathlib.Path`
        The job's own directory, ``<scratch>/uws/<jobId>`` (its log is in
        ``outs/ocps.log``); created by the OCPS.
    """

    job_id: str
    instrument: str
    repo: str
    raw_collection: str
    parameters: JobParameters
    job_dir: Path

    @property
    def output_collection(self) -> str:
        """The job's output collection, ``u/ocps/<jobId>``."""
        return output_collection(self.job_id)


class JobExecutor(abc.ABC):
    """Turns job requests into processes (pipetask, bps...).

    Attributes
    ----------
    name : `str`
        Name of the execution mode (``pipetask``, ``bps``), as given to
        ``--executor``.
    """

    name: str

    @abc.abstractmethod
    async def prepare(self, request: JobRequest) -> JobProcess:
        """Check a request and return what to run for it.

        Parameters
        ----------
        request : `JobRequest`
            The request.

        Returns
        -------
        process : `~lsst.ts.calibscripts.simulator.ocps_job.JobProcess`
            The command, its environment and working directory, and how
            its outcome is read.

        Raises
        ------
        lsst.ts.calibscripts.simulator.ocps_job.JobRequestError
            If the request cannot make a job (the option allow-list, the
            pipeline, the data query); the job then ends in phase error
            without running.
        """
        raise NotImplementedError()

    @abc.abstractmethod
    def describe(self) -> str:
        """Say in one line how jobs run (for the OCPS's log and the start-up banner)."""
        raise NotImplementedError()
