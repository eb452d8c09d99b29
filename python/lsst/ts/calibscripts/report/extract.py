"""What each section of the report shows, read from the Butler (no HTML, no figures).

Every function takes a `~lsst.daf.butler.Butler` and collections, reads the
datasets the pipelines wrote, and returns plain dataclasses of numbers and
names:

* `extract_verification`: each cp_verify test per exposure, detector and
  amplifier with its value, the quantity tested, its limit and the
  result (``verify<Type>DetStats``, ``verify<Type>ExpStats``), and the
  majority rule's numbers and verdict as the script reports them
  (``verify<Type>Stats``);
* `extract_gains`: the gain of each flat pair, detector and amplifier
  (``cpPtcExtract``), with the simulator's true gain when there is one;
* `extract_ptc`: the photon transfer curve of each detector and amplifier
  with the fitted model (``ptc``);
* `extract_images`: the combined calibrations, one ``verify<Type>Proc`` per
  image type and the defects, binned for drawing;
* `extract_history`: gain and read noise per amplifier, bias level and dark
  current per detector, over every certified calibration (and every gain
  from flat pairs) in the repository, in time order.
"""

from __future__ import annotations

__all__ = [
    "SIMULATED_RAW_DIR",
    "CalibrationImage",
    "GainRow",
    "HistoryPoint",
    "PtcAmp",
    "PtcDetector",
    "ReportData",
    "TestRow",
    "VerificationSummary",
    "bin_image",
    "extract_gains",
    "extract_history",
    "extract_images",
    "extract_ptc",
    "extract_report",
    "extract_verification",
    "is_simulated",
    "true_gains",
]

import dataclasses
import datetime
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from lsst.daf.butler import Butler, CollectionType, DatasetRef
from lsst.images import Box

from ..calibrations.verification_report import verdict_message
from ..calibrations.verification_rule import VerificationOutcome, apply_majority_rule
from ..cp.algorithms.defects import table_to_boxes
from ..cp.algorithms.ptc import ptc_model
from ..cp.algorithms.verification import VerifyConfig
from ..cp.camera.description import InstrumentDescription
from ..cp.camera.geometry import Box as PixelBox
from .sources import GAIN_DATASET_TYPE, RunCollections, output_run, verification_stats_type

#: Called with a short description of what is being read.
Progress = Callable[[str], None]

#: Default of ``number_verification_tests_threshold_<type>`` (the scripts' schema).
DEFAULT_THRESHOLD = 8

#: Largest side (pixels) of a binned image.
DEFAULT_MAX_SIZE = 400

#: Side (pixels) of the central cut-out that the history reads of each calibration.
HISTORY_CUTOUT = 256


def _quiet(message: str) -> None:
    """Progress callback that says nothing."""


# --- verification -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TestRow:
    """One cp_verify test of one exposure, detector and amplifier.

    Attributes
    ----------
    exposure : `int`
        Exposure id.
    detector : `int`
        Detector id (-1 for an exposure-level test).
    detector_name : `str`
        Detector full name (``RXX_S00``; blank for an exposure-level test).
    amp : `str`
        Amplifier (blank for a detector- or exposure-level test).
    test : `str`
        ``MEAN``, ``NOISE``, ``CR_NOISE``, ``SCATTER``, ``PROCESSING``.
    value : `float`
        The statistic measured (ADU, or electrons if the residual is).
    tested : `float`
        The quantity the test compares with its limit.
    limit : `float`
        The limit.
    criterion : `str`
        How they are compared, in words (``|NOISE - RN| / RN <= 0.05``).
    passed : `bool`
        The test's result, as the pipeline recorded it.
    """

    exposure: int
    detector: int
    detector_name: str
    amp: str
    test: str
    value: float
    tested: float
    limit: float
    criterion: str
    passed: bool


@dataclasses.dataclass
class VerificationSummary:
    """The verification of one image type.

    Attributes
    ----------
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    collection : `str`
        Verification collection.
    generation_collection : `str` or None
        Collection of the calibration verified, if the run made it
        (internal verification); None for external verification.
    rows : `list` [`TestRow`]
        Every test, by exposure, detector, amplifier.
    outcome : `VerificationOutcome`
        The majority rule's numbers.
    verdict : `str`
        The sentence the script writes ("BIAS calibration passed ...").
    threshold_option : `str`
        The script option that sets the threshold.
    detectors : `list` [`str`]
        Detectors verified.
    units : `str`
        Units of the residuals (``adu``).
    """

    image_type: str
    collection: str
    generation_collection: str | None
    rows: list[TestRow]
    outcome: VerificationOutcome
    verdict: str
    threshold_option: str
    detectors: list[str]
    units: str = "adu"

    @property
    def exposures(self) -> list[int]:
        """Exposures verified, in order."""
        return sorted(self.outcome.failures)

    @property
    def failed_rows(self) -> list[TestRow]:
        """The tests that failed."""
        return [row for row in self.rows if not row.passed]

    def failed_tests(self, exposure: int) -> int:
        """Return the number of failed tests of an exposure."""
        return len(self.outcome.failures.get(exposure, []))


def _config(butler: Butler, name: str, collection: str) -> Any:
    """Return a task's configuration as the job wrote it, or None."""
    try:
        return butler.get(f"{name}_config", collections=[collection])
    except Exception:
        return None


