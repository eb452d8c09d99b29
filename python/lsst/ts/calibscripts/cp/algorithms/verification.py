"""Calibration verification statistics and tests (DMTN-101, as cp_verify).

Each input exposure is processed with the candidate calibration and the
residual is measured per amplifier with a 5-sigma, 3-iteration clip:

``MEAN``
    clipped mean of the (unmasked) residual;
``NOISE``
    clipped standard deviation;
``CR_NOISE``
    unclipped standard deviation after cosmic rays (detected at 5 x NOISE
    above a smooth background and grown by 2 pixels) are removed.

Tests per amplifier (`True` = pass):

* bias and dark: ``MEAN``: ``|MEAN| < NOISE``; ``NOISE``:
  ``|NOISE - RN| / RN <= 0.05`` with RN the nominal read noise in the
  residual's units; ``CR_NOISE``: ``|NOISE - CR_NOISE| / CR_NOISE <= 0.05``;
  ``PROCESSING`` is added, `False`, when cosmic-ray detection failed.
* flat: ``NOISE``: ``NOISE <= sqrt(MEAN)``; per detector ``SCATTER``:
  standard deviation of the amp means over their mean ``<= 0.05``; per
  exposure, the same for the detector means.

The dictionaries built here are exactly the ``verify<Type>DetStats``,
``verify<Type>ExpStats`` and ``verify<Type>Stats`` datasets, made of plain
`bool`, `float`, `int`, `str`, `list` and `dict` so they round-trip as YAML::

    DetStats = {"AMP": {"C10": {"MEAN": .., "NOISE": .., "CR_NOISE": ..}, ..},
                "METADATA": {..},
                "VERIFY": {"AMP": {"C10": {"MEAN": True, "NOISE": False,
                                            "CR_NOISE": True, "SUCCESS": False}}},
                "SUCCESS": False}
    ExpStats = {"RXX_S00": {"SUCCESS": False, "FAILURES": ["C10 NOISE"]},
                "SUCCESS": False}
    Stats    = {2022092900001: {"SUCCESS": False, "FAILURES": ["RXX_S00 C10 NOISE"]},
                "SUCCESS": False}

Flats add ``"DET": {"MEAN", "SCATTER"}`` and ``VERIFY["DET"]`` to DetStats
and ``"EXP": {"SCATTER"}`` and ``VERIFY["EXP"]`` to ExpStats.

Expected physics: the residual of an input against a combination of N frames
that includes it has noise ``RN * sqrt(1 - 1/N)`` (internal verification),
against an independent combination of M frames ``RN * sqrt(1 + 1/M)``
(external). With N = 3 the NOISE test therefore fails on every amp
(``sqrt(2/3) = 0.82``), with N = 20 it passes (0.975).

A caveat for flats: in electrons, Poisson statistics make
``NOISE**2 = MEAN * (1 + 1/N) + RN**2``, slightly *above* ``MEAN``, so the
``NOISE <= sqrt(MEAN)`` test (as cp_verify writes it) can only pass on
residuals in ADU with a gain above about 1, where ``NOISE = sqrt(MEAN / g)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..camera.geometry import AmpGeometry, DetectorGeometry
from .cosmic_rays import CosmicRayConfig, find_cosmic_rays
from .statistics import sigma_clipped_stats

__all__ = [
    "AmpMeasurement",
    "VerifyConfig",
    "flat_detector_statistics",
    "make_det_stats",
    "measure_amp",
    "merge_detector_stats",
    "merge_exposure_stats",
    "verify_bias_amp",
    "verify_dark_amp",
    "verify_detector",
    "verify_flat_amp",
    "verify_flat_detector",
]

IMAGE_TYPES = ("BIAS", "DARK", "FLAT")


@dataclass(frozen=True)
class VerifyConfig:
    """Verification parameters (cp_verify / DMTN-101 defaults).

    Parameters
    ----------
    sigma : `float`
        Clip of the statistics, sigma (default 5.0).
    iterations : `int`
        Clip iterations (default 3).
    noise_tolerance : `float`
        Allowed fractional difference of NOISE from the read noise (0.05).
    cr_noise_tolerance : `float`
        Allowed fractional difference of NOISE from CR_NOISE (0.05).
    scatter_tolerance : `float`
        Allowed amp-mean scatter / mean per detector for flats (0.05).
    exposure_scatter_tolerance : `float`
        Allowed detector-mean scatter / mean per exposure for flats (0.05).
    cosmic_rays : `CosmicRayConfig`
        Cosmic-ray detection for CR_NOISE (5 x NOISE, grown by 2 pixels).
    """

    sigma: float = 5.0
    iterations: int = 3
    noise_tolerance: float = 0.05
    cr_noise_tolerance: float = 0.05
    scatter_tolerance: float = 0.05
    exposure_scatter_tolerance: float = 0.05
    cosmic_rays: CosmicRayConfig = field(default_factory=CosmicRayConfig)


@dataclass(frozen=True)
class AmpMeasurement:
    """Statistics of one amplifier's residual.

    Attributes
    ----------
    mean : `float`
        ``MEAN``: clipped mean.
    noise : `float`
        ``NOISE``: clipped standard deviation.
    cr_noise : `float`
        ``CR_NOISE``: unclipped standard deviation without cosmic rays.
    n_cosmic_rays : `int`
        Cosmic rays found.
    cr_failed : `bool`
        Cosmic-ray detection failed (the amp fails with PROCESSING).
    """

    mean: float
    noise: float
    cr_noise: float
    n_cosmic_rays: int = 0
    cr_failed: bool = False

    def as_dict(self) -> dict[str, float]:
        """Return the ``AMP`` entry of DetStats: ``{MEAN, NOISE, CR_NOISE}``."""
        return {"MEAN": float(self.mean), "NOISE": float(self.noise), "CR_NOISE": float(self.cr_noise)}


def measure_amp(
    data: np.ndarray, mask: np.ndarray | None = None, config: VerifyConfig | None = None
) -> AmpMeasurement:
    """Measure MEAN, NOISE and CR_NOISE of one amplifier's residual.

    Parameters
    ----------
    data : `numpy.ndarray`
        The amp's residual pixels.
    mask : `numpy.ndarray`, optional
        `True` for pixels to ignore (defects, BAD).
    config : `VerifyConfig`, optional
        Clip and cosmic-ray parameters.

    Returns
    -------
    measurement : `AmpMeasurement`
    """
    config = config or VerifyConfig()
    clipped = sigma_clipped_stats(data, sigma=config.sigma, iterations=config.iterations, mask=mask)
    usable = np.isfinite(data) if mask is None else (np.isfinite(data) & ~mask)
    if clipped.n < 2 or not (clipped.stdev > 0):
        return AmpMeasurement(mean=clipped.mean, noise=clipped.stdev, cr_noise=float("nan"), cr_failed=True)
    cosmic = find_cosmic_rays(
        np.where(usable, data, clipped.mean), clipped.stdev, exclude=~usable, config=config.cosmic_rays
    )
    remaining = data[usable & ~cosmic.mask]
    cr_noise = float(np.std(remaining, ddof=1)) if remaining.size > 1 else float("nan")
    return AmpMeasurement(
        mean=clipped.mean,
        noise=clipped.stdev,
        cr_noise=cr_noise,
        n_cosmic_rays=cosmic.n_cosmic_rays,
        cr_failed=cosmic.failed or not math.isfinite(cr_noise),
    )


def _with_success(tests: dict[str, bool]) -> dict[str, bool]:
    tests["SUCCESS"] = bool(all(tests.values()))
    return tests


def verify_bias_amp(
    measurement: AmpMeasurement, read_noise: float, config: VerifyConfig | None = None
) -> dict[str, bool]:
    """DMTN-101 tests of a bias residual amp.

    Parameters
    ----------
    measurement : `AmpMeasurement`
        The amp's statistics.
    read_noise : `float`
        Nominal read noise in the residual's units.
    config : `VerifyConfig`, optional
        Tolerances.

    Returns
    -------
    tests : `dict` [`str`, `bool`]
        ``MEAN``, ``NOISE``, ``CR_NOISE`` (and ``PROCESSING`` on a cosmic-ray
        failure) and ``SUCCESS``.
    """
    config = config or VerifyConfig()
    if not read_noise > 0:
        raise ValueError(f"Nominal read noise must be positive, got {read_noise}")
    m = measurement
    tests = {
        "MEAN": bool(abs(m.mean) < m.noise),
        "NOISE": bool(abs(m.noise - read_noise) / read_noise <= config.noise_tolerance),
        "CR_NOISE": bool(abs(m.noise - m.cr_noise) / m.cr_noise <= config.cr_noise_tolerance),
    }
    if m.cr_failed:
        tests["PROCESSING"] = False
    return _with_success(tests)


def verify_dark_amp(
    measurement: AmpMeasurement, read_noise: float, config: VerifyConfig | None = None
) -> dict[str, bool]:
    """DMTN-101 tests of a dark residual amp (the same tests as a bias)."""
    return verify_bias_amp(measurement, read_noise, config)


def verify_flat_amp(measurement: AmpMeasurement) -> dict[str, bool]:
    """DMTN-101 test of a flat residual amp: ``NOISE <= sqrt(MEAN)`` and ``SUCCESS``."""
    m = measurement
    passed = bool(m.mean > 0 and m.noise <= math.sqrt(m.mean))
    return _with_success({"NOISE": passed})


def flat_detector_statistics(amp_stats: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Detector statistics of a flat: ``MEAN`` and ``SCATTER`` (std) of the amp means."""
    means = np.array([float(s["MEAN"]) for s in amp_stats.values()])
    return {"MEAN": float(np.mean(means)), "SCATTER": float(np.std(means))}


