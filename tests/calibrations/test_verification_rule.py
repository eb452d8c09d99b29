"""The majority rule, on the procedure's own examples."""

from lsst.ts.calibscripts.calibrations.verification_report import format_verification_report, verdict_message
from lsst.ts.calibscripts.calibrations.verification_rule import apply_majority_rule

AMPS = [f"C0{i}" for i in range(8)] + [f"C1{i}" for i in range(8)]


def stats_with(failures: dict[int, list[str]]) -> dict[object, object]:
    stats: dict[object, object] = {
        exposure: {"SUCCESS": not f, "FAILURES": f} for exposure, f in failures.items()
    }
    stats["SUCCESS"] = not any(failures.values())
    return stats


def test_three_biases_fail() -> None:
    # As the procedure shows: NOISE fails on all 16 amps of each of 3 exposures.
    failures = {
        e: [f"RXX_S00 {amp} NOISE" for amp in AMPS] for e in (2022092900001, 2022092900002, 2022092900003)
    }
    failures[2022092900001] += ["RXX_S00 C01 MEAN", "RXX_S00 C04 CR_NOISE"]
    outcome = apply_majority_rule(stats_with(failures), threshold=8, n_detectors=1)
    assert not outcome.accepted
    assert outcome.max_failed_detectors == 1
    assert outcome.max_failed_tests_per_exposure == 8
    # 3 exposures (the overall SUCCESS key is not one): floor(3/2) + 1.
    assert outcome.max_failed_exposures == 2
    assert outcome.failed_exposures == [2022092900001, 2022092900002, 2022092900003]
    assert outcome.counts[2022092900001] == {"NOISE": 16, "MEAN": 1, "CR_NOISE": 1}
    report = format_verification_report(
        "BIAS",
        outcome,
        threshold_option="number_verification_tests_threshold_bias",
        generation_collection="u/ocps/gen",
        verification_collection="u/ocps/ver",
    )
    sections = [
        "exposures with verification tests that failed:",
        "Number of tests that failed per test type:",
        "Tests that failed verification per exposure, detector and amplifier:",
        "Threshold values:",
        "This value is controlled by the configuration parameter: 'number_verification_tests_threshold_bias'",
        "Acceptable maximum number of failed exposures: 2",
        "Final number of exposures that failed verification: 3",
        "Verification failure criterion:",
        "Generation collection: u/ocps/gen",
        "Verification collection: u/ocps/ver",
    ]
    positions = [report.index(s) for s in sections]
    assert positions == sorted(positions)
    assert "        RXX_S00 C01 MEAN" in report
    assert verdict_message("BIAS", outcome, will_certify=True) == (
        "BIAS calibration failed verification and will not be certified."
    )


def test_twenty_biases_one_bad_exposure_pass() -> None:
    failures: dict[int, list[str]] = {e: [] for e in range(2022092900004, 2022092900024)}
    failures[2022092900004] = [f"RXX_S00 {amp} CR_NOISE" for amp in AMPS[:6]] + ["RXX_S00 C01 MEAN"]
    outcome = apply_majority_rule(stats_with(failures), threshold=8, n_detectors=1)
    assert outcome.accepted
    assert outcome.max_failed_exposures == 11
    assert outcome.failed_exposures == []
    report = format_verification_report(
        "BIAS", outcome, threshold_option="t", generation_collection=None, verification_collection="v"
    )
    assert "Exposure ID: 2022092900005\n        No failures in 'verify_stats' for this exposure." in report
    assert "Generation collection: (none: external verification)" in report
    assert verdict_message("BIAS", outcome, will_certify=True) == (
        "BIAS calibration passed the overall verification criteria and will be certified, "
        "but there are tests that did not pass."
    )


def test_majority_of_detectors() -> None:
    # Nine detectors: an exposure fails when >= 8 x 5 = 40 amp-tests of one type fail.
    dets = [f"R22_S{i}{j}" for i in range(3) for j in range(3)]
    bad = [f"{d} {amp} NOISE" for d in dets[:3] for amp in AMPS]  # 48 failures on 3 detectors
    few = [f"{d} {amp} NOISE" for d in dets[:2] for amp in AMPS]  # 32 failures
    outcome = apply_majority_rule(stats_with({1: bad, 2: few, 3: []}), threshold=8, n_detectors=9)
    assert outcome.max_failed_detectors == 5
    assert outcome.max_failed_tests_per_exposure == 40
    assert outcome.failed_exposures == [1]
    assert outcome.accepted


def test_success_flag_accepts() -> None:
    outcome = apply_majority_rule(stats_with({1: [], 2: []}), threshold=8, n_detectors=1)
    assert outcome.accepted and outcome.all_passed
    assert (
        verdict_message("DARK", outcome, will_certify=False)
        == "DARK calibration passed verification and is accepted."
    )