def _tolerances(butler: Butler, image_type: str, collection: str) -> VerifyConfig:
    """Return the tolerances the verification job used (its task configuration), else cp_verify's."""
    defaults = VerifyConfig()
    label = f"verify{image_type.capitalize()}"
    # The statistics are measured by the ISR task of the job (verify<Type>Isr), or, in
    # repositories made before it measured them, by a task of their own (verify<Type>Det).
    det = _config(butler, f"{label}Isr", collection)
    if not hasattr(det, "noiseTolerance"):
        det = _config(butler, f"{label}Det", collection)
    exp = _config(butler, f"{label}Exp", collection)
    return dataclasses.replace(
        defaults,
        noise_tolerance=float(getattr(det, "noiseTolerance", defaults.noise_tolerance)),
        cr_noise_tolerance=float(getattr(det, "crNoiseTolerance", defaults.cr_noise_tolerance)),
        scatter_tolerance=float(getattr(det, "scatterTolerance", defaults.scatter_tolerance)),
        exposure_scatter_tolerance=float(
            getattr(exp, "exposureScatterTolerance", defaults.exposure_scatter_tolerance)
        ),
    )


def _amp_rows(
    exposure: int,
    detector: int,
    detector_name: str,
    image_type: str,
    det_stats: Mapping[str, Any],
    tolerances: VerifyConfig,
) -> list[TestRow]:
    """Return the tests of one DetStats (see `lsst.ts.calibscripts.cp.algorithms.verification`)."""
    rows = []
    verify = det_stats.get("VERIFY", {})
    read_noise = det_stats.get("METADATA", {}).get("READ_NOISE", {})
    nan = math.nan
    for amp, tests in verify.get("AMP", {}).items():
        stats = det_stats.get("AMP", {}).get(amp, {})
        mean = float(stats.get("MEAN", nan))
        noise = float(stats.get("NOISE", nan))
        cr_noise = float(stats.get("CR_NOISE", nan))
        for test, passed in tests.items():
            if test == "SUCCESS":
                continue
            if test == "MEAN":
                values = (mean, abs(mean), noise, "|MEAN| < NOISE")
            elif test == "NOISE" and image_type == "FLAT":
                values = (noise, noise, math.sqrt(mean) if mean > 0 else nan, "NOISE <= sqrt(MEAN)")
            elif test == "NOISE":
                rn = float(read_noise.get(amp, nan))
                values = (
                    noise,
                    abs(noise - rn) / rn if rn > 0 else nan,
                    tolerances.noise_tolerance,
                    f"|NOISE - RN| / RN <= {tolerances.noise_tolerance:g} (RN {rn:.3f})",
                )
            elif test == "CR_NOISE":
                values = (
                    cr_noise,
                    abs(noise - cr_noise) / cr_noise if cr_noise > 0 else nan,
                    tolerances.cr_noise_tolerance,
                    f"|NOISE - CR_NOISE| / CR_NOISE <= {tolerances.cr_noise_tolerance:g}",
                )
            elif test == "PROCESSING":
                values = (nan, nan, nan, "cosmic-ray detection succeeded")
            else:
                values = (nan, nan, nan, test)
            rows.append(
                TestRow(exposure, detector, detector_name, str(amp), str(test), *values, bool(passed))
            )
    det = det_stats.get("DET", {})
    for test, passed in verify.get("DET", {}).items():
        if test == "SUCCESS":
            continue
        mean = float(det.get("MEAN", nan))
        scatter = float(det.get("SCATTER", nan))
        rows.append(
            TestRow(
                exposure,
                detector,
                detector_name,
                "",
                str(test),
                scatter,
                scatter / mean if mean > 0 else nan,
                tolerances.scatter_tolerance,
                f"amp means: SCATTER / MEAN <= {tolerances.scatter_tolerance:g}",
                bool(passed),
            )
        )
    return rows


def _exposure_rows(exposure: int, exp_stats: Mapping[str, Any], tolerances: VerifyConfig) -> list[TestRow]:
    rows = []
    nan = math.nan
    exp = exp_stats.get("EXP", {})
    for test, passed in exp_stats.get("VERIFY", {}).get("EXP", {}).items():
        if test == "SUCCESS":
            continue
        mean = float(exp.get("MEAN", nan))
        scatter = float(exp.get("SCATTER", nan))
        rows.append(
            TestRow(
                exposure,
                -1,
                "",
                "",
                str(test),
                scatter,
                scatter / mean if mean > 0 else nan,
                tolerances.exposure_scatter_tolerance,
                f"detector means: SCATTER / MEAN <= {tolerances.exposure_scatter_tolerance:g}",
                bool(passed),
            )
        )
    return rows