def verify_flat_detector(
    det_stats: Mapping[str, float], config: VerifyConfig | None = None
) -> dict[str, bool]:
    """Flat detector test ``SCATTER``: amp-mean scatter / mean within tolerance."""
    config = config or VerifyConfig()
    mean, scatter = float(det_stats["MEAN"]), float(det_stats["SCATTER"])
    passed = bool(mean > 0 and scatter / mean <= config.scatter_tolerance)
    return _with_success({"SCATTER": passed})


def make_det_stats(
    amp_stats: Mapping[str, Mapping[str, float]],
    amp_verify: Mapping[str, Mapping[str, bool]],
    metadata: Mapping[str, Any] | None = None,
    det_stats: Mapping[str, float] | None = None,
    det_verify: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """Assemble a ``verify<Type>DetStats`` dictionary.

    Parameters
    ----------
    amp_stats : `~collections.abc.Mapping`
        Amp name -> ``{MEAN, NOISE, CR_NOISE}``.
    amp_verify : `~collections.abc.Mapping`
        Amp name -> test name -> `bool`, including ``SUCCESS``.
    metadata : `~collections.abc.Mapping`, optional
        Anything worth keeping (input exposure, read noise used, ...).
    det_stats, det_verify : `~collections.abc.Mapping`, optional
        Detector-level statistics and tests (flats).

    Returns
    -------
    det_stats : `dict`
        ``{AMP, METADATA, VERIFY: {AMP[, DET]}, [DET,] SUCCESS}``.
    """
    if set(amp_stats) != set(amp_verify):
        raise ValueError("amp_stats and amp_verify must cover the same amps")
    verify: dict[str, Any] = {
        "AMP": {amp: {test: bool(v) for test, v in tests.items()} for amp, tests in amp_verify.items()}
    }
    success = all(bool(tests.get("SUCCESS", all(tests.values()))) for tests in amp_verify.values())
    result: dict[str, Any] = {
        "AMP": {amp: {key: float(value) for key, value in stats.items()} for amp, stats in amp_stats.items()},
        "METADATA": _plain(dict(metadata or {})),
        "VERIFY": verify,
    }
    if det_stats is not None:
        result["DET"] = {key: float(value) for key, value in det_stats.items()}
    if det_verify is not None:
        verify["DET"] = {test: bool(v) for test, v in det_verify.items()}
        success = success and bool(det_verify.get("SUCCESS", all(det_verify.values())))
    result["SUCCESS"] = bool(success)
    return result


def verify_detector(
    residual: np.ndarray,
    geometry: DetectorGeometry,
    image_type: str,
    read_noise: Mapping[str, float] | None = None,
    *,
    mask: np.ndarray | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: VerifyConfig | None = None,
    n_threads: int = 1,
) -> dict[str, Any]:
    """Measure and test every amp of one residual image; return its DetStats.

    Parameters
    ----------
    residual : `numpy.ndarray`
        Assembled residual image (the ``verify<Type>Proc`` pixels).
    geometry : `DetectorGeometry`
        Detector geometry (gives each amp's region).
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    read_noise : `~collections.abc.Mapping` [`str`, `float`], optional
        Nominal read noise per amp in the residual's units (required for
        bias and dark).
    mask : `numpy.ndarray`, optional
        Assembled mask of pixels to ignore.
    metadata : `~collections.abc.Mapping`, optional
        Stored under ``METADATA``.
    config : `VerifyConfig`, optional
        Parameters.
    n_threads : `int`, optional
        Amplifiers measured at once (the result does not depend on it).

    Returns
    -------
    det_stats : `dict`
        The ``verify<Type>DetStats`` structure.
    """
    config = config or VerifyConfig()
    image_type = image_type.upper()
    if image_type not in IMAGE_TYPES:
        raise ValueError(f"Cannot verify image type {image_type!r}; known: {IMAGE_TYPES}")
    if image_type != "FLAT" and read_noise is None:
        raise ValueError(f"{image_type} verification needs the nominal read noise per amp")
    amp_stats: dict[str, dict[str, float]] = {}
    amp_verify: dict[str, dict[str, bool]] = {}

    def measure(amp: AmpGeometry) -> AmpMeasurement:
        amp_mask = None if mask is None else mask[amp.detector_slice]
        return measure_amp(residual[amp.detector_slice], amp_mask, config)

    amps = list(geometry)
    if n_threads > 1:
        # Amplifiers are independent; NumPy and SciPy release the
        # interpreter lock in the heavy parts.
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            measurements = list(pool.map(measure, amps))
    else:
        measurements = [measure(amp) for amp in amps]
    for amp, measurement in zip(amps, measurements, strict=True):
        amp_stats[amp.name] = measurement.as_dict()
        if image_type == "FLAT":
            amp_verify[amp.name] = verify_flat_amp(measurement)
        else:
            assert read_noise is not None
            amp_verify[amp.name] = verify_bias_amp(measurement, read_noise[amp.name], config)
    meta = dict(metadata or {})
    if read_noise is not None:
        meta.setdefault("READ_NOISE", {name: float(value) for name, value in read_noise.items()})
    if image_type == "FLAT":
        det = flat_detector_statistics(amp_stats)
        return make_det_stats(amp_stats, amp_verify, meta, det, verify_flat_detector(det, config))
    return make_det_stats(amp_stats, amp_verify, meta)


def _failures(det_stats: Mapping[str, Any]) -> list[str]:
    """Failed tests of one DetStats: ``"<amp> <test>"`` and detector tests."""
    failures: list[str] = []
    verify = det_stats.get("VERIFY", {})
    for test, passed in verify.get("DET", {}).items():
        if test != "SUCCESS" and not passed:
            failures.append(test)
    for amp, tests in verify.get("AMP", {}).items():
        for test, passed in tests.items():
            if test != "SUCCESS" and not passed:
                failures.append(f"{amp} {test}")
    return failures


def merge_detector_stats(
    det_stats: Mapping[str, Mapping[str, Any]],
    *,
    exposure_scatter: bool = False,
    config: VerifyConfig | None = None,
) -> dict[str, Any]:
    """Merge the DetStats of one exposure into its ``verify<Type>ExpStats``.

    Parameters
    ----------
    det_stats : `~collections.abc.Mapping`
        Detector name (``"RXX_S00"``) -> DetStats.
    exposure_scatter : `bool`, optional
        Add the flat test on the scatter of detector means (``EXP``).
    config : `VerifyConfig`, optional
        Tolerance of that test.

    Returns
    -------
    exp_stats : `dict`
        ``{<detector>: {SUCCESS, FAILURES}, [EXP, VERIFY,] SUCCESS}``.
    """
    config = config or VerifyConfig()
    result: dict[str, Any] = {}
    success = True
    for name, stats in det_stats.items():
        failures = _failures(stats)
        det_success = bool(stats.get("SUCCESS", not failures))
        result[str(name)] = {"SUCCESS": det_success, "FAILURES": failures}
        success = success and det_success
    if exposure_scatter:
        means = np.array([float(s["DET"]["MEAN"]) for s in det_stats.values()])
        mean = float(np.mean(means))
        scatter = float(np.std(means))
        passed = bool(mean > 0 and scatter / mean <= config.exposure_scatter_tolerance)
        result["EXP"] = {"MEAN": mean, "SCATTER": scatter}
        result["VERIFY"] = {"EXP": {"SCATTER": passed, "SUCCESS": passed}}
        success = success and passed
    result["SUCCESS"] = bool(success)
    return result


def merge_exposure_stats(exp_stats: Mapping[int | str, Mapping[str, Any]]) -> dict[Any, Any]:
    """Merge ExpStats of a run into ``verify<Type>Stats``.

    Parameters
    ----------
    exp_stats : `~collections.abc.Mapping`
        Exposure id -> ExpStats.

    Returns
    -------
    stats : `dict`
        ``{<exposure id>: {SUCCESS, FAILURES: ["<detector> <amp> <test>", ...]}, SUCCESS}``;
        exposure-level failures appear as ``"EXPOSURE <test>"``.
    """
    result: dict[Any, Any] = {}
    success = True
    for exposure, stats in exp_stats.items():
        failures: list[str] = []
        for key, value in stats.items():
            if key in ("SUCCESS", "EXP", "VERIFY") or not isinstance(value, Mapping):
                continue
            failures.extend(f"{key} {failure}" for failure in value.get("FAILURES", []))
        for test, passed in stats.get("VERIFY", {}).get("EXP", {}).items():
            if test != "SUCCESS" and not passed:
                failures.append(f"EXPOSURE {test}")
        exp_success = bool(stats.get("SUCCESS", not failures))
        result[exposure] = {"SUCCESS": exp_success, "FAILURES": failures}
        success = success and exp_success
    result["SUCCESS"] = bool(success)
    return result


def _plain(value: Any) -> Any:
    """Convert NumPy scalars and containers to plain Python for YAML."""
    if isinstance(value, Mapping):
        return {(_plain(k) if not isinstance(k, str) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
