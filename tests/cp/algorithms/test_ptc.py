import math

import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.ptc import (
    FlatPair,
    PtcConfig,
    find_flat_pairs,
    fit_ptc_amp,
    gain_from_pair,
    measure_pair,
    ptc_model,
    solve_ptc,
)

from ..conftest import combined_bias, isr, make_model, medium_geometry

GEOMETRY = medium_geometry()


def flat_pair_extract(model, bias, flux, index):
    first = isr(model.expose("FLAT", 1.0, flux=flux), GEOMETRY, bias=bias)
    second = isr(model.expose("FLAT", 1.0, flux=flux), GEOMETRY, bias=bias)
    pair = FlatPair(first=2022092900001 + 2 * index, second=2022092900002 + 2 * index, exposure_time=1.0)
    # Per-amp data in ADU, from the assembled, bias-subtracted images.
    images1 = {amp.name: first.image[amp.detector_slice] for amp in GEOMETRY}
    images2 = {amp.name: second.image[amp.detector_slice] for amp in GEOMETRY}
    return measure_pair(pair, images1, images2, first.overscan_noise, second.overscan_noise)


@pytest.fixture(scope="module")
def ptc_data(detector):
    model = make_model(detector, GEOMETRY, seed=8, cosmic_ray_rate=1e-7)
    bias, _ = combined_bias(model, 8)
    fluxes = [60, 150, 400, 1000, 2500, 6000, 12000, 25000, 45000, 70000, 95000, 115000, 160000]
    extracts = [flat_pair_extract(model, bias, flux, i) for i, flux in enumerate(fluxes)]
    return model, extracts


def test_find_flat_pairs():
    times = [0.1, 0.1, 0.35, 0.35, 0.6, 0.6, 1.0, 1.5, 1.7, 2.1, 2.3]
    pairs = find_flat_pairs([(100 + i, t) for i, t in enumerate(times)])
    assert [(p.first, p.second) for p in pairs] == [(100, 101), (102, 103), (104, 105)]
    # Within 5 ms is equal; order of the input does not matter.
    assert find_flat_pairs([(2, 1.003), (1, 1.0), (3, 1.0)]) == [FlatPair(1, 2, 1.0)]
    assert find_flat_pairs([(1, 1.0), (2, 1.01)]) == []


def test_gain_formula_limits():
    # No read noise: the FULL correction reduces to (mu + sqrt(mu^2 - 2 mu c)) / (2 c mu).
    mu, c = 10_000.0, 0.9
    assert gain_from_pair(mu, c, 0.0) == pytest.approx((mu + math.sqrt(mu * mu - 2 * mu * c)) / (2 * c * mu))
    assert gain_from_pair(mu, c, 0.0) == pytest.approx(1 / c, rel=1e-4)
    # Read noise raises the gain above 1/c.
    assert gain_from_pair(mu, c, 8.0) > 1 / c
    assert math.isnan(gain_from_pair(10.0, 0.1, 10.0))


def test_single_pair_gain_within_three_percent(ptc_data):
    model, extracts = ptc_data
    extract = extracts[6]  # 12000 e-/s: about 10^4 ADU
    for amp, measurement in extract.amps.items():
        assert 8_000 < measurement.mean < 12_000
        assert measurement.gain == pytest.approx(model.truth.gains[amp], rel=0.03), amp
        assert measurement.noise == pytest.approx(model.truth.read_noise[amp], rel=0.1)
    fields = extract.to_dataset_fields()
    assert fields["gain"] == extract.gain
    assert fields["inputExpIdPairs"]["C10"] == [(2022092900013, 2022092900014)]
    assert set(fields) >= {"gain", "noise", "rawMeans", "rawVars", "expTimes", "inputExpIdPairs"}


def test_ptc_gain_and_noise(ptc_data):
    model, extracts = ptc_data
    solution = solve_ptc(extracts)
    for amp, fit in solution.fits.items():
        assert fit.status == "OK"
        assert fit.gain == pytest.approx(model.truth.gains[amp], rel=0.02), amp
        assert fit.noise == pytest.approx(model.truth.read_noise[amp], rel=0.05), amp
        # The saturated pair is past the turnoff.
        assert fit.kept[-1] is False
        assert 60_000 < fit.turnoff < 120_000
    fields = solution.to_dataset_fields()
    assert fields["badAmps"] == []
    assert fields["ptcFitPars"]["C10"][1] == solution.gain["C10"]
    assert solution.means["C10"] == sorted(solution.means["C10"])


def test_ptc_model_and_fit_on_exact_curve():
    mu = np.geomspace(50, 80_000, 25)
    var = ptc_model(mu, -1.5e-6, 1.2, 49.0)
    fit = fit_ptc_amp(mu, var)
    assert fit.gain == pytest.approx(1.2, rel=1e-3)
    assert fit.noise == pytest.approx(7.0, rel=1e-2)
    assert fit.a00 == pytest.approx(-1.5e-6, rel=0.05)
    # a00 -> 0 is the Poisson line.
    assert ptc_model(np.array([1000.0]), 0.0, 2.0, 16.0)[0] == pytest.approx(500.0 + 4.0)


def test_outliers_rejected_and_failures_reported():
    mu = np.geomspace(100, 50_000, 15)
    var = ptc_model(mu, 0.0, 1.1, 36.0)
    var[7] *= 1.5
    fit = fit_ptc_amp(mu, var, n_pixels=[20_000] * 15)
    assert fit.kept[7] is False
    assert sum(fit.kept) == 14
    assert fit.gain == pytest.approx(1.1, rel=1e-3)
    assert fit_ptc_amp([1.0, 2.0], [1.0, 2.0]).status.startswith("only 2 usable points")
    with pytest.raises(ValueError, match="flat pairs"):
        solve_ptc([])
    with pytest.raises(ValueError, match="edge"):
        measure_pair(
            FlatPair(1, 2, 1.0),
            {"C10": np.zeros((30, 30))},
            {"C10": np.zeros((30, 30))},
            {"C10": 1.0},
            {"C10": 1.0},
            config=PtcConfig(),
        )
