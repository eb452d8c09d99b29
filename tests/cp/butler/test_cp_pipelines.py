"""cpBias, cpDark, cpFlat through real pipetask runs, compared with the model's truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.cp.algorithms.statistics import sigma_clipped_stats
from lsst.ts.calibscripts.cp.butler.certification import certify_calibrations
from lsst.ts.calibscripts.cp.butler.pipeline_locations import generation_pipeline, verification_pipeline
from lsst.ts.calibscripts.cp.tasks.image_conventions import (
    calib_input_key,
    calib_percentile_key,
    detector_geometry,
)

from .conftest import ComCamNight, LatissNight
from .pipetask_runner import exposure_query, run_pipetask

pytestmark = pytest.mark.slow

# Columns of the reduced geometry's serial overscan used per row (64 - 2 x 3).
OVERSCAN_COLUMNS = 58


def test_combined_bias_noise_is_read_noise_over_sqrt_n(latiss_night: LatissNight, latiss_calibrations):
    truth = latiss_night.night.models[0].truth
    with latiss_night.butler(latiss_calibrations.bias) as butler:
        bias = butler.get("bias", instrument="LATISS", detector=0)
    n = len(latiss_night.biases)
    metadata = bias.metadata
    assert metadata["LSST CALIB NINPUTS"] == n
    assert metadata["LSST CALIB UNITS"] == "adu"
    assert [metadata[calib_input_key(i, "EXPID")] for i in range(n)] == latiss_night.biases
    assert metadata[calib_input_key(0, "DATE")].startswith("2022-09-29T20:00:00")
    assert metadata[calib_input_key(0, "EXPTIME")] == 0.0
    residual = bias.image.array - truth.bias_pattern
    for amp in detector_geometry(metadata):
        # Each input also carries the noise of its per-row overscan median.
        expected = truth.read_noise_adu[amp.name] * math.sqrt((1 + math.pi / (2 * OVERSCAN_COLUMNS)) / n)
        measured = float(np.std(residual[amp.detector_slice]))
        assert measured == pytest.approx(expected, rel=0.08), amp.name
        for percentile in (0, 5, 16, 50, 84, 95, 100):
            assert math.isfinite(metadata[calib_percentile_key(percentile, amp.name)])
        assert metadata[calib_percentile_key(0, amp.name)] <= metadata[calib_percentile_key(50, amp.name)]


def test_dark_current_in_electrons_per_second(latiss_night: LatissNight, latiss_calibrations):
    truth = latiss_night.night.models[0].truth
    with latiss_night.butler(latiss_calibrations.dark) as butler:
        dark = butler.get("dark", instrument="LATISS", detector=0)
    assert dark.metadata["LSST CALIB UNITS"] == "electron/s"
    image = dark.image.array
    for amp in detector_geometry(dark.metadata):
        measured = sigma_clipped_stats(image[amp.detector_slice]).mean
        assert measured == pytest.approx(truth.amp_dark_current[amp.name], abs=1.5e-3), amp.name
    # Hot pixels keep their current: cosmic-ray masking must not remove them.
    for x, y in truth.hot_pixels:
        assert image[y, x] == pytest.approx(truth.dark_current[y, x], rel=0.1)
    assert not dark.mask.get("BAD").any()


def test_flat_is_normalised_with_the_illumination_shape(latiss_night: LatissNight, latiss_calibrations):
    truth = latiss_night.night.models[0].truth
    with latiss_night.butler(latiss_calibrations.flat) as butler:
        flat = butler.get("flat", instrument="LATISS", detector=0, physical_filter="empty~empty")
        scales = butler.get("cpFlatNormScales", instrument="LATISS", physical_filter="empty~empty")
    assert flat.metadata["LSST CALIB UNITS"] == "dimensionless"
    assert scales["scaleMode"] == "DETECTOR"
    image = flat.image.array
    assert sigma_clipped_stats(image).mean == pytest.approx(1.0, abs=0.002)
    expected = truth.flat_field / sigma_clipped_stats(truth.flat_field).mean
    assert float(np.std(image - expected)) < 0.01
    # Vignetting: corners ~12 % below the centre, as in the model.
    ny, nx = image.shape
    corner = float(np.mean(image[:10, :10]))
    centre = float(np.mean(image[ny // 2 - 5 : ny // 2 + 5, nx // 2 - 5 : nx // 2 + 5]))
    true_ratio = float(
        np.mean(expected[:10, :10]) / np.mean(expected[ny // 2 - 5 : ny // 2 + 5, nx // 2 - 5 : nx // 2 + 5])
    )
    assert corner / centre == pytest.approx(true_ratio, abs=0.01)


def test_config_overrides_reach_the_tasks(latiss_night: LatissNight, latiss_bias3: str):
    with latiss_night.butler(latiss_bias3) as butler:
        bias = butler.get("bias", instrument="LATISS", detector=0)
        config = butler.get("cpBiasCombine_config")
        isr_config = butler.get("isr_config")
    assert config.percentiles == [50.0]
    assert isr_config.doDefect is False and isr_config.doCrosstalk is False
    keys = [key for key in bias.metadata if key.startswith("LSST CALIB PERCENTILE")]
    assert len(keys) == 16 and all(key.startswith("LSST CALIB PERCENTILE 50 ") for key in keys)


def test_comcam_bias_and_flat_keep_relative_detector_response(comcam_night: ComCamNight):
    repo = comcam_night.repo
    raw = "LSSTComCam/raw/all"
    calib = "LSSTComCam/calib/test"
    run_pipetask(
        repo,
        generation_pipeline("LSSTComCam", "cpBias"),
        [raw],
        "u/test/comcamBias",
        exposure_query("LSSTComCam", comcam_night.biases),
        ["isr:doDefect=False"],
    )
    refs = certify_calibrations(
        repo, "u/test/comcamBias", calib, "bias", begin_date="2022-01-01", end_date="2023-01-01"
    )
    assert sorted(ref.dataId["detector"] for ref in refs) == list(range(9))
    run_pipetask(
        repo,
        generation_pipeline("LSSTComCam", "cpFlat"),
        [raw, calib],
        "u/test/comcamFlat",
        exposure_query("LSSTComCam", comcam_night.flats),
        ["isr:doDefect=False", "isr:doDark=False"],
    )
    # Verification merges the nine detectors of each exposure.
    run_pipetask(
        repo,
        verification_pipeline("LSSTComCam", "verifyBias"),
        [raw, "u/test/comcamBias"],
        "u/test/comcamVerifyBias",
        exposure_query("LSSTComCam", comcam_night.biases),
    )
    with Butler.from_config(str(repo), collections=["u/test/comcamVerifyBias"]) as butler:
        stats = butler.get("verifyBiasStats", instrument="LSSTComCam")
        exp_stats = butler.get("verifyBiasExpStats", instrument="LSSTComCam", exposure=comcam_night.biases[0])
    names = [f"R22_S{d // 3}{d % 3}" for d in range(9)]
    assert set(exp_stats) == {*names, "SUCCESS"}
    # Two biases verified against their own mean: RN * sqrt(1/2), NOISE fails everywhere.
    failures = stats[comcam_night.biases[0]]["FAILURES"]
    assert {failure.split()[0] for failure in failures} == set(names)
    assert "R22_S11 C10 NOISE" in failures and stats["SUCCESS"] is False

    with Butler.from_config(str(repo), collections=["u/test/comcamFlat"]) as butler:
        scales = butler.get("cpFlatNormScales", instrument="LSSTComCam", physical_filter="r_03")
        means = {}
        for detector in range(9):
            flat = butler.get("flat", instrument="LSSTComCam", detector=detector, physical_filter="r_03")
            means[detector] = sigma_clipped_stats(flat.image.array).mean
            assert flat.metadata["DET_NAME"] == f"R22_S{detector // 3}{detector % 3}"
    assert scales["scaleMode"] == "EXPOSURE"
    # One factor per exposure: every detector of an exposure shares it.
    for per_detector in scales["scales"].values():
        assert len(set(per_detector.values())) == 1
    # The relative response survives: detector d sees 1 + 0.03 (d - 4) of the mean.
    focal_plane = np.mean(list(means.values()))
    expected_scale = comcam_night.flat_scale
    mean_scale = np.mean(list(expected_scale.values()))
    for detector, mean in means.items():
        assert mean / focal_plane == pytest.approx(expected_scale[detector] / mean_scale, abs=0.003), detector