def extract_verification(
    butler: Butler,
    image_type: str,
    collection: str,
    *,
    generation_collection: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    progress: Progress = _quiet,
) -> VerificationSummary:
    """Read the verification of one image type.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    image_type : `str`
        ``BIAS``, ``DARK`` or ``FLAT``.
    collection : `str`
        Verification collection (the job's output collection).
    generation_collection : `str`, optional
        The collection of the calibration verified, if the run made it.
    threshold : `int`, optional
        ``number_verification_tests_threshold_<type>`` of the run.
    progress : callable, optional
        Told what is being read.

    Returns
    -------
    summary : `VerificationSummary`

    Raises
    ------
    LookupError
        If the collection holds no ``verify<Type>Stats``.
    """
    image_type = image_type.upper()
    label = f"verify{image_type.capitalize()}"
    run = output_run(butler, collection)
    stats_refs = butler.query_datasets(verification_stats_type(image_type), collections=run, explain=False)
    if not stats_refs:
        raise LookupError(f"{collection} holds no {verification_stats_type(image_type)}.")
    stats = dict(butler.get(stats_refs[0]))
    tolerances = _tolerances(butler, image_type, run)
    det_refs = sorted(
        butler.query_datasets(
            f"{label}DetStats", collections=run, explain=False, with_dimension_records=True
        ),
        key=lambda ref: (int(ref.dataId["exposure"]), int(ref.dataId["detector"])),
    )
    progress(f"Reading the {image_type} verification: {len(det_refs)} exposure-detector statistics")
    rows: list[TestRow] = []
    detectors: dict[int, str] = {}
    units = "adu"
    for ref in det_refs:
        det_stats = butler.get(ref)
        exposure, detector = int(ref.dataId["exposure"]), int(ref.dataId["detector"])
        name = str(det_stats.get("METADATA", {}).get("DET_NAME") or _detector_name(ref))
        units = str(det_stats.get("METADATA", {}).get("UNITS") or units)
        detectors[detector] = name
        rows.extend(_amp_rows(exposure, detector, name, image_type, det_stats, tolerances))
    if image_type == "FLAT":
        for ref in butler.query_datasets(f"{label}ExpStats", collections=run, explain=False):
            rows.extend(_exposure_rows(int(ref.dataId["exposure"]), butler.get(ref), tolerances))
    rows.sort(key=lambda row: (row.exposure, row.detector, row.amp, row.test))
    outcome = apply_majority_rule(stats, threshold, max(len(detectors), 1))
    return VerificationSummary(
        image_type=image_type,
        collection=collection,
        generation_collection=generation_collection,
        rows=rows,
        outcome=outcome,
        verdict=verdict_message(image_type, outcome, will_certify=generation_collection is not None),
        threshold_option=f"number_verification_tests_threshold_{image_type.lower()}",
        detectors=[detectors[d] for d in sorted(detectors)],
        units=units,
    )


# --- gains from flat pairs ----------------------------------------------------------


def true_gains(instrument: InstrumentDescription) -> dict[int, dict[str, float]]:
    """Return the simulator's true gain of every detector and amplifier (e-/ADU).

    The simulated camera uses the camera description's nominal gains as its
    truth (`lsst.ts.calibscripts.simulator.camera_model.CameraModel`).
    """
    return {detector.id: dict(detector.gains) for detector in instrument.detectors}


@dataclasses.dataclass(frozen=True)
class GainRow:
    """The gain of one flat pair, detector and amplifier.

    Attributes
    ----------
    collection : `str`
        Where it was measured.
    exposures : `tuple` [`int`, `int`]
        The pair.
    exposure_time : `float`
        Exposure time of the pair (s).
    detector : `int`
        Detector id.
    detector_name : `str`
        Detector full name.
    amp : `str`
        Amplifier.
    mean : `float`
        Mean signal of the pair (ADU).
    gain : `float`
        Single-pair gain (e-/ADU).
    noise : `float`
        Read noise (e-): overscan noise times the gain.
    truth : `float` or None
        The simulator's true gain, when the data came from the simulator.
    """

    collection: str
    exposures: tuple[int, int]
    exposure_time: float
    detector: int
    detector_name: str
    amp: str
    mean: float
    gain: float
    noise: float
    truth: float | None = None

    @property
    def error_percent(self) -> float | None:
        """``100 (gain - truth) / truth``, or None without a truth."""
        if self.truth is None or not math.isfinite(self.gain):
            return None
        return 100.0 * (self.gain - self.truth) / self.truth


def extract_gains(
    butler: Butler,
    collections: Sequence[str],
    *,
    truth: Mapping[int, Mapping[str, float]] | None = None,
    progress: Progress = _quiet,
) -> list[GainRow]:
    """Read the gains from flat pairs (``cpPtcExtract``) of some collections.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    collections : sequence of `str`
        Collections of gain or PTC jobs.
    truth : mapping, optional
        True gains by detector id and amplifier (see `true_gains`).
    progress : callable, optional
        Told what is being read.

    Returns
    -------
    rows : `list` [`GainRow`]
        By collection, pair, detector and amplifier (amplifiers in readout
        order).
    """
    rows = []
    for collection in collections:
        refs = butler.query_datasets(
            GAIN_DATASET_TYPE, collections=output_run(butler, collection), explain=False
        )
        progress(f"Reading gains from {len(refs)} flat-pair measurements in {collection}")
        for ref in sorted(refs, key=lambda r: (int(r.dataId["exposure"]), int(r.dataId["detector"]))):
            extract = butler.get(ref)
            detector = int(extract.detector)
            for amp in extract.ampNames:
                pairs = extract.inputExpIdPairs.get(amp) or [(int(ref.dataId["exposure"]), 0)]
                means = extract.rawMeans.get(amp) or [math.nan]
                times = extract.expTimes.get(amp) or [math.nan]
                expected = (truth or {}).get(detector, {}).get(amp)
                rows.append(
                    GainRow(
                        collection=collection,
                        exposures=(int(pairs[0][0]), int(pairs[0][1])),
                        exposure_time=float(times[0]),
                        detector=detector,
                        detector_name=extract.detectorName,
                        amp=amp,
                        mean=float(means[0]),
                        gain=float(extract.gain.get(amp, math.nan)),
                        noise=float(extract.noise.get(amp, math.nan)),
                        truth=None if expected is None else float(expected),
                    )
                )
    return rows


