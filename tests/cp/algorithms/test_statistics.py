import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.statistics import (
    IQR_TO_SIGMA,
    median_last_axis,
    percentiles,
    sigma_clipped_stats,
    sorted_percentiles,
)


def test_clipped_stats_ignore_outliers():
    rng = np.random.default_rng(2)
    values = rng.normal(100.0, 4.0, 100_000)
    values[:500] = 1e5  # 0.5% wild values
    stats = sigma_clipped_stats(values, sigma=3.0, iterations=3)
    assert stats.mean == pytest.approx(100.0, abs=0.05)
    # A 3-sigma clip trims the Gaussian's tails: the clipped stdev is ~1.3% low.
    assert stats.stdev == pytest.approx(4.0 * 0.987, rel=0.01)
    assert stats.n < 100_000 - 500
    assert stats.median == pytest.approx(100.0, abs=0.1)


def test_first_iteration_centres():
    # Two equal outliers among twelve values shield each other from a
    # mean-centred clip but not from the median/IQR one.
    values = np.array([10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3, 9.7, 10.0, 1000.0, 1000.0])
    assert sigma_clipped_stats(values, first_centre="median").mean == pytest.approx(10.0)
    assert sigma_clipped_stats(values, first_centre="mean").mean == pytest.approx(np.mean(values))
    with pytest.raises(ValueError, match="first_centre"):
        sigma_clipped_stats(values, first_centre="mode")  # type: ignore[arg-type]


def test_mask_nan_and_empty():
    values = np.array([1.0, 2.0, np.nan, 3.0, 50.0])
    mask = np.array([False, False, False, False, True])
    stats = sigma_clipped_stats(values, mask=mask)
    assert stats.mean == pytest.approx(2.0)
    assert stats.n == 3
    empty = sigma_clipped_stats(values, mask=np.ones(5, dtype=bool))
    assert empty.n == 0
    assert np.isnan(empty.mean)
    with pytest.raises(ValueError, match="mask shape"):
        sigma_clipped_stats(values, mask=np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="sigma"):
        sigma_clipped_stats(values, sigma=0)


def test_iqr_constant():
    # 0.7413 * IQR is sigma for a Gaussian.
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 1_000_000)
    q25, q75 = np.percentile(x, [25, 75])
    assert IQR_TO_SIGMA * (q75 - q25) == pytest.approx(1.0, rel=0.005)


def test_percentiles():
    values = np.arange(101, dtype=float)
    result = percentiles(values)
    assert list(result) == [0.0, 5.0, 16.0, 50.0, 84.0, 95.0, 100.0]
    assert result[50.0] == 50.0
    assert result[95.0] == 95.0
    assert np.isnan(percentiles(np.array([np.nan]))[50.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sorted_percentiles_are_numpys(dtype):
    """The same values as numpy.percentile, to the last bit, from sorted values."""
    rng = np.random.default_rng(8)
    for n in [1, 2, 3, 4, 5, 10, 101, 1000, 2049]:
        for values in (rng.normal(0.0, 7.0, n), rng.integers(-4, 4, n) / 2, rng.normal(1e4, 3.0, n)):
            x = values.astype(dtype)
            q = [0.0, 5.0, 16.0, 25.0, 50.0, 75.0, 84.0, 95.0, 100.0, *rng.uniform(0, 100, 4)]
            assert np.array_equal(sorted_percentiles(np.sort(x), q), np.percentile(x, q))
            assert np.array_equal(
                sorted_percentiles(np.sort(x), q, np.float64), np.percentile(x.astype(np.float64), q)
            )
            assert percentiles(x, q) == {
                float(p): float(v) for p, v in zip(q, np.percentile(x, q), strict=True)
            }
    with pytest.raises(ValueError, match="No values"):
        sorted_percentiles(np.array([]), [50.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (58,), (2048, 58), (3, 5, 4680), (4, 1)])
def test_median_last_axis_is_numpys(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    values = (
        rng.normal(1e4, 30.0, shape) if np.dtype(dtype).kind == "f" else rng.integers(-9, 9, shape)
    ).astype(dtype)
    expected = np.median(values, axis=-1)
    result = median_last_axis(values)
    assert result.dtype == expected.dtype
    assert np.array_equal(result, expected)
