"""The figures, from made-up section data (no repository): each is a PNG of the expected size."""

from __future__ import annotations

import datetime
import io

import numpy as np
import pytest
from matplotlib.image import imread

from lsst.ts.calibscripts.cp.camera.description import LATISS, LSST_COMCAM
from lsst.ts.calibscripts.cp.camera.geometry import AMP_NAMES, Box
from lsst.ts.calibscripts.report import figures
from lsst.ts.calibscripts.report.extract import CalibrationImage, GainRow, HistoryPoint, PtcAmp, PtcDetector


def png_shape(content: bytes) -> tuple[int, ...]:
    assert content.startswith(b"\x89PNG")
    return tuple(imread(io.BytesIO(content)).shape)


def image(detector: int, name: str, pixels: np.ndarray, **kwargs: object) -> CalibrationImage:
    return CalibrationImage(
        kind="bias",
        title="combined bias",
        collection="u/ocps/1",
        detector=detector,
        detector_name=name,
        pixels=pixels,
        binning=10,
        shape=(pixels.shape[0] * 10, pixels.shape[1] * 10),
        units="ADU",
        **kwargs,  # type: ignore[arg-type]
    )


def test_zscale_limits_ignore_outliers_and_nan() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.normal(100, 1, (100, 100)).astype(np.float32)
    pixels[0, :10] = 1e6
    pixels[1, :10] = np.nan
    vmin, vmax = figures.zscale_limits(pixels)
    assert 90 < vmin < 100 < vmax < 110
    assert figures.zscale_limits(np.full((3, 3), np.nan)) == (0.0, 1.0)
    assert figures.zscale_limits(np.zeros((3, 3)))[1] > 0


def test_image_with_defects() -> None:
    pixels = np.random.default_rng(2).normal(0, 1, (40, 100)).astype(np.float32)
    content = figures.image_figure(image(0, "RXX_S00", pixels, defects=[Box(10, 20, 1, 200)]))
    height, width, _ = png_shape(content)
    assert width > height > 100


def test_mosaic_places_comcams_nine_detectors() -> None:
    images = [
        image(d.id, d.full_name, np.full((20, 20), float(d.id), dtype=np.float32))
        for d in LSST_COMCAM.detectors
    ]
    height, width, _ = png_shape(figures.mosaic_figure(images, LSST_COMCAM))
    assert width > height > 400


def test_gain_ptc_and_history_figures() -> None:
    gains = LATISS.detector(0).gains
    rows = [
        GainRow("u/ocps/1", (1, 2), t, 0, "RXX_S00", amp, 1000 * t, gains[amp] * 1.01, 8.0, gains[amp])
        for amp in AMP_NAMES
        for t in (1.0, 5.0)
    ]
    assert png_shape(figures.gain_figure(rows))[1] > 800
    means = np.array([100.0, 1000.0, 10000.0, 30000.0])
    amps = [
        PtcAmp(
            amp,
            means,
            means / 1.1,
            np.array([True, True, True, False]),
            1.1,
            0.01,
            8.0,
            0.2,
            -1e-6,
            1e4,
            1.0,
            "OK" if amp != "C00" else "too few points",
        )
        for amp in AMP_NAMES
    ]
    assert png_shape(figures.ptc_figure(PtcDetector("u/ocps/2", 0, "RXX_S00", amps, ["C00"])))[1] > 800
    day = datetime.datetime(2022, 9, 29, 20)
    points = [
        HistoryPoint("gain", day + datetime.timedelta(days=k), f"run{k}", source, 0, "RXX_S00", amp, 1.1)
        for k in range(3)
        for source in ("PTC", "flat pairs")
        for amp in AMP_NAMES
    ] + [HistoryPoint("bias level", day, "run0", "bias", 0, "RXX_S00", "", 0.2)]
    truth = {(0, amp): gains[amp] for amp in AMP_NAMES}
    assert (
        png_shape(figures.history_figure(points, "gain", "e-/ADU", truth=truth, current_runs=["run2"]))[0]
        > 200
    )
    assert png_shape(figures.history_figure(points, "bias level", "ADU"))[0] > 200


@pytest.mark.parametrize("value", [np.nan, 1.0])
def test_ptc_model_nan_when_the_fit_failed(value: float) -> None:
    amp = PtcAmp("C10", np.array([1.0]), np.array([1.0]), np.array([True]), value, 0, 1, 0, 0, 0, 0, "failed")
    assert np.isnan(amp.model(np.array([10.0]))).all()