# --- photon transfer curve ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PtcAmp:
    """The photon transfer curve of one amplifier and its fit.

    Attributes
    ----------
    amp : `str`
        Amplifier.
    means, variances : `numpy.ndarray`
        Mean (ADU) and variance (ADU^2) of each flat pair, by mean.
    kept : `numpy.ndarray`
        Whether the fit used each pair.
    gain, gain_error : `float`
        Fitted gain and its uncertainty (e-/ADU).
    noise, noise_error : `float`
        Fitted read noise and its uncertainty (e-).
    a00 : `float`
        Fitted brighter-fatter coefficient (1/e-).
    turnoff : `float`
        Highest mean kept (ADU).
    chi2 : `float`
        Reduced chi^2 of the fit.
    status : `str`
        ``OK`` or why the fit failed.
    truth : `float` or None
        The simulator's true gain, if known.
    """

    amp: str
    means: np.ndarray
    variances: np.ndarray
    kept: np.ndarray
    gain: float
    gain_error: float
    noise: float
    noise_error: float
    a00: float
    turnoff: float
    chi2: float
    status: str
    truth: float | None = None

    @property
    def fitted(self) -> bool:
        """Did the fit succeed?"""
        return self.status == "OK" and math.isfinite(self.gain)

    def model(self, means: np.ndarray) -> np.ndarray:
        """Return the fitted variance at some means (ADU^2); NaN if the fit failed."""
        if not self.fitted:
            return np.full(np.shape(means), np.nan)
        # noise = sqrt(n00), in electrons.
        return ptc_model(np.asarray(means, dtype=float), self.a00, self.gain, self.noise**2)

    @property
    def residuals(self) -> np.ndarray:
        """``(variance - model) / model`` of each pair."""
        model = self.model(self.means)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.variances - model) / model


@dataclasses.dataclass(frozen=True)
class PtcDetector:
    """The photon transfer curves of one detector.

    Attributes
    ----------
    collection : `str`
        The PTC job's collection.
    detector : `int`
        Detector id.
    detector_name : `str`
        Detector full name.
    amps : `list` [`PtcAmp`]
        Amplifiers in readout order.
    bad_amps : `list` [`str`]
        Amplifiers whose measurement or fit failed.
    """

    collection: str
    detector: int
    detector_name: str
    amps: list[PtcAmp]
    bad_amps: list[str]


def extract_ptc(
    butler: Butler,
    collection: str,
    *,
    truth: Mapping[int, Mapping[str, float]] | None = None,
    progress: Progress = _quiet,
) -> list[PtcDetector]:
    """Read the photon transfer curve of every detector of a PTC job.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    collection : `str`
        The PTC job's collection.
    truth : mapping, optional
        True gains by detector id and amplifier.
    progress : callable, optional
        Told what is being read.
    """
    refs = butler.query_datasets("ptc", collections=output_run(butler, collection), explain=False)
    progress(f"Reading {len(refs)} photon transfer curve(s) from {collection}")
    detectors = []
    for ref in sorted(refs, key=lambda r: int(r.dataId["detector"])):
        ptc = butler.get(ref)
        amps = []
        for amp in ptc.ampNames:
            means = np.asarray(ptc.rawMeans.get(amp, []), dtype=float)
            variances = np.asarray(ptc.rawVars.get(amp, []), dtype=float)
            kept = np.asarray(ptc.expIdMask.get(amp, [True] * len(means)), dtype=bool)
            pars = list(ptc.ptcFitPars.get(amp, [])) or [math.nan] * 3
            order = np.argsort(means)
            expected = (truth or {}).get(int(ptc.detector), {}).get(amp)
            amps.append(
                PtcAmp(
                    amp=amp,
                    means=means[order],
                    variances=variances[order],
                    kept=kept[order] if kept.shape == means.shape else np.ones(means.shape, dtype=bool),
                    gain=float(ptc.gain.get(amp, math.nan)),
                    gain_error=float(ptc.gainErr.get(amp, math.nan)),
                    noise=float(ptc.noise.get(amp, math.nan)),
                    noise_error=float(ptc.noiseErr.get(amp, math.nan)),
                    a00=float(pars[0]),
                    turnoff=float(ptc.ptcTurnoff.get(amp, math.nan)),
                    chi2=float(ptc.ptcFitChiSq.get(amp, math.nan)),
                    status=str(ptc.fitStatus.get(amp, "OK")),
                    truth=None if expected is None else float(expected),
                )
            )
        detectors.append(
            PtcDetector(collection, int(ptc.detector), ptc.detectorName, amps, list(ptc.badAmps))
        )
    return detectors


# --- images -----------------------------------------------------------------------


def bin_image(array: np.ndarray, max_size: int = DEFAULT_MAX_SIZE) -> tuple[np.ndarray, int]:
    """Bin an image by block means so that its longer side is at most ``max_size``.

    Parameters
    ----------
    array : `numpy.ndarray`
        2-d image; NaN pixels are left out of their block's mean.
    max_size : `int`, optional
        Longest side of the result.

    Returns
    -------
    binned : `numpy.ndarray`
        ``float32`` image (the edge rows and columns that do not fill a
        block are dropped).
    factor : `int`
        Pixels per block side.
    """
    factor = max(1, math.ceil(max(array.shape) / max_size))
    if factor == 1:
        return np.asarray(array, dtype=np.float32), 1
    ny, nx = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = np.asarray(array[:ny, :nx], dtype=np.float32).reshape(ny // factor, factor, nx // factor, factor)
    finite = np.isfinite(blocks)
    sums = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    counts = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32), factor


