"""What each section of the report reads from a repository with a whole calibration run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

import numpy as np
import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.calibrations.verification_rule import apply_majority_rule
from lsst.ts.calibscripts.cp.algorithms.defects import table_to_boxes
from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import AMP_NAMES
from lsst.ts.calibscripts.report.build import ReportResult
from lsst.ts.calibscripts.report.extract import (
    SIMULATED_RAW_DIR,
    bin_image,
    extract_gains,
    extract_history,
    extract_images,
    extract_ptc,
    extract_verification,
    is_simulated,
    true_gains,
)
from lsst.ts.calibscripts.report.sources import ReportSourceError, find_run_collections
from lsst.ts.calibscripts.simulator.observatory import RAW_DIR_NAME

from .report_repository import CALIB_COLLECTION, OLD_CALIB_COLLECTION, SIMULATED_RAW, ReportRepository

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def butler(report_repository: ReportRepository) -> Iterator[Butler]:
    with Butler.from_config(str(report_repository.repo)) as butler:
        yield butler


def test_collections_sorted_by_what_they_hold(report_repository: ReportRepository, butler: Butler) -> None:
    c = report_repository.collections
    found = find_run_collections(butler, report_repository.run_collections)
    assert found.verification == {"BIAS": c["verifyBias"], "DARK": c["verifyDark"], "FLAT": c["verifyFlat"]}
    assert found.generation == {
        "bias": c["bias"],
        "dark": c["dark"],
        "flat": c["flat"],
        "ptc": c["ptc"],
        "defects": c["defects"],
    }
    assert found.gains == [c["ptc"]]
    assert found.unused == [] and found.calibration == []
    # Raws are nothing to report; an unknown collection is named.
    assert find_run_collections(butler, ["LATISS/raw/all"]).empty
    with pytest.raises(ReportSourceError, match="u/no/such"):
        find_run_collections(butler, ["u/no/such"])


def test_a_calibration_collection_leads_to_its_runs_and_their_verifications(
    report_repository: ReportRepository, butler: Butler
) -> None:
    c = report_repository.collections
    found = find_run_collections(butler, [CALIB_COLLECTION])
    assert found.calibration == [CALIB_COLLECTION]
    assert found.generation == {
        "bias": c["bias"],
        "dark": c["dark"],
        "flat": c["flat"],
        "defects": c["defects"],
        "ptc": c["ptc"],
    }
    # Internal verification: the verification jobs that read the certified runs.
    assert found.verification == {"BIAS": c["verifyBias"], "DARK": c["verifyDark"], "FLAT": c["verifyFlat"]}
    assert found.generation_of("DARK") == c["dark"]


def test_four_darks_fail_noise_everywhere_and_are_rejected(
    report_repository: ReportRepository, butler: Butler
) -> None:
    c = report_repository.collections
    darks = report_repository.darks
    summary = extract_verification(butler, "dark", c["verifyDark"], generation_collection=c["dark"])
    assert summary.image_type == "DARK"
    assert summary.exposures == darks
    assert summary.detectors == ["RXX_S00"]
    assert summary.outcome.failed_exposures == darks
    assert not summary.outcome.accepted
    assert summary.verdict == "DARK calibration failed verification and will not be certified."
    assert summary.threshold_option == "number_verification_tests_threshold_dark"
    noise = [row for row in summary.rows if row.test == "NOISE"]
    assert sorted((row.exposure, row.amp) for row in noise) == sorted(
        (e, a) for e in darks for a in AMP_NAMES
    )
    # Verified against their own combination of 4, the residuals have RN x sqrt(3/4): 13 % low.
    for row in noise:
        assert not row.passed
        assert row.limit == 0.05
        assert 0.05 < row.tested < 0.2, row
        assert "RN" in row.criterion
    # Every number shown agrees with the result the pipeline recorded.
    for row in summary.rows:
        if row.test in ("MEAN", "CR_NOISE"):
            assert row.passed == (row.tested < row.limit or math.isclose(row.tested, row.limit)), row
    assert {row.test for row in summary.failed_rows} <= {"NOISE", "CR_NOISE", "MEAN", "PROCESSING"}
    assert all(summary.failed_tests(e) >= 16 for e in darks)


def test_the_majority_rule_is_the_scripts(report_repository: ReportRepository, butler: Butler) -> None:
    c = report_repository.collections
    for image_type, key in (("BIAS", "verifyBias"), ("FLAT", "verifyFlat")):
        summary = extract_verification(butler, image_type, c[key], threshold=3)
        stats = butler.get(f"verify{image_type.capitalize()}Stats", instrument="LATISS", collections=[c[key]])
        assert summary.outcome == apply_majority_rule(stats, 3, 1)
    bias = extract_verification(butler, "BIAS", c["verifyBias"], generation_collection=c["bias"])
    assert bias.outcome.accepted
    assert bias.verdict.startswith("BIAS calibration passed")
    assert bias.verdict.endswith(("will be certified.", "did not pass."))
    # External verification (no generation collection): accepted, not certified.
    assert "is accepted" in extract_verification(butler, "BIAS", c["verifyBias"]).verdict


def test_flat_tests_include_detector_and_exposure_scatter(
    report_repository: ReportRepository, butler: Butler
) -> None:
    summary = extract_verification(butler, "FLAT", report_repository.collections["verifyFlat"])
    flats = report_repository.flats
    detector = [row for row in summary.rows if row.test == "SCATTER" and row.detector == 0]
    exposure = [row for row in summary.rows if row.test == "SCATTER" and row.detector == -1]
    assert [row.exposure for row in detector] == flats and all(row.amp == "" for row in detector)
    assert [row.exposure for row in exposure] == flats
    assert all(row.limit == 0.05 for row in detector + exposure)
    noise = [row for row in summary.rows if row.test == "NOISE"]
    assert len(noise) == len(flats) * 16
    for row in noise:
        assert row.criterion == "NOISE <= sqrt(MEAN)"
        assert row.passed == (row.tested <= row.limit), row


def test_gains_from_flat_pairs_against_the_simulators_truth(
    report_repository: ReportRepository, butler: Butler
) -> None:
    flats = report_repository.flats
    rows = extract_gains(butler, [report_repository.collections["ptc"]], truth=true_gains(LATISS))
    pairs = [(flats[i], flats[i + 1]) for i in range(0, len(flats), 2)]
    assert sorted({row.exposures for row in rows}) == pairs
    assert len(rows) == len(pairs) * 16
    gains = LATISS.detector(0).gains
    for row in rows:
        assert row.truth == gains[row.amp]
        assert row.detector_name == "RXX_S00"
        assert row.error_percent == pytest.approx(100 * (row.gain / row.truth - 1))
        assert row.mean > 0 and row.noise > 0
    # 1440 pixels per amp in the reduced geometry: a few percent per pair.
    errors = [abs(row.error_percent or 0.0) for row in rows]
    assert statistics.median(errors) < 5, errors
    assert all(row.truth is None for row in extract_gains(butler, [report_repository.collections["ptc"]]))


def test_ptc_model_follows_the_points(report_repository: ReportRepository, butler: Butler) -> None:
    (detector,) = extract_ptc(butler, report_repository.collections["ptc"], truth=true_gains(LATISS))
    assert detector.detector_name == "RXX_S00"
    assert [amp.amp for amp in detector.amps] == list(AMP_NAMES)
    fitted = [amp for amp in detector.amps if amp.fitted]
    assert len(fitted) >= 12, [amp.status for amp in detector.amps]
    for amp in fitted:
        assert amp.means.size == len(report_repository.flats) // 2
        assert np.all(np.diff(amp.means) > 0)
        assert np.all(np.abs(amp.residuals[amp.kept]) < 0.1), amp
        assert amp.gain == pytest.approx(amp.truth, rel=0.1)
        assert amp.a00 <= 0
    for amp in detector.amps:
        if not amp.fitted:
            assert np.all(np.isnan(amp.model(amp.means)))


def test_images_are_binned_and_the_defects_drawn_over_the_flat(
    report_repository: ReportRepository, butler: Butler
) -> None:
    found = find_run_collections(butler, report_repository.run_collections)
    darks = report_repository.darks
    images = extract_images(
        butler, found.generation, found.verification, show_exposures={"DARK": darks[1]}, max_size=100
    )
    assert [image.kind for image in images] == [
        "bias",
        "dark",
        "flat",
        "verifyBiasProc",
        "verifyDarkProc",
        "verifyFlatProc",
    ]
    for image in images:
        assert max(image.pixels.shape) <= 100
        assert image.binning == math.ceil(max(image.shape) / 100)
        assert image.detector_name == "RXX_S00"
    flat = images[2]
    full = butler.get(
        "flat.image", instrument="LATISS", detector=0, exposure=darks[0], collections=[CALIB_COLLECTION]
    )
    binned, _ = bin_image(full.array, 100)
    np.testing.assert_array_equal(flat.pixels, binned)
    defects = butler.get(
        "defects", instrument="LATISS", detector=0, collections=[found.generation["defects"]]
    )
    assert flat.defects == table_to_boxes(defects) and flat.defects
    assert images[4].exposure == darks[1]
    assert images[3].exposure == report_repository.biases[0]
    assert [image.defects for image in images if image.kind != "flat"] == [[]] * 5


def test_bin_image_means_blocks_without_nan() -> None:
    array = np.arange(70, dtype=np.float32).reshape(7, 10)
    array[0, 0] = np.nan
    binned, factor = bin_image(array, 4)
    assert factor == 3 and binned.shape == (2, 3)
    assert binned[0, 0] == pytest.approx(np.mean([1, 2, 10, 11, 12, 20, 21, 22]))
    assert binned[1, 2] == pytest.approx(array[3:6, 6:9].mean())
    same, one = bin_image(array[:3, :3], 4)
    assert one == 1 and same.shape == (3, 3)


def test_history_in_time_order(report_repository: ReportRepository, butler: Butler) -> None:
    c = report_repository.collections
    points = extract_history(butler, "LATISS")
    assert [p.time for p in points] == sorted(p.time for p in points)
    assert {p.quantity for p in points} == {"gain", "read noise", "bias level", "dark current"}
    bias = [p for p in points if p.quantity == "bias level"]
    # Both certified biases (the older one of 3 frames, then this run's), oldest first.
    assert [p.run.rpartition("/")[0] for p in bias] == [c["oldBias"], c["bias"]]
    assert bias[0].time < bias[1].time
    assert all(p.amp == "" and p.detector_name == "RXX_S00" for p in bias)
    dark = [p for p in points if p.quantity == "dark current"]
    assert len(dark) == 1 and 0 < dark[0].value < 0.1  # e-/s
    gains = [p for p in points if p.quantity == "gain"]
    assert {p.source for p in gains} == {"PTC", "flat pairs"}
    (ptc,) = extract_ptc(butler, c["ptc"])
    from_ptc = {p.amp: p.value for p in gains if p.source == "PTC"}
    assert from_ptc == pytest.approx({amp.amp: amp.gain for amp in ptc.amps}, nan_ok=True)
    assert {p.amp for p in gains} == set(AMP_NAMES)
    assert find_run_collections(butler, [OLD_CALIB_COLLECTION]).generation == {"bias": c["oldBias"]}


def test_the_data_came_from_the_simulator(report_repository: ReportRepository, butler: Butler) -> None:
    assert SIMULATED_RAW_DIR == RAW_DIR_NAME == SIMULATED_RAW
    assert is_simulated(butler, "LATISS")


def test_the_whole_report_data(report: ReportResult, report_repository: ReportRepository) -> None:
    data = report.data
    assert data.instrument == "LATISS" and data.simulated
    assert [s.image_type for s in data.verifications] == ["BIAS", "DARK", "FLAT"]
    assert data.truth == true_gains(LATISS)
    assert len(data.gains) == 16 * len(report_repository.flats) // 2
    assert len(data.ptc) == 1 and len(data.images) == 6 and data.history
    # The verification image shown for the darks is the first that failed.
    (dark,) = [image for image in data.images if image.kind == "verifyDarkProc"]
    assert dark.exposure == report_repository.darks[0]
    assert all(run.startswith("u/report/") for run in data.runs)
