import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.cosmic_rays import (
    CosmicRayConfig,
    _smooth_background_reference,
    find_cosmic_rays,
    smooth_background,
)

from ..conftest import combined_bias, isr, make_model


def test_finds_the_models_cosmic_rays(detector, geometry):
    model = make_model(detector, geometry, seed=4, cosmic_ray_rate=2e-6)
    gains = model.truth.gains
    bias, _ = combined_bias(model, 5, gains)
    exposure = model.simulate("DARK", 60.0)
    image = isr(exposure.amps, geometry, gains, bias=bias).image
    result = find_cosmic_rays(image, 10.0, exclude=model.truth.hot_mask())
    truth = exposure.cosmic_ray_mask
    assert truth.sum() > 20
    assert result.n_cosmic_rays > 0
    assert (result.mask & truth).sum() >= 0.97 * truth.sum()
    # Everything flagged is a cosmic ray or its 2-pixel halo.
    halo = np.zeros_like(truth)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            halo |= np.roll(np.roll(truth, dy, axis=0), dx, axis=1)
    assert (result.mask & ~halo).sum() == 0
    assert not result.failed


def test_expected_signal_protects_hot_pixels():
    image = np.zeros((50, 60), dtype=np.float32)
    image[10, 10] = 500.0  # a hot pixel, also in the expected signal
    image[30, 40] = 500.0  # a cosmic ray
    expected = np.zeros_like(image)
    expected[10, 10] = 500.0
    result = find_cosmic_rays(image, 5.0, expected=expected, config=CosmicRayConfig(grow=1))
    assert result.mask[30, 40]
    assert result.mask[29:32, 39:42].all()
    assert not result.mask[10, 10]
    assert result.mask.sum() == 9


def test_failure_and_errors():
    rng = np.random.default_rng(1)
    noisy = rng.normal(0, 50.0, (64, 64))
    # Claiming a noise of 1 flags much of the image: detection "failed".
    assert find_cosmic_rays(noisy, 1.0).failed
    with pytest.raises(ValueError, match="positive"):
        find_cosmic_rays(noisy, 0.0)
    with pytest.raises(ValueError, match="shape"):
        find_cosmic_rays(noisy, 1.0, expected=np.zeros((3, 3)))


def test_smooth_background_follows_gradients():
    y, x = np.mgrid[0:200, 0:300]
    image = (100 + 0.5 * x + 0.2 * y).astype(np.float32)
    background = smooth_background(image, cell_size=50)
    interior = (slice(25, 175), slice(25, 275))
    assert np.allclose(background[interior], image[interior], atol=0.5)


@pytest.mark.parametrize("shape", [(2000, 509), (200, 50), (131, 77), (64, 64), (30, 20), (1, 300), (129, 1)])
@pytest.mark.parametrize("cell_size", [64, 50, 7])
def test_smooth_background_is_bit_identical_to_map_coordinates(shape, cell_size):
    """The vectorised background equals the cell loop and scipy.ndimage.map_coordinates exactly."""
    rng = np.random.default_rng(sum(shape) + cell_size)
    ramp = np.linspace(0.0, 40.0, shape[1], dtype=np.float32)
    image = (rng.normal(0.0, 7.0, shape) + ramp).astype(np.float32)
    assert np.array_equal(smooth_background(image, cell_size), _smooth_background_reference(image, cell_size))
    if min(shape) > 20:
        image[3:15, 2:12] = np.nan
        image[-1, -1] = np.inf
        assert np.array_equal(
            smooth_background(image, cell_size), _smooth_background_reference(image, cell_size)
        )
