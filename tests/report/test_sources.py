"""What a calibration script's log says about its collections (no repository needed)."""

from __future__ import annotations

from lsst.ts.calibscripts.calibrations.run_summary import RunSummary
from lsst.ts.calibscripts.calibrations.verification_report import format_verification_report
from lsst.ts.calibscripts.calibrations.verification_rule import apply_majority_rule
from lsst.ts.calibscripts.report.sources import collections_from_log, jobs_from_log, verification_stats_type


def test_collections_named_by_a_calibration_scripts_log() -> None:
    # The verification reports and the final summary are written by the script's own code.
    stats = {2022092900001: {"SUCCESS": False, "FAILURES": ["RXX_S00 C10 NOISE"]}, "SUCCESS": False}
    outcome = apply_majority_rule(stats, 8, 1)
    internal = format_verification_report(
        "BIAS",
        outcome,
        threshold_option="number_verification_tests_threshold_bias",
        generation_collection="u/ocps/gen1",
        verification_collection="u/ocps/ver1",
    )
    external = format_verification_report(
        "DARK",
        outcome,
        threshold_option="number_verification_tests_threshold_dark",
        generation_collection=None,
        verification_collection="u/ocps/ver2",
    )
    summary = RunSummary()
    summary.step("BIAS").generation_collection = "u/ocps/gen1"
    summary.step("BIAS").verification_collection = "u/ocps/ver1"
    summary.step("GAIN").generation_collection = "u/ocps/gain1"
    messages = [
        "OCPS job gen1 started: bias generation (${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml)",
        "OCPS job gen1 finished: bias generation -> u/ocps/gen1",
        internal,
        external,
        "Final summary:\n" + summary.describe(),
    ]
    assert collections_from_log(messages) == ["u/ocps/gen1", "u/ocps/ver1", "u/ocps/ver2", "u/ocps/gain1"]
    assert jobs_from_log(messages) == [("gen1", "bias generation", "u/ocps/gen1")]
    assert collections_from_log(["Reached checkpoint one", "BIAS 1 of 20 taken: 2022092900001 (0.0 s)"]) == []


def test_statistics_dataset_type_names() -> None:
    assert [verification_stats_type(t) for t in ("BIAS", "dark", "Flat")] == [
        "verifyBiasStats",
        "verifyDarkStats",
        "verifyFlatStats",
    ]
