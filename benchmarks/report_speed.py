"""How long ``calibscripts report`` takes for the LATISS daily default at full size.

Run as ``python benchmarks/report_speed.py [--days 5] [--workdir DIR]``.

Running the daily default at full size takes tens of minutes here, so the
benchmark writes what the report reads instead, at the daily default's
scale, into a fresh repository: 20 biases, 22 darks and 20 flats
(exposures defined by ingesting small raws), their verification statistics
(``verify<Type>DetStats`` per exposure, ``ExpStats``, ``Stats``, as the
pipelines write them), one full-size ``verify<Type>Proc`` per type, the
gains of 10 flat pairs, and, for ``--days`` days before, a full-size bias,
dark and flat generated and certified (the history). Then it times the
report of

* the daily default (external verification: three verification jobs and
  the gains), and
* the same with generation (``calib_collection``: combined bias, dark and
  flat at full size, their verifications),

printing each step's time as the report says what it is doing, and the
CPU time (on a loaded machine the wall time says more about the load).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from astropy.time import Time
from lsst.daf.butler import Butler, DatasetType
from lsst.images import Image, MaskedImage

from lsst.ts.calibscripts.calibrations.verification_rule import apply_majority_rule
from lsst.ts.calibscripts.cp.algorithms.verification import (
    AmpMeasurement,
    make_det_stats,
    merge_detector_stats,
    merge_exposure_stats,
    verify_bias_amp,
    verify_flat_amp,
)
from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.ingest import ingest_raws
from lsst.ts.calibscripts.cp.butler.ptc_dataset import PTC_FIT_TYPE_EXTRACT, PhotonTransferCurveDataset
from lsst.ts.calibscripts.cp.butler.raw_file import ObservationMetadata, write_raw
from lsst.ts.calibscripts.cp.butler.repository import create_repository
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import AMP_NAMES, itl_geometry, reduced_itl_geometry
from lsst.ts.calibscripts.cp.tasks.image_conventions import MASK_SCHEMA
from lsst.ts.calibscripts.report.build import make_report

DAY_OBS = 20221120
COUNTS = {"BIAS": 20, "DARK": 22, "FLAT": 20}
FILTER = "empty~empty"


def raws(directory: Path) -> tuple[list[Path], dict[str, list[int]]]:
    """Small raws that define the daily default's exposures."""
    geometry = reduced_itl_geometry()
    detector = LATISS.detector(0)
    files: list[Path] = []
    exposures: dict[str, list[int]] = {}
    seq = 0
    start = Time("2022-11-20T20:00:00", scale="tai")
    for image_type, count in COUNTS.items():
        exposures[image_type] = []
        for _ in range(count):
            seq += 1
            t0 = start + seq * 40 / 86400
            metadata = ObservationMetadata(
                instrument="LATISS",
                obs_id=LATISS.obs_id(DAY_OBS, seq),
                day_obs=DAY_OBS,
                seq_num=seq,
                img_type=image_type,
                exposure_time=5.0,
                dark_time=5.0,
                date_obs=t0,
                date_end=t0 + 5 / 86400,
                filter="empty",
                grating="empty",
                group_id=image_type,
                reason="benchmark",
                program="CALIB",
            )
            amps = {amp.name: np.full(amp.raw_shape, 10_000, dtype=np.int32) for amp in geometry}
            path = directory / f"{metadata.obs_id}.fits"
            write_raw(path, metadata, detector, geometry, amps)
            files.append(path)
            exposures[image_type].append(metadata.exposure_id)
    return files, exposures


def det_stats(image_type: str, exposure: int, rng: np.random.Generator) -> dict[str, Any]:
    """DetStats of one exposure, as the verification task writes them."""
    detector = LATISS.detector(0)
    amp_stats, amp_verify = {}, {}
    for amp in AMP_NAMES:
        if image_type == "FLAT":
            mean = 9000 * rng.uniform(0.97, 1.03)
            m = AmpMeasurement(mean, np.sqrt(mean / 1.1) * rng.uniform(0.97, 1.03), 90.0)
            amp_verify[amp] = verify_flat_amp(m)
        else:
            noise = detector.read_noise_adu(amp) * rng.uniform(0.93, 1.07)
            m = AmpMeasurement(rng.normal(0, 0.3), noise, noise * rng.uniform(0.98, 1.02))
            amp_verify[amp] = verify_bias_amp(m, detector.read_noise_adu(amp))
        amp_stats[amp] = m.as_dict()
    metadata = {"EXPOSURE": exposure, "DETECTOR": 0, "DET_NAME": "RXX_S00", "IMAGE_TYPE": image_type}
    return make_det_stats(amp_stats, amp_verify, metadata)


def register(butler: Butler, name: str, dimensions: tuple[str, ...], storage_class: str) -> None:
    butler.registry.registerDatasetType(
        DatasetType(name, dimensions, storage_class, universe=butler.dimensions)
    )


def full_image(rng: np.random.Generator, level: float, noise: float) -> MaskedImage:
    ny, nx = itl_geometry().assembled_shape
    pixels = rng.normal(level, noise, size=(ny, nx)).astype(np.float32)
    image = MaskedImage(Image(pixels), mask_schema=MASK_SCHEMA)
    image.variance.array[...] = noise**2
    return image


