import math

import numpy as np
import pytest
import yaml

from lsst.ts.calibscripts.cp.algorithms.combine import clipped_mean_scale, combine
from lsst.ts.calibscripts.cp.algorithms.verification import (
    AmpMeasurement,
    make_det_stats,
    measure_amp,
    merge_detector_stats,
    merge_exposure_stats,
    verify_bias_amp,
    verify_detector,
    verify_flat_amp,
)

from ..conftest import combined_bias, isr, make_model


def internal_bias_verification(detector, geometry, n, seed):
    """Combine n biases, verify each against the combination (in electrons)."""
    model = make_model(detector, geometry, seed=seed, cosmic_ray_rate=0.0)
    bias, inputs = combined_bias(model, n, model.truth.gains)
    read_noise = dict(detector.read_noise)
    stats = {
        2022092900001 + i: verify_detector(p.image - bias, geometry, "BIAS", read_noise)
        for i, p in enumerate(inputs)
    }
    return model, stats


@pytest.mark.parametrize(("n", "passes"), [(3, False), (20, True)])
def test_internal_bias_verification_noise(detector, geometry, n, passes):
    model, stats = internal_bias_verification(detector, geometry, n, seed=10 + n)
    for det_stats in stats.values():
        assert det_stats["SUCCESS"] is passes
        for amp in geometry.amp_names:
            assert det_stats["VERIFY"]["AMP"][amp]["NOISE"] is passes, amp
            assert det_stats["VERIFY"]["AMP"][amp]["MEAN"] is True
            assert det_stats["VERIFY"]["AMP"][amp]["CR_NOISE"] is True
            # The physics: RN * sqrt(1 - 1/N), inflated a little by each
            # frame's per-row overscan median (pi/2 / 58 columns).
            expected = model.truth.read_noise[amp] * math.sqrt((1 + math.pi / 2 / 58) * (1 - 1 / n))
            assert det_stats["AMP"][amp]["NOISE"] == pytest.approx(expected, rel=0.04)


def test_threads_give_the_same_statistics(detector, geometry):
    model = make_model(detector, geometry, seed=41, cosmic_ray_rate=2e-6)
    bias, inputs = combined_bias(model, 3, model.truth.gains)
    residual = inputs[0].image - bias
    read_noise = dict(detector.read_noise)
    assert verify_detector(residual, geometry, "BIAS", read_noise, n_threads=3) == verify_detector(
        residual, geometry, "BIAS", read_noise
    )


def test_stats_structures_are_exactly_as_specified(detector, geometry):
    _, stats = internal_bias_verification(detector, geometry, 3, seed=30)
    det_stats = stats[2022092900001]
    assert set(det_stats) == {"AMP", "METADATA", "VERIFY", "SUCCESS"}
    assert list(det_stats["AMP"]) == list(geometry.amp_names)
    assert set(det_stats["AMP"]["C10"]) == {"MEAN", "NOISE", "CR_NOISE"}
    assert all(type(v) is float for v in det_stats["AMP"]["C10"].values())
    assert set(det_stats["VERIFY"]) == {"AMP"}
    assert det_stats["VERIFY"]["AMP"]["C10"] == {
        "MEAN": True,
        "NOISE": False,
        "CR_NOISE": True,
        "SUCCESS": False,
    }
    assert det_stats["SUCCESS"] is False
    assert det_stats["METADATA"]["READ_NOISE"]["C10"] == detector.read_noise["C10"]

    exp_stats = {eid: merge_detector_stats({detector.full_name: s}) for eid, s in stats.items()}
    first = exp_stats[2022092900001]
    assert set(first) == {"RXX_S00", "SUCCESS"}
    assert first["RXX_S00"] == {"SUCCESS": False, "FAILURES": [f"{amp} NOISE" for amp in geometry.amp_names]}
    assert first["SUCCESS"] is False

    run = merge_exposure_stats(exp_stats)
    assert set(run) == {2022092900001, 2022092900002, 2022092900003, "SUCCESS"}
    assert run[2022092900002]["FAILURES"][0] == "RXX_S00 C10 NOISE"
    assert len(run[2022092900002]["FAILURES"]) == 16
    assert run["SUCCESS"] is False
    # Plain types: a YAML round trip is the identity.
    for structure in (det_stats, first, run):
        assert yaml.safe_load(yaml.safe_dump(structure)) == structure