@dataclasses.dataclass(frozen=True)
class CalibrationImage:
    """A binned image to draw.

    Attributes
    ----------
    kind : `str`
        ``bias``, ``dark``, ``flat``, or ``verifyBiasProc``...
    title : `str`
        What it is, for a caption.
    collection : `str`
        Where it was read.
    detector : `int`
        Detector id.
    detector_name : `str`
        Detector full name.
    pixels : `numpy.ndarray`
        Binned pixels.
    binning : `int`
        Pixels per binned pixel side.
    shape : `tuple` [`int`, `int`]
        Shape of the full image.
    units : `str`
        Pixel units.
    exposure : `int` or None
        The exposure shown (verify images).
    defects : `list` [`lsst.ts.calibscripts.cp.camera.geometry.Box`]
        Defects to draw over it (full-image pixels).
    """

    kind: str
    title: str
    collection: str
    detector: int
    detector_name: str
    pixels: np.ndarray
    binning: int
    shape: tuple[int, int]
    units: str = ""
    exposure: int | None = None
    defects: list[PixelBox] = dataclasses.field(default_factory=list)


_UNITS = {"bias": "ADU", "dark": "e-/s", "flat": ""}


def _read_binned(butler: Butler, ref: DatasetRef, max_size: int) -> tuple[np.ndarray, int, tuple[int, int]]:
    image = butler.get(ref.makeComponentRef("image"))
    array = image.array
    binned, factor = bin_image(array, max_size)
    return binned, factor, (int(array.shape[0]), int(array.shape[1]))


def _detector_name(ref: DatasetRef) -> str:
    """Return the full name of a dataset's detector (its id if the record was not fetched)."""
    record = ref.dataId.records["detector"] if ref.dataId.hasRecords() else None
    return str(record.full_name) if record is not None else str(ref.dataId["detector"])


def extract_images(
    butler: Butler,
    generation: Mapping[str, str],
    verification: Mapping[str, str],
    *,
    show_exposures: Mapping[str, int] | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    progress: Progress = _quiet,
) -> list[CalibrationImage]:
    """Read and bin the images of a run.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    generation : mapping
        Calibration dataset type -> generation collection (`RunCollections`).
    verification : mapping
        Image type -> verification collection.
    show_exposures : mapping, optional
        Image type -> the exposure whose ``verify<Type>Proc`` to show
        (e.g. the first that failed); the first exposure otherwise.
    max_size : `int`, optional
        Longest side of a binned image.
    progress : callable, optional
        Told what is being read.

    Returns
    -------
    images : `list` [`CalibrationImage`]
        Each combined bias, dark and flat per detector (the flat carrying
        the defects of its detector, if the run made defects), then one
        ``verify<Type>Proc`` per image type, of the first detector.
    """
    images = []
    defects: dict[int, list[PixelBox]] = {}
    if "defects" in generation:
        for ref in butler.query_datasets(
            "defects", collections=output_run(butler, generation["defects"]), explain=False
        ):
            defects[int(ref.dataId["detector"])] = table_to_boxes(butler.get(ref))
    for product in ("bias", "dark", "flat"):
        if product not in generation:
            continue
        refs = butler.query_datasets(
            product,
            collections=output_run(butler, generation[product]),
            explain=False,
            with_dimension_records=True,
        )
        progress(f"Reading and binning {len(refs)} combined {product}(s)")
        for ref in sorted(refs, key=lambda r: int(r.dataId["detector"])):
            pixels, factor, shape = _read_binned(butler, ref, max_size)
            detector = int(ref.dataId["detector"])
            images.append(
                CalibrationImage(
                    kind=product,
                    title=f"combined {product}",
                    collection=generation[product],
                    detector=detector,
                    detector_name=_detector_name(ref),
                    pixels=pixels,
                    binning=factor,
                    shape=shape,
                    units=_UNITS[product],
                    defects=defects.get(detector, []) if product == "flat" else [],
                )
            )
    for image_type, collection in verification.items():
        image = _verification_image(
            butler, image_type, collection, (show_exposures or {}).get(image_type), max_size, progress
        )
        if image is not None:
            images.append(image)
    return images


def _verification_image(
    butler: Butler,
    image_type: str,
    collection: str,
    wanted: int | None,
    max_size: int,
    progress: Progress,
) -> CalibrationImage | None:
    """Return the residual of one exposure of a verification, binned; None if there is none.

    The residual the job wrote (``verify<Type>Proc``, with ``doWriteResidual``), else the
    residual made again as the job made it: its own ISR task and configuration, on the raw
    and the calibrations of its input collections.
    """
    dataset_type = f"verify{image_type.capitalize()}Proc"
    run = output_run(butler, collection)
    stats = sorted(
        butler.query_datasets(
            f"verify{image_type.capitalize()}DetStats",
            collections=run,
            explain=False,
            with_dimension_records=True,
        ),
        key=lambda r: (int(r.dataId["detector"]), int(r.dataId["exposure"])),
    )
    if not stats:
        return None
    chosen = next((r for r in stats if int(r.dataId["exposure"]) == wanted), stats[0])
    exposure, detector = int(chosen.dataId["exposure"]), int(chosen.dataId["detector"])
    written = []
    if dataset_type in {t.name for t in butler.registry.queryDatasetTypes(dataset_type)}:
        written = butler.query_datasets(
            dataset_type,
            collections=run,
            data_id={"exposure": exposure, "detector": detector},
            instrument=chosen.dataId["instrument"],
            explain=False,
        )
    title = f"{image_type.lower()} verification residual" if image_type != "FLAT" else "flat verification"
    if written:
        progress(f"Reading and binning {dataset_type} of exposure {exposure}")
        pixels, factor, shape = _read_binned(butler, written[0], max_size)
    else:
        progress(f"Making the {image_type} verification residual of exposure {exposure} again (ISR)")
        array = _remake_residual(butler, image_type, collection, chosen)
        if array is None:
            return None
        pixels, factor = bin_image(array, max_size)
        shape = (int(array.shape[0]), int(array.shape[1]))
        title += " (made again)"
    return CalibrationImage(
        kind=dataset_type,
        title=title,
        collection=collection,
        detector=detector,
        detector_name=_detector_name(chosen),
        pixels=pixels,
        binning=factor,
        shape=shape,
        units="ADU",
        exposure=exposure,
    )


