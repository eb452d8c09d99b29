"""What a calibration run produced, for the final summary."""

from __future__ import annotations

__all__ = ["RunSummary", "StepRecord"]

from dataclasses import dataclass, field


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
        Why it failed ("" if it did not).
    """

    name: str
    exposures: list[int] = field(default_factory=list)
    generation_collection: str | None = None
    verification_collection: str | None = None
    verification: str = ""
    certified: str = ""
    failure: str = ""
    notes: list[str] = field(default_factory=list)

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

    def describe(self) -> str:
        """Return the final summary."""
        return "\n".join(step.describe() for step in self.steps.values())
