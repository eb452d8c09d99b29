import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.assembly import assemble
from lsst.ts.calibscripts.cp.algorithms.overscan import (
    OverscanConfig,
    correct_amp,
    correct_and_assemble,
    correct_overscan,
    overscan_residual_key,
    serial_overscan_level,
)


def test_overscan_removes_level_and_row_drift(model, geometry):
    amps = model.expose("BIAS")
    results = correct_overscan(amps, geometry)
    assert list(results) == list(geometry.amp_names)
    for amp in geometry:
        result = results[amp.name]
        assert result.data.shape == amp.data_shape
        assert result.data.dtype == np.float32
        # What remains is the fixed bias pattern plus read noise.
        pattern = amp.to_readout_orientation(model.truth.bias_pattern[amp.detector_slice])
        residual = result.data - pattern
        rn = model.truth.read_noise_adu[amp.name]
        assert abs(residual.mean()) < 4 * rn / np.sqrt(residual.size) + 0.3
        # Per-row levels follow the drift: what row structure is left is the
        # noise of a row's mean plus that of the median of 58 overscan columns.
        row_means = residual.mean(axis=1)
        expected = rn * np.sqrt(1 / amp.data.width + np.pi / 2 / 58)
        assert np.std(row_means) < 1.3 * expected
        # The residual about the per-row median is a few percent below the
        # read noise (the median follows each row's own noise a little).
        assert result.residual_stdev == pytest.approx(0.975 * rn, rel=0.03)


def test_edge_skip_and_parallel(model, geometry):
    amp = geometry.amp("C03")
    raw = model.expose("BIAS")["C03"].astype(np.float64)
    # Corrupt the columns nearest the data (deferred charge): skipped.
    raw[:, amp.serial_overscan.x0 : amp.serial_overscan.x0 + 3] += 500.0
    level = serial_overscan_level(raw, amp, edge_skip=3)
    used = raw[:, amp.serial_overscan.x0 + 3 : amp.serial_overscan.x1 - 3]
    assert np.allclose(level, np.median(used, axis=1))
    assert np.median(level) < model.truth.bias_level["C03"] + 20
    with_parallel = correct_amp(raw, amp, OverscanConfig(do_parallel=True, parallel_edge_skip=1))
    assert with_parallel.parallel_level is not None
    assert with_parallel.parallel_level.shape == (amp.data.width,)
    with pytest.raises(ValueError, match="nothing after skipping"):
        correct_amp(raw, amp, OverscanConfig(edge_skip=32))
    with pytest.raises(ValueError, match="raw array shape"):
        correct_amp(raw[:-1], amp)


def test_residual_key():
    assert overscan_residual_key("C10") == "LSST ISR OVERSCAN RESIDUAL SERIAL STDEV C10"


@pytest.mark.parametrize(
    "config", [OverscanConfig(), OverscanConfig(edge_skip=5), OverscanConfig(do_parallel=True)]
)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_correct_and_assemble_is_correct_then_assemble(model, geometry, config, n_threads):
    """The lean path gives the same pixels, levels and residuals, to the last bit."""
    amps = model.expose("BIAS")
    amps["C12"][5:9, 10:20] = 130_000  # saturated
    expected = correct_overscan(amps, geometry, config)
    image, saturated, results = correct_and_assemble(
        amps, geometry, config, saturation=120_000.0, n_threads=n_threads
    )
    assert np.array_equal(image, assemble({name: r.data for name, r in expected.items()}, geometry))
    assert saturated is not None
    saturation = assemble({a.name: amps[a.name][a.data_slice] >= 120_000 for a in geometry}, geometry, bool)
    assert np.array_equal(saturated, saturation) and saturated.sum() == 40
    for name, result in results.items():
        assert result.residual_stdev == expected[name].residual_stdev
        assert np.array_equal(result.serial_level, expected[name].serial_level)
        assert np.array_equal(result.data, expected[name].data)
    assert correct_and_assemble(amps, geometry, config)[1] is None
