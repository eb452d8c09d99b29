"""Photon transfer: flat pairs, single-pair gain and the PTC fit.

Extract (``cpPtcExtract``, one flat pair, per amplifier, in ADU after
overscan subtraction, with ``edge`` pixels masked along every amp edge):

* ``mu1``, ``mu2``: clipped means (5.5 sigma, 3 iterations); ``mu`` their
  average;
* ``diff = (mu2 * I1 - mu1 * I2) / mu`` (scaling first removes the fixed
  pattern and any small flux difference between the two flats) and the
  pair variance ``0.5 * clipped variance of diff`` (same clip);
* ``c = mean((I1 - I2)**2 / (I1 + I2))`` over the pixels kept by the
  ``diff`` clip (so that a cosmic ray in one flat does not bias it);
* with ``s`` the mean serial-overscan noise (ADU) of the two exposures, the
  single-pair gain with the FULL read-noise correction
  ``g = (mu + sqrt(mu**2 - 2*mu*c + 2*s**2)) / (2*c*mu - 2*s**2)``, and
  without correction ``g = 1/c``; the read noise reported is ``s * g`` (e-).

Solve (``ptc``): per amp, over all pairs, the exponential approximation
(Astier et al. 2019)::

    var = (exp(2 * a00 * mu * g) - 1) / (2 * a00 * g**2) + n00 / g**2

fitted by `scipy.optimize.least_squares` from a00 = -2e-6, g = 1.5,
n00 = 25 within a00 in [-1e-4, 0], g in [0.1, 10], n00 in [0, 2000]. Points
past the variance maximum (beyond saturation the variance collapses) are
excluded from the start; then points whose normalised residual exceeds
5 times the residuals' robust scatter are rejected and the fit repeated
until nothing changes. ``ptcTurnoff`` is the highest mean kept;
``noise = sqrt(n00)`` in electrons.

The dataclasses convert to the camelCase attributes of cp_pipe's
``PhotonTransferCurveDataset`` (``gain``, ``noise``, ``rawMeans``,
``rawVars``, ``expTimes``, ``inputExpIdPairs``, ...) with `to_dataset_fields`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from .statistics import sigma_clipped_stats

__all__ = [
    "FlatPair",
    "PairMeasurement",
    "PtcAmpFit",
    "PtcConfig",
    "PtcExtract",
    "PtcSolution",
    "find_flat_pairs",
    "fit_ptc_amp",
    "gain_from_pair",
    "measure_pair",
    "measure_pair_amp",
    "ptc_model",
    "solve_ptc",
]


@dataclass(frozen=True)
class PtcConfig:
    """PTC parameters (cp_pipe defaults).

    Parameters
    ----------
    edge : `int`
        Pixels masked along each amp edge (20).
    sigma : `float`
        Clip of means and of the difference image, sigma (5.5).
    iterations : `int`
        Clip iterations (3).
    pair_time_tolerance : `float`
        Exposure times of a pair may differ by this much, s (0.005).
    initial_parameters : `tuple` [`float`, `float`, `float`]
        Start ``(a00, gain, n00)`` of the fit (-2e-6, 1.5, 25).
    lower_bounds : `tuple` [`float`, `float`, `float`]
        Lower bounds of ``(a00, gain, n00)`` (-1e-4, 0.1, 0).
    upper_bounds : `tuple` [`float`, `float`, `float`]
        Upper bounds (0, 10, 2000).
    outlier_sigma : `float`
        Rejection threshold in units of the residuals' robust scatter (5).
    max_outlier_iterations : `int`
        Maximum fit/reject cycles (10).
    min_points : `int`
        Fewest points a fit accepts (4: three parameters and one dof).
    """

    edge: int = 20
    sigma: float = 5.5
    iterations: int = 3
    pair_time_tolerance: float = 0.005
    initial_parameters: tuple[float, float, float] = (-2e-6, 1.5, 25.0)
    lower_bounds: tuple[float, float, float] = (-1e-4, 0.1, 0.0)
    upper_bounds: tuple[float, float, float] = (0.0, 10.0, 2000.0)
    outlier_sigma: float = 5.0
    max_outlier_iterations: int = 10
    min_points: int = 4


# ---------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FlatPair:
    """Two consecutive flats with equal exposure times.

    Attributes
    ----------
    first, second : `int`
        Exposure ids, in acquisition order; the pair is keyed by ``first``.
    exposure_time : `float`
        Exposure time of the first flat, s.
    """

    first: int
    second: int
    exposure_time: float


def find_flat_pairs(exposures: Sequence[tuple[int, float]], tolerance: float = 0.005) -> list[FlatPair]:
    """Pair flats taken consecutively with equal exposure times.

    Parameters
    ----------
    exposures : `~collections.abc.Sequence` [`tuple` [`int`, `float`]]
        ``(exposure id, exposure time)``; sorted by id here, so any order.
    tolerance : `float`, optional
        Largest exposure-time difference within a pair, s.

    Returns
    -------
    pairs : `list` [`FlatPair`]
        Walking the flats in order, a flat pairs with the next one when
        their times agree; both are then used. A flat that does not match
        its successor is skipped. E.g. times ``[0.1, 0.1, 0.35, 0.35, 0.6,
        0.6, 1, 1.5]`` give three pairs.
    """
    ordered = sorted(exposures, key=lambda item: item[0])
    pairs: list[FlatPair] = []
    i = 0
    while i + 1 < len(ordered):
        (id1, t1), (id2, t2) = ordered[i], ordered[i + 1]
        if abs(t1 - t2) <= tolerance:
            pairs.append(FlatPair(first=int(id1), second=int(id2), exposure_time=float(t1)))
            i += 2
        else:
            i += 1
    return pairs


# ---------------------------------------------------------------------------
# Extract
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PairMeasurement:
    """Measurements of one amp of one flat pair (ADU unless stated).

    Attributes
    ----------
    mu1, mu2 : `float`
        Clipped means of the two flats.
    mean : `float`
        ``(mu1 + mu2) / 2``.
    variance : `float`
        Half the clipped variance of the scaled difference image, ADU^2.
    c : `float`
        ``mean((I1 - I2)**2 / (I1 + I2))``, ADU.
    overscan_noise : `float`
        Mean serial-overscan noise ``s`` of the two exposures.
    gain : `float`
        Single-pair gain with the FULL read-noise correction, e-/ADU.
    gain_uncorrected : `float`
        ``1 / c``, e-/ADU.
    noise : `float`
        Read noise ``s * gain``, electrons.
    n_pixels : `int`
        Pixels used in the difference image.
    """

    mu1: float
    mu2: float
    mean: float
    variance: float
    c: float
    overscan_noise: float
    gain: float
    gain_uncorrected: float
    noise: float
    n_pixels: int


def gain_from_pair(mu: float, c: float, overscan_noise: float) -> float:
    """Single-pair gain with the FULL read-noise correction.

    ``g = (mu + sqrt(mu**2 - 2*mu*c + 2*s**2)) / (2*c*mu - 2*s**2)``;
    NaN when the expression is undefined.
    """
    s2 = overscan_noise**2
    radicand = mu * mu - 2.0 * mu * c + 2.0 * s2
    denominator = 2.0 * c * mu - 2.0 * s2
    if not (radicand >= 0 and denominator > 0):
        return float("nan")
    return float((mu + math.sqrt(radicand)) / denominator)


def _edge_mask(shape: tuple[int, ...], edge: int) -> np.ndarray:
    ny, nx = shape
    if 2 * edge >= min(ny, nx):
        raise ValueError(f"An edge of {edge} pixels leaves nothing of a {nx} x {ny} amplifier")
    mask = np.ones((ny, nx), dtype=bool)
    mask[edge : ny - edge, edge : nx - edge] = False
    return mask


def measure_pair_amp(
    image1: np.ndarray,
    image2: np.ndarray,
    overscan_noise1: float,
    overscan_noise2: float,
    mask: np.ndarray | None = None,
    config: PtcConfig | None = None,
) -> PairMeasurement:
    """Measure one amplifier of a flat pair.

    Parameters
    ----------
    image1, image2 : `numpy.ndarray`
        The amp's overscan-corrected data (ADU) in the two flats.
    overscan_noise1, overscan_noise2 : `float`
        Serial-overscan residual noise of each exposure (ADU), as ISR
        records it.
    mask : `numpy.ndarray`, optional
        Extra pixels to ignore (defects); the edges are always masked.
    config : `PtcConfig`, optional
        Edge width and clipping.

    Returns
    -------
    measurement : `PairMeasurement`
    """
    config = config or PtcConfig()
    if image1.shape != image2.shape:
        raise ValueError(f"Pair images differ in shape: {image1.shape} vs {image2.shape}")
    excluded = _edge_mask(image1.shape, config.edge)
    if mask is not None:
        excluded |= mask
    i1 = image1.astype(np.float64)
    i2 = image2.astype(np.float64)
    stats1 = sigma_clipped_stats(i1, config.sigma, config.iterations, mask=excluded)
    stats2 = sigma_clipped_stats(i2, config.sigma, config.iterations, mask=excluded)
    mu1, mu2 = stats1.mean, stats2.mean
    mu = 0.5 * (mu1 + mu2)
    s = 0.5 * (overscan_noise1 + overscan_noise2)
    nan = float("nan")
    if not (mu > 0):
        return PairMeasurement(mu1, mu2, mu, nan, nan, s, nan, nan, nan, 0)

    diff = (mu2 * i1 - mu1 * i2) / mu
    diff_stats = sigma_clipped_stats(diff, config.sigma, config.iterations, mask=excluded)
    variance = 0.5 * diff_stats.variance
    # The pixels the difference clip kept: also those used for c.
    kept = ~excluded & (np.abs(diff - diff_stats.mean) <= config.sigma * diff_stats.stdev)
    total = i1[kept] + i2[kept]
    usable = total > 0
    delta = (i1[kept] - i2[kept])[usable]
    c = float(np.mean(delta * delta / total[usable])) if usable.any() else nan
    gain = gain_from_pair(mu, c, s)
    return PairMeasurement(
        mu1=float(mu1),
        mu2=float(mu2),
        mean=float(mu),
        variance=float(variance),
        c=c,
        overscan_noise=float(s),
        gain=gain,
        gain_uncorrected=1.0 / c if c > 0 else nan,
        noise=float(s * gain),
        n_pixels=int(diff_stats.n),
    )


@dataclass
class PtcExtract:
    """The measurements of one flat pair on one detector (``cpPtcExtract``).

    Attributes
    ----------
    pair : `FlatPair`
        Exposure ids and time.
    amps : `dict` [`str`, `PairMeasurement`]
        Per amplifier.
    """

    pair: FlatPair
    amps: dict[str, PairMeasurement] = field(default_factory=dict)

    @property
    def gain(self) -> dict[str, float]:
        """Single-pair gain (FULL correction) per amp, e-/ADU."""
        return {amp: m.gain for amp, m in self.amps.items()}

    @property
    def noise(self) -> dict[str, float]:
        """Read noise per amp, electrons."""
        return {amp: m.noise for amp, m in self.amps.items()}

    def to_dataset_fields(self) -> dict[str, Any]:
        """Fields of a ``PhotonTransferCurveDataset`` extract, plain Python."""
        amps = list(self.amps)
        pair = (self.pair.first, self.pair.second)
        return {
            "ampNames": amps,
            "inputExpIdPairs": {a: [pair] for a in amps},
            "expTimes": {a: [self.pair.exposure_time] for a in amps},
            "rawMeans": {a: [self.amps[a].mean] for a in amps},
            "rawVars": {a: [self.amps[a].variance] for a in amps},
            "pairGains": {a: [self.amps[a].gain] for a in amps},
            "overscanNoise": {a: [self.amps[a].overscan_noise] for a in amps},
            "expIdMask": {a: [math.isfinite(self.amps[a].variance)] for a in amps},
            "gain": self.gain,
            "noise": self.noise,
        }


def measure_pair(
    pair: FlatPair,
    images1: Mapping[str, np.ndarray],
    images2: Mapping[str, np.ndarray],
    overscan_noise1: Mapping[str, float],
    overscan_noise2: Mapping[str, float],
    masks: Mapping[str, np.ndarray] | None = None,
    config: PtcConfig | None = None,
) -> PtcExtract:
    """Measure every amplifier of a flat pair.

    Parameters
    ----------
    pair : `FlatPair`
        The pair.
    images1, images2 : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Per-amp overscan-corrected data (ADU) of the two flats.
    overscan_noise1, overscan_noise2 : `~collections.abc.Mapping` [`str`, `float`]
        Per-amp serial-overscan noise (ADU) of each exposure.
    masks : `~collections.abc.Mapping` [`str`, `numpy.ndarray`], optional
        Per-amp pixels to ignore.
    config : `PtcConfig`, optional
        Parameters.

    Returns
    -------
    extract : `PtcExtract`
    """
    result = PtcExtract(pair=pair)
    for amp, image1 in images1.items():
        if amp not in images2:
            raise ValueError(f"Amp {amp} missing from the second flat {pair.second}")
        result.amps[amp] = measure_pair_amp(
            image1,
            images2[amp],
            overscan_noise1[amp],
            overscan_noise2[amp],
            None if masks is None else masks.get(amp),
            config,
        )
    return result


# ---------------------------------------------------------------------------
# Solve
# ---------------------------------------------------------------------------
def ptc_model(mean: np.ndarray, a00: float, gain: float, n00: float) -> np.ndarray:
    """Exponential approximation of the PTC: variance (ADU^2) at mean (ADU).

    ``(exp(2*a00*mu*g) - 1) / (2*a00*g**2) + n00/g**2``; the limit
    ``mu/g + n00/g**2`` at ``a00 = 0``.
    """
    mu = np.asarray(mean, dtype=np.float64)
    x = 2.0 * a00 * mu * gain
    # expm1(x)/x -> 1 as a00 -> 0: the Poisson line, without dividing by 0.
    shape = np.where(np.abs(x) > 1e-12, np.expm1(x) / np.where(x == 0, 1.0, x), 1.0 + x / 2.0)
    return mu * shape / gain + n00 / gain**2


@dataclass(frozen=True)
class PtcAmpFit:
    """PTC fit of one amplifier.

    Attributes
    ----------
    gain, gain_err : `float`
        Gain and its uncertainty, e-/ADU.
    noise, noise_err : `float`
        Read noise ``sqrt(n00)`` and its uncertainty, electrons.
    a00 : `float`
        Brighter-fatter coefficient, 1/e-.
    n00 : `float`
        Noise term, e^2.
    turnoff : `float`
        Highest mean kept by the fit, ADU.
    chi2 : `float`
        Reduced chi^2 of the final fit.
    kept : `tuple` [`bool`, ...]
        Which input points the fit kept, in input order.
    status : `str`
        ``"OK"`` or why the fit failed (then the numbers are NaN).
    """

    gain: float
    gain_err: float
    noise: float
    noise_err: float
    a00: float
    n00: float
    turnoff: float
    chi2: float
    kept: tuple[bool, ...]
    status: str = "OK"

    @classmethod
    def failed(cls, reason: str, n_points: int) -> PtcAmpFit:
        """Return a NaN result carrying the reason."""
        nan = float("nan")
        return cls(nan, nan, nan, nan, nan, nan, nan, nan, tuple(False for _ in range(n_points)), reason)


def fit_ptc_amp(
    means: npt.ArrayLike,
    variances: npt.ArrayLike,
    n_pixels: npt.ArrayLike | None = None,
    config: PtcConfig | None = None,
) -> PtcAmpFit:
    """Fit the exponential PTC model to one amplifier's points.

    Parameters
    ----------
    means, variances : array-like of `float`
        Pair means (ADU) and variances (ADU^2).
    n_pixels : array-like of `int`, optional
        Pixels behind each variance; with them the residuals are weighted by
        the variance's statistical error ``var * sqrt(2 / n)``, otherwise by
        ``var`` (relative residuals).
    config : `PtcConfig`, optional
        Start values, bounds, rejection.

    Returns
    -------
    fit : `PtcAmpFit`
    """
    config = config or PtcConfig()
    mu = np.asarray(means, dtype=np.float64)
    var = np.asarray(variances, dtype=np.float64)
    if mu.shape != var.shape:
        raise ValueError(f"{mu.size} means but {var.size} variances")
    n = mu.size
    good = np.isfinite(mu) & np.isfinite(var) & (mu > 0) & (var > 0)
    if good.sum() < config.min_points:
        return PtcAmpFit.failed(f"only {int(good.sum())} usable points, need {config.min_points}", n)
    # Beyond saturation the variance collapses: drop everything past the
    # point of maximum variance before fitting.
    peak_mean = mu[good][np.argmax(var[good])]
    good &= mu <= peak_mean
    if n_pixels is not None:
        errors = var * np.sqrt(2.0 / np.maximum(np.asarray(n_pixels, dtype=np.float64), 1.0))
    else:
        errors = var.copy()

    def residuals(params: np.ndarray, keep: np.ndarray) -> np.ndarray:
        return (var[keep] - ptc_model(mu[keep], *params)) / errors[keep]

    params = np.array(config.initial_parameters, dtype=np.float64)
    kept = good.copy()
    result = None
    for _ in range(config.max_outlier_iterations):
        if kept.sum() < config.min_points:
            return PtcAmpFit.failed(f"only {int(kept.sum())} points left after rejection", n)
        result = least_squares(
            residuals,
            params,
            args=(kept,),
            bounds=(config.lower_bounds, config.upper_bounds),
            x_scale=(1e-6, 1.0, 10.0),
        )
        params = result.x
        normalised = np.full(n, np.inf)
        normalised[good] = (var[good] - ptc_model(mu[good], *params)) / errors[good]
        # Robust scatter of the kept residuals (MAD -> sigma).
        spread = 1.4826 * np.median(np.abs(normalised[kept] - np.median(normalised[kept])))
        spread = spread if spread > 0 else float(np.std(normalised[kept])) or 1.0
        new_kept = good & (np.abs(normalised) <= config.outlier_sigma * spread)
        if np.array_equal(new_kept, kept):
            break
        kept = new_kept
    assert result is not None
    a00, gain, n00 = (float(p) for p in params)
    dof = max(int(kept.sum()) - 3, 1)
    chi2 = float(np.sum(residuals(params, kept) ** 2) / dof)
    try:
        covariance = np.linalg.inv(result.jac.T @ result.jac) * chi2
        errs = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    except np.linalg.LinAlgError:
        errs = np.full(3, np.nan)
    noise = math.sqrt(n00) if n00 > 0 else 0.0
    noise_err = float(errs[2] / (2.0 * noise)) if noise > 0 else float("nan")
    return PtcAmpFit(
        gain=gain,
        gain_err=float(errs[1]),
        noise=noise,
        noise_err=noise_err,
        a00=a00,
        n00=n00,
        turnoff=float(mu[kept].max()),
        chi2=chi2,
        kept=tuple(bool(k) for k in kept),
        status="OK" if result.success else f"least_squares: {result.message}",
    )


@dataclass
class PtcSolution:
    """Per-amp PTC fits of one detector (``ptc``).

    Attributes
    ----------
    fits : `dict` [`str`, `PtcAmpFit`]
        Per amplifier.
    means, variances : `dict` [`str`, `list` [`float`]]
        The points fitted (ADU, ADU^2), per amp.
    exposure_times : `dict` [`str`, `list` [`float`]]
        Exposure time of each point, per amp.
    exposure_pairs : `dict` [`str`, `list` [`tuple` [`int`, `int`]]]
        Exposure ids of each point, per amp.
    """

    fits: dict[str, PtcAmpFit] = field(default_factory=dict)
    means: dict[str, list[float]] = field(default_factory=dict)
    variances: dict[str, list[float]] = field(default_factory=dict)
    exposure_times: dict[str, list[float]] = field(default_factory=dict)
    exposure_pairs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def gain(self) -> dict[str, float]:
        """Fitted gain per amp, e-/ADU."""
        return {amp: f.gain for amp, f in self.fits.items()}

    @property
    def noise(self) -> dict[str, float]:
        """Fitted read noise per amp, electrons."""
        return {amp: f.noise for amp, f in self.fits.items()}

    def to_dataset_fields(self) -> dict[str, Any]:
        """Fields of a fitted ``PhotonTransferCurveDataset``, plain Python."""
        fits = self.fits
        return {
            "ampNames": list(fits),
            "inputExpIdPairs": {a: [tuple(p) for p in self.exposure_pairs.get(a, [])] for a in fits},
            "expTimes": {a: list(self.exposure_times.get(a, [])) for a in fits},
            "rawMeans": {a: list(self.means[a]) for a in fits},
            "rawVars": {a: list(self.variances[a]) for a in fits},
            "expIdMask": {a: list(f.kept) for a, f in fits.items()},
            "gain": {a: f.gain for a, f in fits.items()},
            "gainErr": {a: f.gain_err for a, f in fits.items()},
            "noise": {a: f.noise for a, f in fits.items()},
            "noiseErr": {a: f.noise_err for a, f in fits.items()},
            "ptcFitPars": {a: [f.a00, f.gain, f.n00] for a, f in fits.items()},
            "ptcFitChiSq": {a: f.chi2 for a, f in fits.items()},
            "ptcTurnoff": {a: f.turnoff for a, f in fits.items()},
            "fitStatus": {a: f.status for a, f in fits.items()},
            "badAmps": [a for a, f in fits.items() if f.status != "OK"],
        }


def solve_ptc(extracts: Sequence[PtcExtract], config: PtcConfig | None = None) -> PtcSolution:
    """Fit the PTC of one detector from its pair extracts.

    Parameters
    ----------
    extracts : `~collections.abc.Sequence` [`PtcExtract`]
        One per flat pair.
    config : `PtcConfig`, optional
        Fit parameters.

    Returns
    -------
    solution : `PtcSolution`
        Points sorted by mean, and the fit of every amp.
    """
    if not extracts:
        raise ValueError("Cannot solve a PTC without flat pairs")
    solution = PtcSolution()
    amps = list(extracts[0].amps)
    for amp in amps:
        rows = sorted(
            ((e.amps[amp], e.pair) for e in extracts if amp in e.amps),
            key=lambda row: row[0].mean if math.isfinite(row[0].mean) else math.inf,
        )
        solution.means[amp] = [m.mean for m, _ in rows]
        solution.variances[amp] = [m.variance for m, _ in rows]
        solution.exposure_times[amp] = [p.exposure_time for _, p in rows]
        solution.exposure_pairs[amp] = [(p.first, p.second) for _, p in rows]
        solution.fits[amp] = fit_ptc_amp(
            solution.means[amp], solution.variances[amp], [m.n_pixels for m, _ in rows], config
        )
    return solution
