"""The verification report an operator reads in LOVE."""

from __future__ import annotations

__all__ = ["format_verification_report", "verdict_message"]

from .verification_rule import VerificationOutcome

_CRITERION = (
    "Verification failure criterion: if, for at least one type of test, the majority of tests fail\n"
    "in the majority of detectors and the majority of exposures, verification fails and the\n"
    "calibration is not certified. In terms of the threshold values above: verification fails when\n"
    "the final number of exposures that failed verification is greater than or equal to the\n"
    "acceptable maximum number of failed exposures."
)


def format_verification_report(
    image_type: str,
    outcome: VerificationOutcome,
    *,
    threshold_option: str,
    generation_collection: str | None,
    verification_collection: str,
) -> str:
    """Return the report of a verification that did not pass every test.

    Sections, in order: exposures with failed tests; failed tests per test
    type per exposure; failed tests per exposure, detector and amplifier;
    the threshold values and the option controlling them; the criterion;
    the collections.

    Parameters
    ----------
    image_type : `str`
        ``BIAS``, ``DARK``, ``FLAT``.
    outcome : `VerificationOutcome`
        Result of the majority rule.
    threshold_option : `str`
        Name of the option that sets the threshold.
    generation_collection : `str` or None
        Collection of the generated calibration (None for external verification).
    verification_collection : `str`
        Collection of the verification outputs.
    """
    lines = [f"{image_type} verification: exposures with verification tests that failed:"]
    failed = outcome.exposures_with_failures
    lines.append("    " + "  ".join(str(e) for e in failed) if failed else "    (none)")
    lines.append("Number of tests that failed per test type:")
    for exposure in failed:
        lines.append(f"    Exposure ID: {exposure}")
        for test, count in sorted(outcome.counts[exposure].items()):
            lines.append(f"        {test}: {count}")
    lines.append("Tests that failed verification per exposure, detector and amplifier:")
    for exposure, failures in outcome.failures.items():
        lines.append(f"    Exposure ID: {exposure}")
        if failures:
            lines.extend(f"        {failure}" for failure in failures)
        else:
            lines.append("        No failures in 'verify_stats' for this exposure.")
    lines += [
        "Threshold values:",
        f"    Acceptable maximum number of failures per detector per test type: {outcome.threshold}",
        f"    This value is controlled by the configuration parameter: '{threshold_option}'",
        f"    Acceptable maximum number of failed detectors: {outcome.max_failed_detectors}",
        "    Acceptable maximum number of failed tests per exposure: "
        f"{outcome.max_failed_tests_per_exposure}",
        f"    Acceptable maximum number of failed exposures: {outcome.max_failed_exposures}",
        f"    Final number of exposures that failed verification: {len(outcome.failed_exposures)}",
        _CRITERION,
        "",
        f"Generation collection: {generation_collection or '(none: external verification)'}",
        f"Verification collection: {verification_collection}",
    ]
    return "\n".join(lines)


def verdict_message(image_type: str, outcome: VerificationOutcome, *, will_certify: bool) -> str:
    """One sentence with the outcome, as the procedure shows it.

    Parameters
    ----------
    image_type : `str`
        ``BIAS``, ``DARK``, ``FLAT``.
    outcome : `VerificationOutcome`
        Result of the majority rule.
    will_certify : `bool`
        Was the calibration generated (so that acceptance means certification)?
    """
    if outcome.accepted:
        action = "will be certified" if will_certify else "is accepted"
        if outcome.all_passed:
            return f"{image_type} calibration passed verification and {action}."
        return (
            f"{image_type} calibration passed the overall verification criteria and {action}, "
            "but there are tests that did not pass."
        )
    action = "will not be certified" if will_certify else "is rejected"
    return f"{image_type} calibration failed verification and {action}."
