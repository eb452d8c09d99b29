"""What each job reads, and how missing calibrations and failures are worded (no observatory)."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.calibrations.preflight import (
    JobInputs,
    Shortfall,
    describe_shortfalls,
    format_detectors,
)
from lsst.ts.calibscripts.calibrations.run_summary import RunSummary, short_cause
from lsst.ts.calibscripts.cp.butler.calibration_needs import CalibrationNeedsError, calibrations_read

CP = "${CP_PIPE_DIR}/pipelines"
VERIFY = "${CP_VERIFY_DIR}/pipelines"


@pytest.mark.parametrize("instrument", ["LATISS", "LSSTComCam"])
def test_calibrations_read_by_each_pipeline(instrument: str) -> None:
    no_defects = (("-c", "isr:doDefect=False"),)
    assert calibrations_read(f"{CP}/{instrument}/cpBias.yaml", no_defects) == ()
    assert calibrations_read(f"{CP}/{instrument}/cpDark.yaml", no_defects) == ("bias",)
    assert calibrations_read(f"{CP}/{instrument}/cpFlat.yaml", no_defects) == ("bias", "dark")
    assert calibrations_read(f"{CP}/{instrument}/cpDefects.yaml", no_defects) == ("bias",)
    gains = f"{CP}/{instrument}/cpPtc.yaml#cpPtcGainFromFlatPairs"
    assert calibrations_read(gains, (("-c", "isr:doCrosstalk=False"),)) == ("bias", "dark")
    # Defects are optional for ISR: never required.
    assert calibrations_read(f"{VERIFY}/{instrument}/verifyBias.yaml") == ("bias",)
    assert calibrations_read(f"{VERIFY}/{instrument}/verifyDark.yaml") == ("bias", "dark")
    assert calibrations_read(f"{VERIFY}/{instrument}/verifyFlat.yaml") == ("bias", "dark", "flat")


def test_overrides_change_what_is_read() -> None:
    assert calibrations_read(f"{CP}/LATISS/cpFlat.yaml", (("-c", "isr:doDark=False"),)) == ("bias",)
    with pytest.raises(CalibrationNeedsError, match="no tasks labeled 'verifyIsr'"):
        calibrations_read(f"{CP}/LATISS/cpFlat.yaml", (("-c", "verifyIsr:doDark=False"),))


def test_format_detectors() -> None:
    assert format_detectors([0]) == "detector 0"
    assert format_detectors([4, 0]) == "detectors 0, 4"
    assert format_detectors(range(9)) == "detectors 0-8"
    assert format_detectors([0, 1, 2, 5, 7, 8]) == "detectors 0-2, 5, 7, 8"


def test_missing_for_some_detectors_names_them() -> None:
    job = JobInputs(
        step="bias verification",
        pipeline=f"{VERIFY}/LSSTComCam/verifyBias.yaml",
        options="",
        collections=("LSSTComCam/calib", "u/me/biases"),
        collection_options=("input_collections_verify",),
        external=True,
    )
    (sentence,) = describe_shortfalls([Shortfall(job, ("bias",), {"bias": [3, 4, 5]}, tuple(range(9)))])
    assert sentence == (
        "external verification needs a certified bias for detectors 0-8 in LSSTComCam/calib, u/me/biases "
        "valid now; none found for: bias (detectors 3-5). Run once with generate_calibrations: true, or "
        "name a collection that has them in input_collections_verify."
    )


def test_short_cause_drops_data_ids_and_stops_at_a_line() -> None:
    cause = (
        "task verifyBiasIsr failed on {instrument: 'LATISS', detector: 0, exposure: 2026120400002}: "
        "FileNotFoundError: Not enough datasets (0) found for non-optional connection "
        "verifyBiasIsr.bias (bias) with minimum=1 for quantum data ID {instrument: 'LATISS', detector: 0, "
        "exposure: 2026120400002}." + " More." * 100 + "\nTraceback..."
    )
    short = short_cause(cause)
    assert short.startswith("task verifyBiasIsr failed: FileNotFoundError: Not enough datasets (0)")
    assert len(short) == 200 and short.endswith("...")
    assert "\n" not in short


def test_one_failure_is_given_in_full() -> None:
    summary = RunSummary()
    summary.step("BIAS")
    summary.step("DARK").fail("OCPS job abc (dark generation) failed: a long story; see the job log /x")
    assert summary.reason() == "DARK: OCPS job abc (dark generation) failed: a long story; see the job log /x"
