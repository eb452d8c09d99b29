import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.combine import (
    ArraySource,
    CombineConfig,
    RowLoaderSource,
    _sort_rows,
    amp_percentiles,
    clipped_mean_scale,
    combine,
    combine_block,
)
from lsst.ts.calibscripts.cp.algorithms.cosmic_rays import CosmicRayConfig, find_cosmic_rays
from lsst.ts.calibscripts.cp.algorithms.statistics import sigma_clipped_stats

from ..conftest import amp_means, combined_bias, isr, make_model


def reference_combine(stack, masks, sigma, iterations, first_centre):
    """Pixel by pixel with the scalar clipped statistics: slow but obvious."""
    _, ny, nx = stack.shape
    mean = np.full((ny, nx), np.nan)
    count = np.zeros((ny, nx), dtype=int)
    for y in range(ny):
        for x in range(nx):
            mask = None if masks is None else masks[:, y, x]
            stats = sigma_clipped_stats(
                stack[:, y, x], sigma, iterations, mask=mask, first_centre=first_centre
            )
            mean[y, x], count[y, x] = stats.mean, stats.n
    return mean, count


@pytest.mark.parametrize("first_centre", ["median", "mean"])
@pytest.mark.parametrize("n_inputs", [1, 2, 3, 7, 20])
def test_combine_matches_reference(first_centre, n_inputs):
    rng = np.random.default_rng(n_inputs)
    ny, nx = 9, 31
    stack = rng.normal(50.0, 3.0, (n_inputs, ny, nx)).astype(np.float32)
    wild = rng.random(stack.shape) < 0.05
    stack[wild] += rng.choice([-1.0, 1.0], wild.sum()) * rng.uniform(10, 5000, wild.sum())
    stack[0, 0, 0] = np.nan
    masks = rng.random(stack.shape) < 0.03
    # Tiles of 4 rows: the driver's tiling and the short last tile are used.
    config = CombineConfig(first_centre=first_centre, tile_bytes=n_inputs * nx * 4 * 4)
    result = combine(list(stack), masks=list(masks), config=config)
    expected, count = reference_combine(stack, masks, 3.0, 3, first_centre)
    assert np.array_equal(result.n_used, count)
    assert np.array_equal(result.bad, count == 0)
    assert np.allclose(result.image, expected, rtol=0, atol=2e-4, equal_nan=True)


@pytest.mark.parametrize("n_inputs", [1, 2, 3, 8, 13, 20, 33])
def test_sorting_network_sorts_in_place(n_inputs):
    rng = np.random.default_rng(n_inputs)
    x = rng.normal(0, 1, (n_inputs, 257)).astype(np.float32)
    before = np.sort(x, axis=0)
    ranked = _sort_rows(x)
    assert np.array_equal(np.stack(ranked), before)
    # x still holds every value once (its rows permuted).
    assert np.array_equal(np.sort(x, axis=0), before)