def test_passing_structures(detector, geometry):
    _, stats = internal_bias_verification(detector, geometry, 20, seed=31)
    exp_stats = {eid: merge_detector_stats({"RXX_S00": s}) for eid, s in list(stats.items())[:2]}
    assert exp_stats[2022092900001] == {"RXX_S00": {"SUCCESS": True, "FAILURES": []}, "SUCCESS": True}
    run = merge_exposure_stats(exp_stats)
    assert run == {
        2022092900001: {"SUCCESS": True, "FAILURES": []},
        2022092900002: {"SUCCESS": True, "FAILURES": []},
        "SUCCESS": True,
    }


def test_first_frame_after_idle_fails(detector, geometry):
    # Why operators discard the first image of each type: its transient
    # fails NOISE on every amp where the next frame passes.
    model = make_model(detector, geometry, seed=40, cosmic_ray_rate=0.0)
    first = isr(model.expose("BIAS", first_after_idle=True), geometry, model.truth.gains).image
    bias, inputs = combined_bias(model, 20, model.truth.gains)
    read_noise = dict(detector.read_noise)
    first_stats = verify_detector(first - bias, geometry, "BIAS", read_noise)
    second_stats = verify_detector(inputs[0].image - bias, geometry, "BIAS", read_noise)
    failures = merge_detector_stats({"RXX_S00": first_stats})["RXX_S00"]["FAILURES"]
    assert {f"{amp} NOISE" for amp in geometry.amp_names} <= set(failures)
    assert second_stats["SUCCESS"] is True


def test_cosmic_rays_raise_cr_noise_only(detector, geometry):
    rng = np.random.default_rng(3)
    data = rng.normal(0.0, 8.0, (100, 64))
    data[50, 10:20] += 5000.0  # a track
    clean = measure_amp(data)
    assert clean.noise == pytest.approx(8.0, rel=0.05)
    assert clean.cr_noise == pytest.approx(8.0, rel=0.05)
    assert clean.n_cosmic_rays == 1
    tests = verify_bias_amp(clean, 8.0)
    assert tests == {"MEAN": True, "NOISE": True, "CR_NOISE": True, "SUCCESS": True}
    failed = verify_bias_amp(AmpMeasurement(0.0, 8.0, 8.0, cr_failed=True), 8.0)
    assert failed["PROCESSING"] is False
    assert failed["SUCCESS"] is False
    with pytest.raises(ValueError, match="read noise"):
        verify_bias_amp(clean, 0.0)


def test_flat_verification(detector, geometry):
    model = make_model(detector, geometry, seed=50, cosmic_ray_rate=0.0)
    bias, _ = combined_bias(model, 5)
    flats = [isr(model.expose("FLAT", 1.0, flux=15_000.0), geometry, bias=bias).image for _ in range(20)]
    flat = combine(flats, scales=[clipped_mean_scale(f) for f in flats]).image
    # Flat-fielded inputs in ADU: NOISE = sqrt(MEAN / g) < sqrt(MEAN) for g > 1.
    det_stats = verify_detector(flats[0] / flat, geometry, "FLAT")
    assert set(det_stats) == {"AMP", "METADATA", "VERIFY", "DET", "SUCCESS"}
    assert set(det_stats["VERIFY"]["DET"]) == {"SCATTER", "SUCCESS"}
    assert det_stats["SUCCESS"] is True
    assert det_stats["DET"]["SCATTER"] / det_stats["DET"]["MEAN"] < 0.01
    # In electrons Poisson noise exceeds sqrt(MEAN) by sqrt(1 + 1/N): fails.
    gains = model.truth.gains
    in_electrons = verify_flat_amp(AmpMeasurement(15_000.0, math.sqrt(15_000.0 * 1.05), 0.0))
    assert in_electrons["NOISE"] is False
    assert gains["C10"] > 1
    # Exposure-level scatter of detector means (ComCam-like).
    other = make_det_stats(
        det_stats["AMP"],
        det_stats["VERIFY"]["AMP"],
        {},
        {"MEAN": det_stats["DET"]["MEAN"] * 1.2, "SCATTER": 0.0},
    )
    exp = merge_detector_stats({"R22_S00": det_stats, "R22_S01": other}, exposure_scatter=True)
    assert exp["VERIFY"]["EXP"]["SCATTER"] is False
    assert exp["SUCCESS"] is False
    run = merge_exposure_stats({7: exp})
    assert run[7]["FAILURES"] == ["EXPOSURE SCATTER"]


def test_verify_detector_errors(geometry):
    image = np.zeros(geometry.assembled_shape)
    with pytest.raises(ValueError, match="read noise"):
        verify_detector(image, geometry, "BIAS")
    with pytest.raises(ValueError, match="image type"):
        verify_detector(image, geometry, "SKY")