def _remake_residual(
    butler: Butler, image_type: str, collection: str, stats_ref: DatasetRef
) -> np.ndarray | None:
    """Make the residual of one exposure as the verification job did (its ISR task and configuration).

    Returns None if the job's configuration, its raw or a calibration it used cannot be found
    (a RUN collection given without the job's chain of inputs, or an older repository).
    """
    from ..cp.tasks.verify import CpVerifyIsrConfig, CpVerifyIsrTask

    config = _config(butler, f"verify{image_type.capitalize()}Isr", output_run(butler, collection))
    if not isinstance(config, CpVerifyIsrConfig):
        return None
    config.doWriteResidual = True
    config.doReuseIsr = False
    data_id = {key: stats_ref.dataId[key] for key in ("instrument", "exposure", "detector")}
    raws = butler.query_datasets(
        "raw", collections=collection, data_id=data_id, explain=False, with_dimension_records=True
    )
    if not raws:
        return None
    inputs: dict[str, Any] = {}
    for name, wanted in (
        ("bias", config.doBias),
        ("dark", config.doDark),
        ("flat", config.doFlat),
        ("defects", config.doDefect),
    ):
        if not wanted:
            continue
        try:
            inputs[name] = butler.get(name, raws[0].dataId, collections=collection)
        except LookupError:
            if name != "defects":  # ISR goes on without defects, as the job did
                return None
    result = CpVerifyIsrTask(config=config).run(butler.get(raws[0]), **inputs)
    return np.asarray(result.outputExposure.image.array)


# --- history ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HistoryPoint:
    """One value of one calibration run, for the history plots.

    Attributes
    ----------
    quantity : `str`
        ``gain`` (e-/ADU), ``read noise`` (e-), ``bias level`` (ADU) or
        ``dark current`` (e-/s).
    time : `datetime.datetime`
        When the data were taken (the last input exposure), UTC-like TAI.
    run : `str`
        The RUN collection that made it.
    source : `str`
        ``PTC``, ``flat pairs``, ``bias`` or ``dark``.
    detector : `int`
        Detector id.
    detector_name : `str`
        Detector full name.
    amp : `str`
        Amplifier (blank for a per-detector quantity).
    value : `float`
        The value.
    """

    quantity: str
    time: datetime.datetime
    run: str
    source: str
    detector: int
    detector_name: str
    amp: str
    value: float


_RUN_TIMESTAMP = re.compile(r"(\d{8}T\d{6})Z?$")


def _run_time(run: str) -> datetime.datetime | None:
    match = _RUN_TIMESTAMP.search(run)
    if not match:
        return None
    return datetime.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S")


