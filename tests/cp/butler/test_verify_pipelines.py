"""verifyBias, verifyDark, verifyFlat through real pipetask runs (DMTN-101)."""

from __future__ import annotations

import math

import pytest

from lsst.ts.calibscripts.cp.butler.pipeline_locations import verification_pipeline
from lsst.ts.calibscripts.cp.camera.geometry import AMP_NAMES

from .conftest import CALIB_COLLECTION, LatissCalibrations, LatissNight
from .pipetask_runner import exposure_query, run_pipetask
from .test_cp_pipelines import OVERSCAN_COLUMNS

pytestmark = pytest.mark.slow


def run_verify(
    night: LatissNight,
    kind: str,
    inputs: list[str],
    exposures: list[int],
    output: str,
    config: tuple[str, ...] = (),
) -> str:
    run_pipetask(
        night.repo,
        verification_pipeline("LATISS", f"verify{kind}"),
        ["LATISS/raw/all", *inputs],
        output,
        exposure_query("LATISS", exposures, detectors=[0]),
        config,
    )
    return output


def check_structure(stats: dict, det_stats: dict, exp_stats: dict, exposures: list[int], tests: set[str]):
    """The three dictionaries are exactly as the scripts and the procedure expect."""
    assert set(stats) == {*exposures, "SUCCESS"}
    assert isinstance(stats["SUCCESS"], bool)
    for exposure in exposures:
        assert set(stats[exposure]) == {"SUCCESS", "FAILURES"}
        assert isinstance(stats[exposure]["SUCCESS"], bool)
        for failure in stats[exposure]["FAILURES"]:
            detector, amp, test = failure.split()
            assert detector == "RXX_S00" and amp in AMP_NAMES and test in tests | {"PROCESSING"}
    assert set(exp_stats) >= {"RXX_S00", "SUCCESS"}
    assert set(exp_stats["RXX_S00"]) == {"SUCCESS", "FAILURES"}
    assert {"AMP", "METADATA", "VERIFY", "SUCCESS"} <= set(det_stats)
    assert set(det_stats["AMP"]) == set(AMP_NAMES)
    for amp in AMP_NAMES:
        assert set(det_stats["AMP"][amp]) == {"MEAN", "NOISE", "CR_NOISE"}
        # PROCESSING appears only when cosmic-ray repair failed.
        assert (
            tests | {"SUCCESS"} <= set(det_stats["VERIFY"]["AMP"][amp]) <= tests | {"SUCCESS", "PROCESSING"}
        )


def read_stats(night: LatissNight, kind: str, output: str, exposure: int) -> tuple[dict, dict, dict]:
    with night.butler(output) as butler:
        return (
            butler.get(f"verify{kind}Stats", instrument="LATISS"),
            butler.get(f"verify{kind}DetStats", instrument="LATISS", detector=0, exposure=exposure),
            butler.get(f"verify{kind}ExpStats", instrument="LATISS", exposure=exposure),
        )


def test_three_biases_fail_noise_on_every_amp(latiss_night: LatissNight, latiss_bias3: str):
    exposures = latiss_night.biases[:3]
    output = run_verify(latiss_night, "Bias", [latiss_bias3], exposures, "u/test/verifyBias3")
    stats, det_stats, exp_stats = read_stats(latiss_night, "Bias", output, exposures[0])
    check_structure(stats, det_stats, exp_stats, exposures, {"MEAN", "NOISE", "CR_NOISE"})
    assert stats["SUCCESS"] is False
    for exposure in exposures:
        # Internal verification with N = 3: residual noise RN * sqrt(2/3).
        noise_failures = [f for f in stats[exposure]["FAILURES"] if f.endswith(" NOISE") and " CR_" not in f]
        assert sorted(noise_failures) == sorted(f"RXX_S00 {amp} NOISE" for amp in AMP_NAMES)
    assert det_stats["VERIFY"]["AMP"]["C10"]["NOISE"] is False
    assert det_stats["METADATA"]["DET_NAME"] == "RXX_S00"
    assert exp_stats["RXX_S00"]["SUCCESS"] is False and "C10 NOISE" in exp_stats["RXX_S00"]["FAILURES"]
    # The same statistics without writing the residuals (measured in memory).
    quiet = run_verify(
        latiss_night,
        "Bias",
        [latiss_bias3],
        exposures,
        "u/test/verifyBias3NoResidual",
        ("verifyBiasIsr:doWriteResidual=False",),
    )
    assert read_stats(latiss_night, "Bias", quiet, exposures[0]) == (stats, det_stats, exp_stats)
    with latiss_night.butler(quiet) as butler:
        assert not butler.query_datasets("verifyBiasProc", collections=quiet, explain=False)


