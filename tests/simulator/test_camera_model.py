import numpy as np
import pytest

from lsst.ts.calibscripts.cp.camera.description import LATISS
from lsst.ts.calibscripts.cp.camera.geometry import reduced_itl_geometry
from lsst.ts.calibscripts.simulator.camera_model import ADC_MAX, CameraModel, CameraModelConfig

GEOMETRY = reduced_itl_geometry()
DETECTOR = LATISS.detector(0)


def make(seed=11, **config):
    return CameraModel(DETECTOR, GEOMETRY, seed=seed, config=CameraModelConfig(**config))


def test_reproducible_and_seed_dependent():
    a, b, c = make(seed=1), make(seed=1), make(seed=2)
    assert a.truth.hot_pixels == b.truth.hot_pixels
    assert a.truth.hot_pixels != c.truth.hot_pixels
    for _ in range(2):
        ea, eb = a.expose("DARK", 5.0), b.expose("DARK", 5.0)
        assert all(np.array_equal(ea[k], eb[k]) for k in ea)
    # An explicit exposure index replays that exposure.
    first = make(seed=1).expose("DARK", 5.0)
    again = a.expose("DARK", 5.0, exposure_index=0)
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_truth_matches_description_and_geometry():
    truth = make().truth
    assert truth.gains == dict(DETECTOR.gains)
    assert truth.read_noise == dict(DETECTOR.read_noise)
    ny, nx = GEOMETRY.assembled_shape
    assert truth.dark_current.shape == truth.illumination.shape == (ny, nx)
    assert len(truth.hot_pixels) == 16
    assert len(truth.cold_pixels) == 16
    assert len(truth.hot_columns) == 1
    assert len(truth.dead_columns) == 1
    for x, y in truth.hot_pixels:
        assert truth.dark_current[y, x] >= 8.0
    for x, y in truth.cold_pixels:
        assert truth.response[y, x] <= 0.7
    col = truth.hot_columns[0]
    assert np.all(truth.dark_current[col.y0 : col.y1, col.x] == 10.0)
    assert col.length == 60
    assert (truth.hot_mask() & truth.cold_mask()).sum() == 0
    for amp, level in truth.amp_dark_current.items():
        assert 1e-3 <= level <= 1e-2, amp
    # Vignetting: corners darker than the centre.
    assert truth.illumination[0, 0] == pytest.approx(0.88, abs=1e-3)
    assert truth.illumination[ny // 2, nx // 2] == pytest.approx(1.0, abs=1e-3)


def test_bias_overscan_has_bias_and_read_noise_only():
    model = make()
    amps = model.expose("BIAS")
    for amp in GEOMETRY:
        raw = amps[amp.name].astype(float)
        serial = raw[amp.serial_overscan_slice]
        # Remove the per-row drift before measuring the noise.
        residual = serial - np.median(serial, axis=1, keepdims=True)
        rn = model.truth.read_noise_adu[amp.name]
        assert np.std(residual) == pytest.approx(rn, rel=0.08)
        assert np.mean(serial) == pytest.approx(model.truth.bias_level[amp.name], abs=6.0)
        parallel = raw[amp.parallel_overscan_slice]
        assert np.mean(parallel) == pytest.approx(model.truth.bias_level[amp.name], abs=6.0)


def test_flat_signal_follows_gain_and_illumination():
    model = make(cosmic_ray_rate=0.0)
    flux, t = 5_000.0, 2.0
    flat = model.expose("FLAT", t, flux=flux)
    bias = model.expose("BIAS")
    for amp in GEOMETRY:
        signal = (flat[amp.name] - bias[amp.name]).astype(float)[amp.data_slice]
        expected = flux * t * model.truth.flat_field[amp.detector_slice] / model.truth.gains[amp.name]
        ratio = np.median(signal / amp.to_readout_orientation(expected))
        assert ratio == pytest.approx(1.0, abs=0.01), amp.name


def test_saturation_clips_signal():
    model = make(cosmic_ray_rate=0.0)
    amps = model.expose("FLAT", 10.0, flux=1e5)
    for amp in GEOMETRY:
        data = amps[amp.name][amp.data_slice]
        signal = np.median(data) - model.truth.bias_level[amp.name]
        assert signal == pytest.approx(DETECTOR.saturation, rel=0.002)
        assert data.max() <= ADC_MAX


def test_first_frame_after_idle_has_transient_in_data_only():
    model = make(cosmic_ray_rate=0.0)
    normal = model.expose("BIAS", exposure_index=5)
    idle = model.expose("BIAS", first_after_idle=True, exposure_index=5)
    for amp in GEOMETRY:
        diff = (idle[amp.name] - normal[amp.name]).astype(float)
        assert np.all(diff[amp.serial_overscan_slice] == 0)
        assert diff[amp.data_slice][0].mean() == pytest.approx(20.0, abs=1.0)
        assert diff[amp.data_slice][-1].mean() < 1.0


def test_cosmic_rays_scale_with_time():
    model = make(cosmic_ray_rate=2e-5)
    short = [model.simulate("DARK", 1.0).cosmic_ray_mask.sum() for _ in range(3)]
    long = [model.simulate("DARK", 60.0).cosmic_ray_mask.sum() for _ in range(3)]
    assert np.mean(long) > 5 * np.mean(short) > 0


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("BIAS", 1.0), {}, "zero exposure"),
        (("DARK", 1.0), {"flux": 3.0}, "shutter closed"),
        (("NOPE", 1.0), {}, "Unknown image type"),
        (("FLAT", 2.0), {"dark_time": 1.0}, "shorter"),
    ],
)
def test_bad_requests_are_refused(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make().expose(*args, **kwargs)
