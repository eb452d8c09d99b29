"""Robust image statistics: clipped mean and standard deviation, percentiles.

The clipping follows the ``MEANCLIP``/``STDEVCLIP`` algorithm of the Rubin
science pipelines' ``afw.math.Statistics`` (used by cp_pipe and cp_verify):

1. The first iteration keeps the values within ``sigma * 0.7413 * IQR`` of
   the median (``0.7413 * IQR`` is the standard deviation of a Gaussian with
   that interquartile range), so a few wild values cannot inflate the first
   width.
2. Every further iteration keeps the values within ``sigma`` standard
   deviations of the previous iteration's clipped mean, where the standard
   deviation is that of the previous iteration's kept values.
3. Each iteration clips the *full* sample again (it is not cumulative); the
   statistics of the last iteration are returned.

Quartiles and the median use linear interpolation between order statistics
(NumPy's default percentile method), as afw does. ``first_centre="mean"``
replaces step 1 by a clip about the plain mean with the plain standard
deviation (cheaper, weaker against several outliers).

`sorted_percentiles` gives exactly what `numpy.percentile` gives (the same
order statistics, interpolated by the same floating-point operations), but
from values sorted once: NumPy sorts ``float32`` with SIMD several times
faster than it selects order statistics (``numpy.partition``), which made
the quartiles the largest cost of the verification statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_PERCENTILES",
    "IQR_TO_SIGMA",
    "ClippedStats",
    "median_last_axis",
    "percentiles",
    "sigma_clipped_stats",
    "sorted_percentiles",
]

IQR_TO_SIGMA = 0.741301109252802
"""Standard deviation of a Gaussian per unit interquartile range."""

DEFAULT_PERCENTILES: tuple[float, ...] = (0.0, 5.0, 16.0, 50.0, 84.0, 95.0, 100.0)
"""Percentiles written into combined-calibration headers."""


@dataclass(frozen=True)
class ClippedStats:
    """Result of `sigma_clipped_stats`.

    Attributes
    ----------
    mean : `float`
        Clipped mean (NaN if nothing survived).
    stdev : `float`
        Clipped standard deviation, ``ddof=1`` (NaN for fewer than 2 values).
    n : `int`
        Number of values kept by the last iteration.
    median : `float`
        Median of the unclipped (unmasked, finite) values.
    """

    mean: float
    stdev: float
    n: int
    median: float

    @property
    def variance(self) -> float:
        """Clipped variance (`float`)."""
        return self.stdev**2


def sigma_clipped_stats(
    values: np.ndarray,
    sigma: float = 3.0,
    iterations: int = 3,
    mask: np.ndarray | None = None,
    first_centre: Literal["median", "mean"] = "median",
) -> ClippedStats:
    """Clipped mean and standard deviation of an array (afw ``MEANCLIP``).

    Parameters
    ----------
    values : `numpy.ndarray`
        Values of any shape; non-finite values are ignored.
    sigma : `float`, optional
        Clipping half-width in standard deviations.
    iterations : `int`, optional
        Number of clipping iterations (>= 1).
    mask : `numpy.ndarray`, optional
        Boolean array of ``values``' shape; `True` excludes a value.
    first_centre : {"median", "mean"}, optional
        Window of the first iteration: ``"median"`` (afw) clips about the
        median with ``0.7413 * IQR`` as the standard deviation; ``"mean"``
        clips about the plain mean with the plain standard deviation.

    Returns
    -------
    stats : `ClippedStats`
        Clipped mean, standard deviation, count and the median.

    Raises
    ------
    ValueError
        If ``sigma`` is not positive, ``iterations`` < 1, or the mask's shape
        differs from the values'.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    data = np.asarray(values)
    good = np.isfinite(data)
    if mask is not None:
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from values shape {data.shape}")
        good &= ~mask
    values = data[good].ravel()
    sample = values.astype(np.float64, copy=False)
    if sample.size == 0:
        return ClippedStats(mean=float("nan"), stdev=float("nan"), n=0, median=float("nan"))
    # np.percentile(sample, [25, 50, 75]), from the values sorted in their own type.
    q25, median, q75 = sorted_percentiles(np.sort(values), (25.0, 50.0, 75.0), np.float64)
    if first_centre == "median":
        centre, half_width = float(median), sigma * IQR_TO_SIGMA * float(q75 - q25)
    elif first_centre == "mean":
        spread = float(sample.std(ddof=1)) if sample.size > 1 else 0.0
        centre, half_width = float(sample.mean()), sigma * spread
    else:
        raise ValueError(f"first_centre must be 'median' or 'mean', got {first_centre!r}")
    mean, stdev, n = float(median), float("nan"), 0
    for _ in range(iterations):
        kept = sample[np.abs(sample - centre) <= half_width]
        n = kept.size
        if n == 0:
            return ClippedStats(mean=float("nan"), stdev=float("nan"), n=0, median=float(median))
        mean = float(kept.mean())
        stdev = float(kept.std(ddof=1)) if n > 1 else float("nan")
        centre, half_width = mean, sigma * (stdev if n > 1 else 0.0)
    return ClippedStats(mean=mean, stdev=stdev, n=n, median=float(median))


