"""What a calibration run produced, for the final summary."""

from __future__ import annotations

__all__ = ["MAX_REASON_LINE", "RunSummary", "StepRecord", "short_cause"]

import re
from dataclasses import dataclass, field

#: Longest line of the final state reason, per failed step (characters).
MAX_REASON_LINE = 200

# A data id as pipetask prints it ("{instrument: 'LATISS', detector: 0, ...}"): long, and the
# job log names it anyway.
_DATA_ID = re.compile(r" on \{[^{}]*\}")


def short_cause(text: str, limit: int = MAX_REASON_LINE) -> str:
    """Return the first line of a cause, without data ids, at most ``limit`` characters.

    Parameters
    ----------
    text : `str`
        A failure cause, possibly long or on several lines.
    limit : `int`, optional
        Longest result.

    Returns
    -------
    short : `str`
        E.g. "task verifyBiasIsr failed: FileNotFoundError: Not enough
        datasets (0) found for ..." from "task verifyBiasIsr failed on
        {instrument: 'LATISS', ...}: FileNotFoundError: ...".
    """
    lines = text.strip().splitlines()
    line = _DATA_ID.sub("", lines[0].strip()) if lines else ""
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


@dataclass
class StepRecord:
    """What happened to one product (BIAS, DARK, FLAT, DEFECTS, PTC, GAIN).

    Attributes
    ----------
    name : `str`
        Product name.
    exposures : `list` [`int`]
        Exposures used.
    generation_collection, verification_collection : `str` or None
        OCPS output collections.
    verification : `str`
        Outcome of verification, in words ("" if not verified).
    certified : `str`
        Where and for which range it was certified ("" if not).
    failure : `str`
        Why it failed ("" if it did not), in full.
    failed_job : `str` or None
        Id of the OCPS job that failed, if a job did.
    cause : `str`
        Why it failed without the job and its log (the first line goes
        into the final state reason); ``failure`` if not set.
    notes : `list` [`str`]
        Other facts for the final summary.
    """

    name: str
    exposures: list[int] = field(default_factory=list)
    generation_collection: str | None = None
    verification_collection: str | None = None
    verification: str = ""
    certified: str = ""
    failure: str = ""
    failed_job: str | None = None
    cause: str = ""
    notes: list[str] = field(default_factory=list)

    def fail(self, error: BaseException | str) -> None:
        """Record why the step failed (an `OcpsJobError` names its job and cause)."""
        self.failure = str(error)
        self.failed_job = getattr(error, "job_id", None)
        self.cause = str(getattr(error, "cause", "") or "")

    def reason_line(self) -> str:
        """One short line for the final state reason: step, job id, first line of the cause."""
        job = f"job {self.failed_job}: " if self.failed_job else ""
        return f"{self.name}: {job}{short_cause(self.cause or self.failure)}"

    def describe(self) -> str:
        """One block of the final summary."""
        lines = [f"{self.name}:"]
        if self.exposures:
            lines.append(f"    exposures ({len(self.exposures)}): {' '.join(map(str, self.exposures))}")
        if self.generation_collection:
            lines.append(f"    generation collection: {self.generation_collection}")
        if self.verification_collection:
            lines.append(f"    verification collection: {self.verification_collection}")
        if self.verification:
            lines.append(f"    verification: {self.verification}")
        lines.append(f"    certified: {self.certified or 'no'}")
        lines.extend(f"    {note}" for note in self.notes)
        if self.failure:
            lines.append(f"    FAILED: {self.failure}")
        return "\n".join(lines)


@dataclass
class RunSummary:
    """Records of every product of a run, in order."""

    steps: dict[str, StepRecord] = field(default_factory=dict)

    def step(self, name: str) -> StepRecord:
        """Return the record of a product, creating it if needed."""
        if name not in self.steps:
            self.steps[name] = StepRecord(name)
        return self.steps[name]

    @property
    def failures(self) -> list[str]:
        """``"<name>: <why>"`` for every product that failed."""
        return [f"{s.name}: {s.failure}" for s in self.steps.values() if s.failure]

    def reason(self) -> str:
        """Say why the run failed, for the script's final state.

        One failure is given in full (it names the job's log). Several get
        one short line each (step, job id, first line of the cause): the
        reason is what LOVE shows at a glance, and several long messages
        run together are unreadable. The full text is in the log and the
        final summary.
        """
        failed = [s for s in self.steps.values() if s.failure]
        if len(failed) == 1:
            return f"{failed[0].name}: {failed[0].failure}"
        lines = [f"{len(failed)} steps failed (details in the final summary):"]
        lines += [step.reason_line() for step in failed]
        return "\n".join(lines)

    def describe(self) -> str:
        """Return the final summary."""
        return "\n".join(step.describe() for step in self.steps.values())
