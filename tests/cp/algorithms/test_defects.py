import numpy as np
import pytest

from lsst.ts.calibscripts.cp.algorithms.combine import clipped_mean_scale, combine
from lsst.ts.calibscripts.cp.algorithms.defects import (
    DefectConfig,
    boxes_to_mask,
    boxes_to_table,
    fill_columns,
    find_defects,
    mask_to_boxes,
    table_to_boxes,
)
from lsst.ts.calibscripts.cp.camera.geometry import Box

from ..conftest import combined_bias, isr, make_model


@pytest.fixture(scope="module")
def bootstrap(detector, geometry):
    """Combined bias (ADU), dark (e-/s) and flat of the model."""
    model = make_model(detector, geometry, seed=9, cosmic_ray_rate=0.0)
    gains = model.truth.gains
    bias_adu, _ = combined_bias(model, 10)
    bias_e, _ = combined_bias(model, 10, gains)
    darks = [isr(model.expose("DARK", 300.0), geometry, gains, bias=bias_e).image for _ in range(5)]
    dark = combine(darks, scales=[300.0] * 5).image
    flats = [
        isr(model.expose("FLAT", 1.0, flux=20_000.0), geometry, gains, bias=bias_e).image for _ in range(8)
    ]
    flat = combine(flats, scales=[clipped_mean_scale(f) for f in flats]).image
    return model, bias_adu, dark, flat


def test_planted_defects_are_found(bootstrap, geometry):
    model, bias, dark, flat = bootstrap
    result = find_defects(geometry, bias=bias, dark=dark, flat=flat)
    truth = model.truth
    for x, y in truth.hot_pixels:
        assert result.mask[y, x], ("hot", x, y)
    for x, y in truth.cold_pixels:
        assert result.mask[y, x], ("cold", x, y)
    for col in truth.hot_columns + truth.dead_columns:
        assert result.mask[col.y0 : col.y1, col.x].all(), col
    false = result.mask & ~truth.defect_mask()
    assert false.sum() <= 3
    # Boxes: a column is one box; the union is exactly the mask.
    assert np.array_equal(boxes_to_mask(result.boxes, geometry.assembled_shape), result.mask)
    assert any(b.width == 1 and b.height >= 60 for b in result.boxes)
    assert result.by_type["bias"].sum() == 0
    assert result.by_type["dark"].sum() >= len(truth.hot_pixels)


def test_bias_and_bright_flat_pixels(geometry):
    bias = np.full(geometry.assembled_shape, 5.0)
    bias[20, 30] = 2000.0
    flat = np.ones(geometry.assembled_shape) + np.random.default_rng(0).normal(
        0, 0.01, geometry.assembled_shape
    )
    flat[50, 70] = 1.3
    result = find_defects(geometry, bias=bias, flat=flat, config=DefectConfig(flat_bright_sigma=4.8))
    assert result.mask[20, 30]
    assert result.mask[50, 70]
    # A 4.8-sigma cut may catch one Gaussian tail pixel in 10^5.
    assert result.mask.sum() <= 3
    edges = find_defects(
        geometry, bias=np.zeros(geometry.assembled_shape), config=DefectConfig(amp_edge_width=1)
    )
    assert edges.mask[0, :].all()
    assert edges.mask[:, 63].all()
    with pytest.raises(ValueError, match="at least one"):
        find_defects(geometry)
    with pytest.raises(ValueError, match="shape"):
        find_defects(geometry, dark=np.zeros((3, 3)))


def test_column_filling():
    mask = np.zeros((200, 10), dtype=bool)
    # Column 2: 30 + 30 bad pixels split by a 40-pixel good gap: two segments.
    mask[10:70:2, 2] = True
    mask[110:170:2, 2] = True
    # Column 5: 60 bad pixels with short gaps: filled end to end.
    mask[20:140:2, 5] = True
    # Column 8: only 20 bad pixels: left alone.
    mask[0:40:2, 8] = True
    filled = fill_columns(mask)
    assert filled[10:69, 2].all()
    assert filled[110:169, 2].all()
    assert not filled[69:110, 2].any()
    assert filled[20:139, 5].all()
    assert filled[:, 8].sum() == 20


def test_boxes_and_table_round_trip():
    rng = np.random.default_rng(4)
    mask = rng.random((40, 50)) < 0.1
    mask[:, 7] = True
    boxes = mask_to_boxes(mask)
    assert np.array_equal(boxes_to_mask(boxes, mask.shape), mask)
    assert sum(b.width * b.height for b in boxes) == mask.sum()  # no overlaps
    assert Box(7, 0, 1, 40) in boxes or any(b.x0 <= 7 < b.x1 and b.height > 1 for b in boxes)
    table = boxes_to_table(boxes)
    assert table.colnames == ["x0", "y0", "width", "height"]
    assert table_to_boxes(table) == boxes
    with pytest.raises(KeyError, match="width"):
        table_to_boxes(table[["x0", "y0", "height"]])