def test_tiling_threads_and_sources_agree():
    rng = np.random.default_rng(5)
    images = [rng.normal(1000, 10, (64, 50)).astype(np.float32) for _ in range(11)]
    images[3][10, 10] = 1e6
    base = combine(images)
    for config in (CombineConfig(tile_bytes=1), CombineConfig(tile_bytes=10**9), CombineConfig(n_threads=2)):
        other = combine(images, config=config)
        assert np.array_equal(other.image, base.image)
        assert np.array_equal(other.n_used, base.n_used)
    loaded: list[tuple[int, int, int]] = []

    def load(index, y0, y1):
        loaded.append((index, y0, y1))
        return images[index][y0:y1]

    lazy = combine(RowLoaderSource(11, (64, 50), load), config=CombineConfig(tile_bytes=11 * 50 * 4 * 8))
    assert np.array_equal(lazy.image, base.image)
    # Rows were read block by block, never whole images.
    assert max(y1 - y0 for _, y0, y1 in loaded) == 8
    assert base.image[10, 10] < 1100
    assert base.n_used[10, 10] == 10

    # A source that reads blocks of 20 rows: tiles never straddle two blocks,
    # and with threads one block is finished before the next is asked for.
    loaded.clear()
    blocked = RowLoaderSource(11, (64, 50), load)
    blocked.block_rows = 20
    threaded = combine(blocked, config=CombineConfig(tile_bytes=11 * 50 * 4 * 7, n_threads=2))
    assert np.array_equal(threaded.image, base.image)
    assert np.array_equal(threaded.stdev, base.stdev, equal_nan=True)
    assert all(y0 // 20 == (y1 - 1) // 20 for _, y0, y1 in loaded)


def test_scales_and_errors():
    images = [np.full((4, 5), 10.0 * (i + 1)) for i in range(4)]
    result = combine(images, scales=[1, 2, 3, 4])
    assert np.allclose(result.image, 10.0)
    assert result.scales == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="positive"):
        combine(images, scales=[1, 0, 1, 1])
    with pytest.raises(ValueError, match="3 scales for 4 inputs"):
        combine(images, scales=[1, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        combine([])
    with pytest.raises(ValueError, match="shape"):
        combine([np.zeros((4, 5)), np.zeros((4, 6))])
    with pytest.raises(ValueError, match="StackSource"):
        combine(ArraySource(images), masks=[None] * 4)
    with pytest.raises(ValueError, match="float32"):
        combine_block(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="sigma"):
        CombineConfig(sigma=0)


def test_combined_bias_noise_is_read_noise_over_sqrt_n(detector, geometry):
    model = make_model(detector, geometry, seed=1, cosmic_ray_rate=0.0)
    n = 12
    bias, _ = combined_bias(model, n, model.truth.gains)
    # The fixed bias pattern survives (that is what a bias is for): compare
    # the combined bias minus it with the expected noise, per amp.
    for amp in geometry:
        gain = model.truth.gains[amp.name]
        # The pattern was added in ADU; the bias is in electrons.
        region = bias[amp.detector_slice] - gain * model.truth.bias_pattern[amp.detector_slice]
        rn = model.truth.read_noise[amp.name]
        # Each frame's per-row overscan level adds pi/2 * RN^2 / 58 per row.
        expected = rn * np.sqrt(1 + np.pi / 2 / 58) / np.sqrt(n)
        measured = float(np.std(region - np.mean(region)))
        assert measured == pytest.approx(expected, rel=0.07), amp.name


def test_dark_current_recovered_with_cosmic_rays_masked(detector, geometry):
    model = make_model(detector, geometry, seed=2, cosmic_ray_rate=1e-6)
    gains = model.truth.gains
    bias, _ = combined_bias(model, 10, gains)
    dark_time = 600.0
    darks = []
    truth_cr = []
    for _ in range(8):
        exposure = model.simulate("DARK", dark_time)
        darks.append(isr(exposure.amps, geometry, gains, bias=bias).image)
        truth_cr.append(exposure.cosmic_ray_mask)
    # First pass without masks: its robust mean is the expected signal of
    # each input, so hot pixels are not taken for cosmic rays.
    first = combine(darks).image
    rn = np.zeros(geometry.assembled_shape, dtype=np.float32)
    for amp in geometry:
        rn[amp.detector_slice] = model.truth.read_noise[amp.name]
    noise = np.sqrt(rn**2 + np.clip(first, 0, None))
    masks = [
        find_cosmic_rays(d, noise, expected=first, config=CosmicRayConfig(threshold=5.0, grow=2)).mask
        for d in darks
    ]
    for found, truth in zip(masks, truth_cr, strict=True):
        assert truth.sum() > 20
        # Nearly every deposited pixel is masked (the faintest tail may not be).
        assert (found & truth).sum() >= 0.95 * truth.sum()
    result = combine(darks, scales=[dark_time] * len(darks), masks=masks)
    dark = result.image
    hot = model.truth.hot_mask()
    for amp in geometry:
        region = dark[amp.detector_slice][~hot[amp.detector_slice]]
        true_level = model.truth.amp_dark_current[amp.name]
        # The combined bias's own noise limits this: ~3e-4 e-/s per amp.
        assert float(np.mean(region)) == pytest.approx(true_level, abs=6e-4), amp.name
    for x, y in model.truth.hot_pixels:
        assert dark[y, x] == pytest.approx(model.truth.dark_current[y, x], rel=0.05, abs=0.05)
    # Without masks the cosmic-ray halos leak into the mean.
    unmasked = combine(darks, scales=[dark_time] * len(darks)).image
    leak = float(np.mean(unmasked[~hot]) - np.mean(dark[~hot]))
    assert leak > 0


def test_flat_normalised_follows_illumination(detector, geometry):
    model = make_model(detector, geometry, seed=3, cosmic_ray_rate=0.0)
    gains = model.truth.gains
    bias, _ = combined_bias(model, 5, gains)
    flats = [
        isr(model.expose("FLAT", 1.0, flux=20_000.0), geometry, gains, bias=bias).image for _ in range(10)
    ]
    scales = [clipped_mean_scale(f) for f in flats]
    flat = combine(flats, scales=scales).image
    assert float(np.mean(flat)) == pytest.approx(1.0, abs=0.01)
    # Normalised like each input: by its clipped mean.
    expected = model.truth.flat_field / clipped_mean_scale(model.truth.flat_field)
    ratio = flat / expected
    # Per-pixel noise: 1 / sqrt(10 * 20000 e-) = 0.22%.
    assert float(np.std(ratio)) < 0.004
    assert float(np.median(ratio)) == pytest.approx(1.0, abs=0.002)
    # Vignetting: the corners are darker by the model's amount.
    corner, centre = float(np.mean(flat[:8, :8])), float(np.mean(flat[96:104, 252:260]))
    true_corner = float(np.mean(expected[:8, :8])) / float(np.mean(expected[96:104, 252:260]))
    assert corner / centre == pytest.approx(true_corner, abs=0.005)
    assert true_corner < 0.9
    # Gains applied: no step between amps.
    means = amp_means(flat / expected, geometry)
    assert max(means.values()) - min(means.values()) < 0.003


def test_amp_percentiles(geometry):
    image = np.zeros(geometry.assembled_shape)
    for i, amp in enumerate(geometry):
        image[amp.detector_slice] = i
    result = amp_percentiles(image, geometry)
    assert result["C10"][50.0] == 0
    assert result["C00"][100.0] == 15
    assert list(result["C10"]) == [0.0, 5.0, 16.0, 50.0, 84.0, 95.0, 100.0]