def test_twenty_biases_pass(latiss_night: LatissNight, latiss_calibrations: LatissCalibrations):
    exposures = latiss_night.biases
    output = run_verify(latiss_night, "Bias", [latiss_calibrations.bias], exposures, "u/test/verifyBias20")
    stats, det_stats, exp_stats = read_stats(latiss_night, "Bias", output, exposures[0])
    check_structure(stats, det_stats, exp_stats, exposures, {"MEAN", "NOISE", "CR_NOISE"})
    noise_failures = [
        f for e in exposures for f in stats[e]["FAILURES"] if f.endswith(" NOISE") and "CR_" not in f
    ]
    assert noise_failures == []
    assert stats["SUCCESS"] is True, stats


def test_dark_and_flat_verification(latiss_night: LatissNight, latiss_calibrations: LatissCalibrations):
    darks, flats = latiss_night.darks, latiss_night.flats
    output = run_verify(latiss_night, "Dark", [CALIB_COLLECTION], darks, "u/test/verifyDark")
    stats, det_stats, exp_stats = read_stats(latiss_night, "Dark", output, darks[0])
    check_structure(stats, det_stats, exp_stats, darks, {"MEAN", "NOISE", "CR_NOISE"})
    # Five darks against their own combination, minus a 20-frame bias: the
    # residual noise is RN * sqrt(1 - 1/5 + 1/20), times the per-row
    # overscan-median term; NOISE fails on most amps.
    expected = math.sqrt(1 - 1 / 5 + 1 / 20) * math.sqrt(1 + math.pi / (2 * OVERSCAN_COLUMNS))
    ratios = []
    with latiss_night.butler(output) as butler:
        for exposure in darks:
            stats_of_det = butler.get(
                "verifyDarkDetStats", instrument="LATISS", detector=0, exposure=exposure
            )
            read_noise = stats_of_det["METADATA"]["READ_NOISE"]
            ratios += [stats_of_det["AMP"][amp]["NOISE"] / read_noise[amp] for amp in AMP_NAMES]
    assert sum(ratios) / len(ratios) == pytest.approx(expected, abs=0.015)
    assert stats["SUCCESS"] is False
    assert len([f for f in stats[darks[0]]["FAILURES"] if f.endswith(" NOISE") and "CR_" not in f]) > 8

    output = run_verify(latiss_night, "Flat", [CALIB_COLLECTION], flats, "u/test/verifyFlat")
    stats, det_stats, exp_stats = read_stats(latiss_night, "Flat", output, flats[0])
    check_structure(stats, det_stats, exp_stats, flats, {"NOISE"})
    assert set(det_stats["DET"]) == {"MEAN", "SCATTER"}
    assert det_stats["VERIFY"]["DET"]["SCATTER"] is True
    assert exp_stats["VERIFY"]["EXP"]["SCATTER"] is True
    # In ADU a flat's noise is sqrt(MEAN / gain) < sqrt(MEAN): every flat passes.
    assert stats["SUCCESS"] is True, stats
    with latiss_night.butler(output) as butler:
        processed = butler.get("verifyFlatProc", instrument="LATISS", detector=0, exposure=flats[0])
    assert processed.image.array.shape == latiss_night.night.geometry.assembled_shape