def verification_run(butler: Butler, image_type: str, exposures: list[int], rng: np.random.Generator) -> str:
    label = f"verify{image_type.capitalize()}"
    run = f"u/ocps/{label.lower()}/20221120T230000Z"
    butler.collections.register(run)
    per_exposure = ("instrument", "exposure", "detector")
    register(butler, f"{label}DetStats", per_exposure, "StructuredDataDict")
    register(butler, f"{label}ExpStats", ("instrument", "exposure"), "StructuredDataDict")
    register(butler, f"{label}Stats", ("instrument",), "StructuredDataDict")
    register(butler, f"{label}Proc", per_exposure, "MaskedImageV2")
    merged: dict[int | str, dict[str, Any]] = {}
    for exposure in exposures:
        stats = det_stats(image_type, exposure, rng)
        butler.put(stats, f"{label}DetStats", instrument="LATISS", detector=0, exposure=exposure, run=run)
        exp_stats = merge_detector_stats({"RXX_S00": stats})
        butler.put(exp_stats, f"{label}ExpStats", instrument="LATISS", exposure=exposure, run=run)
        merged[exposure] = exp_stats
    stats = merge_exposure_stats(merged)
    butler.put(stats, f"{label}Stats", instrument="LATISS", run=run)
    # The residual of the exposure the report shows (the first that failed, else the first).
    outcome = apply_majority_rule(stats, 8, 1)
    shown = (outcome.failed_exposures or outcome.exposures_with_failures or exposures)[0]
    level = 1.0 if image_type == "FLAT" else 0.0
    image = full_image(rng, level, 0.01 if image_type == "FLAT" else 8.0)
    butler.put(image, f"{label}Proc", instrument="LATISS", detector=0, exposure=shown, run=run)
    return run


def gain_run(butler: Butler, flats: list[int], rng: np.random.Generator) -> str:
    run = "u/ocps/gain/20221120T230500Z"
    butler.collections.register(run)
    register(butler, "cpPtcExtract", ("instrument", "exposure", "detector"), "PhotonTransferCurve")
    gains = LATISS.detector(0).gains
    for first, second in zip(flats[::2], flats[1::2], strict=True):
        extract = PhotonTransferCurveDataset(
            instrument="LATISS",
            detector=0,
            detectorName="RXX_S00",
            ampNames=list(AMP_NAMES),
            ptcFitType=PTC_FIT_TYPE_EXTRACT,
            inputExpIdPairs={amp: [(first, second)] for amp in AMP_NAMES},
            expTimes={amp: [5.0] for amp in AMP_NAMES},
            rawMeans={amp: [9000.0] for amp in AMP_NAMES},
            gain={amp: gains[amp] * rng.uniform(0.98, 1.02) for amp in AMP_NAMES},
            noise={amp: 8.5 for amp in AMP_NAMES},
        )
        butler.put(extract, "cpPtcExtract", instrument="LATISS", detector=0, exposure=first, run=run)
    return run


def generation(repo: Path, butler: Butler, day: int, rng: np.random.Generator) -> tuple[str, dict[str, str]]:
    """A full-size bias, dark and flat generated on ``day`` and certified for it."""
    calib = f"LATISS/calib/daily/run.{day}"
    runs = {}
    for product, level, noise in (("bias", 0.0, 3.0), ("dark", 0.005, 0.01), ("flat", 1.0, 0.01)):
        run = f"u/ocps/{product}{day}/{day}T200000Z"
        butler.collections.register(run)
        data_id: dict[str, Any] = {"instrument": "LATISS", "detector": 0}
        if product == "flat":
            data_id["physical_filter"] = FILTER
        image = full_image(rng, level, noise)
        image.metadata["LSST CALIB INPUT 0 DATE"] = f"{str(day)[:4]}-{str(day)[4:6]}-{str(day)[6:]}T20:00:00"
        butler.put(image, product, data_id, run=run)
        begin = f"{str(day)[:4]}-{str(day)[4:6]}-{str(day)[6:]}"
        certify_calibrations(butler, run, calib, product, begin_date=begin, end_date=None)
        runs[product] = run
    return calib, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5, help="certified runs before (history)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="report-speed-"))
    rng = np.random.default_rng(5)
    t0 = time.perf_counter()
    repo = create_repository(workdir / "repo", ["LATISS"])
    (workdir / "raws").mkdir(exist_ok=True)
    files, exposures = raws(workdir / "raws")
    with Butler.from_config(str(repo), writeable=True) as butler:
        ingest_raws(butler, files)
        verifications = [verification_run(butler, t, exposures[t], rng) for t in COUNTS]
        gains = gain_run(butler, exposures["FLAT"], rng)
        calib = ""
        for day in range(20221115, 20221115 + args.days):
            calib, _ = generation(repo, butler, day, rng)
    print(f"Repository written in {time.perf_counter() - t0:.0f} s: {repo}")

    for name, collections in (
        ("daily default (external verification, gains)", [*verifications, gains]),
        ("with generation (calib collection, and the same jobs)", [calib, *verifications, gains]),
    ):
        print(f"\n== {name}")
        start, cpu = time.perf_counter(), time.process_time()

        def progress(message: str, start: float = start) -> None:
            print(f"  {time.perf_counter() - start:5.1f} s  {message}")

        result = make_report(repo, collections, workdir / name.split()[0], progress=progress)
        points = len(result.data.history)
        print(
            f"  total {result.seconds:.1f} s ({time.process_time() - cpu:.1f} s of CPU), "
            f"{result.figures} figures, {points} history points"
        )


if __name__ == "__main__":
    main()
