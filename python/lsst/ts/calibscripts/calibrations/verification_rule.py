"""The majority rule that accepts or rejects a calibration from its verification statistics."""

from __future__ import annotations

__all__ = ["VerificationOutcome", "apply_majority_rule"]

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VerificationOutcome:
    """Result of applying the majority rule to ``verify<Type>Stats``.

    Attributes
    ----------
    accepted : `bool`
        Is the calibration accepted?
    all_passed : `bool`
        Did every test pass (the Stats ``SUCCESS`` flag)?
    threshold : `int`
        Acceptable failures per detector per test type.
    max_failed_detectors : `int`
        floor(N_det / 2) + 1.
    max_failed_tests_per_exposure : `int`
        threshold x max_failed_detectors.
    max_failed_exposures : `int`
        floor(N_exp / 2) + 1.
    failures : `dict` [`int`, `list` [`str`]]
        FAILURES entries ("RXX_S00 C10 NOISE") per exposure, every exposure.
    counts : `dict` [`int`, `Counter`]
        Failed amp-tests per test type, per exposure.
    failed_exposures : `list` [`int`]
        Exposures that failed the rule.
    """

    accepted: bool
    all_passed: bool
    threshold: int
    max_failed_detectors: int
    max_failed_tests_per_exposure: int
    max_failed_exposures: int
    failures: dict[int, list[str]] = field(default_factory=dict)
    counts: dict[int, Counter[str]] = field(default_factory=dict)
    failed_exposures: list[int] = field(default_factory=list)

    @property
    def exposures_with_failures(self) -> list[int]:
        """Exposures with at least one failed test."""
        return [exposure for exposure, failures in self.failures.items() if failures]


def apply_majority_rule(stats: Mapping[Any, Any], threshold: int, n_detectors: int) -> VerificationOutcome:
    """Decide whether a calibration passes verification.

    With N_exp exposures (the overall ``SUCCESS`` key is not one) and
    N_det detectors:

    - max failed detectors = floor(N_det / 2) + 1;
    - max failed tests per exposure = threshold x max failed detectors;
    - an exposure fails when, for at least one test type, its number of
      failed amp-tests (FAILURES entries ending in that test name) reaches
      that maximum;
    - max failed exposures = floor(N_exp / 2) + 1; the calibration is
      rejected when the number of failed exposures reaches it.

    Parameters
    ----------
    stats : `dict`
        ``verify<Type>Stats``: ``{exposure: {SUCCESS, FAILURES}, SUCCESS}``.
    threshold : `int`
        ``number_verification_tests_threshold_<type>``.
    n_detectors : `int`
        Number of detectors verified.

    Raises
    ------
    ValueError
        If ``stats`` does not have the expected structure.
    """
    if "SUCCESS" not in stats:
        raise ValueError(f"Verification statistics have no overall SUCCESS key: {sorted(map(str, stats))}")
    exposures = {int(k): v for k, v in stats.items() if k != "SUCCESS"}
    max_failed_detectors = n_detectors // 2 + 1
    max_tests = threshold * max_failed_detectors
    max_failed_exposures = len(exposures) // 2 + 1
    failures: dict[int, list[str]] = {}
    counts: dict[int, Counter[str]] = {}
    failed_exposures = []
    for exposure in sorted(exposures):
        entry = exposures[exposure]
        if not isinstance(entry, Mapping) or "FAILURES" not in entry:
            raise ValueError(f"Verification statistics of exposure {exposure} have no FAILURES list")
        failures[exposure] = sorted(str(f) for f in entry["FAILURES"])
        counts[exposure] = Counter(f.split()[-1] for f in failures[exposure])
        if any(count >= max_tests for count in counts[exposure].values()):
            failed_exposures.append(exposure)
    all_passed = bool(stats["SUCCESS"])
    return VerificationOutcome(
        accepted=all_passed or len(failed_exposures) < max_failed_exposures,
        all_passed=all_passed,
        threshold=threshold,
        max_failed_detectors=max_failed_detectors,
        max_failed_tests_per_exposure=max_tests,
        max_failed_exposures=max_failed_exposures,
        failures=failures,
        counts=counts,
        failed_exposures=failed_exposures,
    )