def _parse_time(text: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", ""))
    except ValueError:
        return None


def _exposure_times(
    butler: Butler, instrument: str, exposures: Iterable[int]
) -> dict[int, datetime.datetime]:
    ids = sorted(set(exposures))
    if not ids:
        return {}
    records = butler.query_dimension_records(
        "exposure", where=f"exposure IN ({', '.join(map(str, ids))})", instrument=instrument, explain=False
    )
    return {int(r.id): r.timespan.end.utc.to_datetime() for r in records if r.timespan is not None}


def _certified_refs(butler: Butler, dataset_type: str) -> list[DatasetRef]:
    """Every dataset of a type certified in any CALIBRATION collection, once each."""
    calibrations = [
        info.name
        for info in butler.collections.query_info("*", collection_types={CollectionType.CALIBRATION})
    ]
    if not calibrations or dataset_type not in {t.name for t in butler.registry.queryDatasetTypes()}:
        return []
    refs = butler.query_datasets(
        dataset_type, collections=calibrations, find_first=False, explain=False, with_dimension_records=True
    )
    return list({ref.id: ref for ref in refs}.values())


def _central_box(butler: Butler, ref: DatasetRef, size: int, known: dict[tuple[str, int], Any]) -> Box:
    """Return the central ``size`` x ``size`` box of an image (its bounds read once per type and detector)."""
    key = (ref.datasetType.name, int(ref.dataId["detector"]))
    if key not in known:
        known[key] = butler.get(ref.makeComponentRef("bbox"))
    bbox = known[key]
    y0 = bbox.y.start + max(0, (bbox.y.stop - bbox.y.start - size) // 2)
    x0 = bbox.x.start + max(0, (bbox.x.stop - bbox.x.start - size) // 2)
    return Box.factory[y0 : min(y0 + size, bbox.y.stop), x0 : min(x0 + size, bbox.x.stop)]


def extract_history(
    butler: Butler,
    instrument: str,
    *,
    cutout: int = HISTORY_CUTOUT,
    progress: Progress = _quiet,
) -> list[HistoryPoint]:
    """Read the gain, read noise, bias level and dark current of every calibration run.

    Gain and read noise per amplifier come from every ``ptc`` certified in
    any CALIBRATION collection, and from every gain-from-flat-pairs
    measurement (``cpPtcExtract``, the median over the pairs of a run); the
    bias level (ADU) and dark current (e-/s) per detector are the medians
    of a central ``cutout`` x ``cutout`` of every certified ``bias`` and
    ``dark``.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    instrument : `str`
        Instrument name.
    cutout : `int`, optional
        Side of the central cut-out read of each bias and dark (pixels).
    progress : callable, optional
        Told what is being read.

    Returns
    -------
    points : `list` [`HistoryPoint`]
        In time order (the last input exposure of each run; the run's
        timestamp when the inputs are unknown).
    """
    points: list[HistoryPoint] = []
    pending: list[tuple[str, list[int], dict[str, Any]]] = []

    ptc_refs = _certified_refs(butler, "ptc")
    progress(f"History: {len(ptc_refs)} certified photon transfer curve(s)")
    for ref in ptc_refs:
        ptc = butler.get(ref)
        exposures = [int(e) for pairs in ptc.inputExpIdPairs.values() for pair in pairs for e in pair]
        for amp in ptc.ampNames:
            for quantity, values in (("gain", ptc.gain), ("read noise", ptc.noise)):
                fields = dict(
                    quantity=quantity,
                    run=ref.run,
                    source="PTC",
                    detector=int(ptc.detector),
                    detector_name=ptc.detectorName,
                    amp=amp,
                    value=float(values.get(amp, math.nan)),
                )
                pending.append((ref.run, exposures, fields))

    if GAIN_DATASET_TYPE in {t.name for t in butler.registry.queryDatasetTypes()}:
        extract_refs = butler.query_datasets(
            GAIN_DATASET_TYPE, collections="*", find_first=False, explain=False
        )
    else:
        extract_refs = []
    progress(f"History: {len(extract_refs)} gain(s) from flat pairs")
    by_run: dict[tuple[str, int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    names: dict[int, str] = {}
    run_exposures: dict[str, list[int]] = defaultdict(list)
    for ref in {r.id: r for r in extract_refs}.values():
        extract = butler.get(ref)
        names[int(extract.detector)] = extract.detectorName
        for amp in extract.ampNames:
            entry = by_run[(ref.run, int(extract.detector), amp)]
            entry["gain"].append(float(extract.gain.get(amp, math.nan)))
            entry["read noise"].append(float(extract.noise.get(amp, math.nan)))
            run_exposures[ref.run].extend(
                int(e) for pair in extract.inputExpIdPairs.get(amp, []) for e in pair
            )
    for (run, detector, amp), values in by_run.items():
        for quantity, samples in values.items():
            finite = [v for v in samples if math.isfinite(v)]
            fields = dict(
                quantity=quantity,
                run=run,
                source="flat pairs",
                detector=detector,
                detector_name=names[detector],
                amp=amp,
                value=float(np.median(finite)) if finite else math.nan,
            )
            pending.append((run, run_exposures[run], fields))

    times = _exposure_times(butler, instrument, (e for _, exposures, _ in pending for e in exposures))
    for run, exposures, fields in pending:
        known = [times[e] for e in exposures if e in times]
        time = max(known) if known else _run_time(run)
        if time is not None:
            points.append(HistoryPoint(time=time, **fields))

    bounds: dict[tuple[str, int], Any] = {}
    for product, quantity in (("bias", "bias level"), ("dark", "dark current")):
        refs = _certified_refs(butler, product)
        progress(f"History: {len(refs)} certified {product}(s), a {cutout}x{cutout} cut-out of each")
        for ref in refs:
            image = butler.get(ref, parameters={"bbox": _central_box(butler, ref, cutout, bounds)})
            metadata = image.metadata
            dates = [
                parsed
                for key, value in metadata.items()
                if str(key).startswith("LSST CALIB INPUT")
                and str(key).endswith(" DATE")
                and (parsed := _parse_time(value)) is not None
            ]
            time = max(dates) if dates else _run_time(ref.run)
            if time is None:
                continue
            array = image.image.array
            finite = array[np.isfinite(array)]
            points.append(
                HistoryPoint(
                    quantity=quantity,
                    time=time,
                    run=ref.run,
                    source=product,
                    detector=int(ref.dataId["detector"]),
                    detector_name=_detector_name(ref),
                    amp="",
                    value=float(np.median(finite)) if finite.size else math.nan,
                )
            )
    points.sort(key=lambda p: (p.time, p.quantity, p.detector, p.amp))
    return points


# --- the whole report -----------------------------------------------------------


@dataclasses.dataclass
class ReportData:
    """Everything a report shows, as read from the repository.

    Attributes
    ----------
    repo : `str`
        The repository.
    instrument : `str`
        Instrument name.
    requested : `list` [`str`]
        The collections asked for.
    collections : `RunCollections`
        What they hold.
    verifications : `list` [`VerificationSummary`]
        One per verified image type, in processing order.
    gains : `list` [`GainRow`]
        Gains from flat pairs.
    ptc : `list` [`PtcDetector`]
        Photon transfer curves, one per detector.
    images : `list` [`CalibrationImage`]
        Combined calibrations and verification images, binned.
    history : `list` [`HistoryPoint`]
        Every calibration run of the repository.
    simulated : `bool`
        Did the data come from the simulator (so that true gains are known)?
    truth : `dict` [`int`, `dict` [`str`, `float`]]
        The simulator's true gains by detector and amplifier (empty if not
        simulated).
    runs : `list` [`str`]
        The RUN collections of this report (marked in the history).
    made : `datetime.datetime`
        When the report was read (UTC).
    """

    repo: str
    instrument: str
    requested: list[str]
    collections: RunCollections
    verifications: list[VerificationSummary] = dataclasses.field(default_factory=list)
    gains: list[GainRow] = dataclasses.field(default_factory=list)
    ptc: list[PtcDetector] = dataclasses.field(default_factory=list)
    images: list[CalibrationImage] = dataclasses.field(default_factory=list)
    history: list[HistoryPoint] = dataclasses.field(default_factory=list)
    simulated: bool = False
    truth: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)
    runs: list[str] = dataclasses.field(default_factory=list)
    made: datetime.datetime = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    )


def _instrument_of(butler: Butler, collections: RunCollections) -> str:
    records = list(butler.query_dimension_records("instrument", explain=False))
    if len(records) == 1:
        return str(records[0].name)
    for image_type, collection in collections.verification.items():
        refs = butler.query_datasets(
            verification_stats_type(image_type), collections=output_run(butler, collection), explain=False
        )
        if refs:
            return str(refs[0].dataId["instrument"])
    for product, collection in collections.generation.items():
        refs = butler.query_datasets(
            product, collections=output_run(butler, collection), explain=False, limit=1
        )
        if refs:
            return str(refs[0].dataId["instrument"])
    raise LookupError("Cannot tell the instrument: the repository has several and the collections hold none")


def is_simulated(butler: Butler, instrument: str) -> bool:
    """Tell whether a repository's raws were written by the simulated camera.

    The simulated observatory writes them inside the repository, under
    `SIMULATED_RAW_DIR`.
    """
    raws = f"{instrument}/raw/all"
    try:
        refs = butler.query_datasets("raw", collections=raws, explain=False, limit=1)
    except Exception:
        return False
    return bool(refs) and f"/{SIMULATED_RAW_DIR}/" in str(butler.getURI(refs[0]))


#: Directory of a repository where the simulated camera writes its raws (the simulator's
#: ``RAW_DIR_NAME``; tests/report checks that they agree).
SIMULATED_RAW_DIR = "simulated-raw"


def extract_report(
    butler: Butler,
    collections: RunCollections,
    *,
    repo: str = "",
    requested: Sequence[str] = (),
    threshold: int | Mapping[str, int] = DEFAULT_THRESHOLD,
    simulated: bool | None = None,
    history: bool = True,
    max_size: int = DEFAULT_MAX_SIZE,
    progress: Progress = _quiet,
) -> ReportData:
    """Read every section of a report.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    collections : `RunCollections`
        What to report on (`~lsst.ts.calibscripts.report.sources.find_run_collections`).
    repo : `str`, optional
        The repository's name, to show.
    requested : sequence of `str`, optional
        The collections asked for, to show.
    threshold : `int` or mapping, optional
        ``number_verification_tests_threshold_<type>`` of the run: one for
        every type, or by image type (``BIAS``...; 8 for a type not given).
    simulated : `bool`, optional
        Whether the data came from the simulator; by default, whether the
        raws are where the simulated camera writes them (`is_simulated`).
    history : `bool`, optional
        Read the history of the repository too.
    max_size : `int`, optional
        Longest side of a binned image.
    progress : callable, optional
        Told what is being read.

    Returns
    -------
    data : `ReportData`
    """
    instrument = _instrument_of(butler, collections)
    if simulated is None:
        simulated = is_simulated(butler, instrument)
    truth: dict[int, dict[str, float]] = {}
    if simulated:
        from ..cp.camera.description import get_instrument_description

        truth = true_gains(get_instrument_description(instrument))
    data = ReportData(
        repo=repo,
        instrument=instrument,
        requested=list(requested),
        collections=collections,
        simulated=simulated,
        truth=truth,
    )
    for image_type in ("BIAS", "DARK", "FLAT"):
        collection = collections.verification.get(image_type)
        if collection is not None:
            data.verifications.append(
                extract_verification(
                    butler,
                    image_type,
                    collection,
                    generation_collection=collections.generation_of(image_type),
                    threshold=threshold
                    if isinstance(threshold, int)
                    else int(threshold.get(image_type, DEFAULT_THRESHOLD)),
                    progress=progress,
                )
            )
    if collections.gains:
        data.gains = extract_gains(butler, collections.gains, truth=truth or None, progress=progress)
    if "ptc" in collections.generation:
        data.ptc = extract_ptc(butler, collections.generation["ptc"], truth=truth or None, progress=progress)
    show = {}
    for summary in data.verifications:
        failing = summary.outcome.failed_exposures or summary.outcome.exposures_with_failures
        if failing:
            show[summary.image_type] = failing[0]
    data.images = extract_images(
        butler,
        collections.generation,
        collections.verification,
        show_exposures=show,
        max_size=max_size,
        progress=progress,
    )
    if history:
        data.history = extract_history(butler, instrument, progress=progress)
    names = [*collections.generation.values(), *collections.verification.values(), *collections.gains]
    data.runs = sorted({output_run(butler, name) for name in names})
    return data