def sorted_percentiles(
    ordered: np.ndarray, q: Sequence[float], dtype: npt.DTypeLike | None = None
) -> np.ndarray:
    """Percentiles of sorted values, exactly as `numpy.percentile` computes them.

    Parameters
    ----------
    ordered : `numpy.ndarray`
        1-d, finite values in ascending order.
    q : `~collections.abc.Sequence` [`float`]
        Percentiles in [0, 100].
    dtype : `numpy.dtype`-like, optional
        Type the values are in for `numpy.percentile`: the order statistics
        are cast to it before the interpolation (``float64`` gives
        ``numpy.percentile(values.astype(float64), q)``); by default
        ``ordered``'s own, as ``numpy.percentile(values, q)``.

    Returns
    -------
    values : `numpy.ndarray`
        One per percentile: NumPy's ``linear`` method (virtual index
        ``(n - 1) * q / 100``, its floor and the next order statistic, and
        ``numpy.lib``'s ``_lerp`` operations in the same order and types).

    Raises
    ------
    ValueError
        If there are no values.
    """
    n = ordered.size
    if n == 0:
        raise ValueError("No values")
    quantiles = np.true_divide(np.asarray(q, dtype=np.float64), 100)
    virtual = (n - 1) * quantiles
    previous_index = np.floor(virtual)
    next_index = previous_index + 1
    above = virtual >= n - 1
    previous_index[above] = -1
    next_index[above] = -1
    previous_index = previous_index.astype(np.intp)
    next_index = next_index.astype(np.intp)
    previous = ordered[previous_index]
    following = ordered[next_index]
    if dtype is not None:
        previous, following = previous.astype(dtype), following.astype(dtype)
    gamma = np.asarray(virtual - previous_index, dtype=virtual.dtype)
    # numpy.lib._function_base_impl._lerp
    difference = following - previous
    result = np.add(previous, difference * gamma)
    np.subtract(following, difference * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe")
    return result


def median_last_axis(values: np.ndarray) -> np.ndarray:
    """`numpy.median` along the last axis, exactly, from sorted values.

    NumPy sorts with SIMD several times faster than it selects order
    statistics; the result is the same order statistics combined by the same
    arithmetic as `numpy.median`: for an even count the mean of the two
    middle values, computed as `numpy.mean` does (in the input's type for
    ``float32`` and ``float64``, in ``float64`` for integers).

    Parameters
    ----------
    values : `numpy.ndarray`
        Finite values (no NaN: `numpy.median` would propagate them), at least
        one along the last axis.

    Returns
    -------
    medians : `numpy.ndarray`
        ``values.shape[:-1]``; ``float64`` for integer input.
    """
    if values.dtype not in (np.float32, np.float64) and not np.issubdtype(values.dtype, np.integer):
        return np.asarray(np.median(values, axis=-1))
    ordered = np.sort(values, axis=-1)
    count = ordered.shape[-1]
    half = count // 2
    mean_type = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float64)
    if count % 2:
        return ordered[..., half].astype(mean_type)
    middle_sum = np.add(ordered[..., half - 1], ordered[..., half], dtype=mean_type)
    return np.asarray(np.true_divide(middle_sum, 2))


def percentiles(
    values: np.ndarray,
    q: Sequence[float] = DEFAULT_PERCENTILES,
    mask: np.ndarray | None = None,
) -> dict[float, float]:
    """Percentiles of the finite, unmasked values.

    Parameters
    ----------
    values : `numpy.ndarray`
        Values of any shape.
    q : `~collections.abc.Sequence` [`float`], optional
        Percentiles in [0, 100]; default (0, 5, 16, 50, 84, 95, 100).
    mask : `numpy.ndarray`, optional
        `True` excludes a value.

    Returns
    -------
    result : `dict` [`float`, `float`]
        Percentile -> value (NaN when no value is usable).
    """
    data = np.asarray(values)
    good = np.isfinite(data)
    if mask is not None:
        good &= ~mask
    sample = data[good]
    if sample.size == 0:
        return {float(p): float("nan") for p in q}
    # np.percentile(sample, q), from the values sorted once.
    return {
        float(p): float(v) for p, v in zip(q, sorted_percentiles(np.sort(sample, axis=None), q), strict=True)
    }
