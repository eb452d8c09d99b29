"""Cosmic-ray detection in a single image.

A pixel is a cosmic-ray candidate when it exceeds the expected signal by
more than ``threshold`` times the noise; candidates are grown by ``grow``
pixels in every direction (the halo of charge around a track is below
threshold but still wrong).

The expected signal is either given (e.g. a combined dark scaled to the
exposure's dark time, or a first-pass combination of the stack), which keeps
hot pixels and other static structure from being taken for cosmic rays, or
estimated as a smooth local background: the median of coarse cells,
interpolated bilinearly. The coarse background is cheap (no per-pixel median
filter) and adequate for bias, dark and flat residuals, whose structure is
smooth on the scale of a cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .statistics import median_last_axis

__all__ = [
    "CosmicRayConfig",
    "CosmicRayResult",
    "find_cosmic_rays",
    "smooth_background",
]


@dataclass(frozen=True)
class CosmicRayConfig:
    """Parameters of cosmic-ray detection.

    Parameters
    ----------
    threshold : `float`
        Detection threshold above the expected signal, in units of the noise
        (default 5.0).
    grow : `int`
        Growth radius of each detection, pixels (default 2).
    cell_size : `int`
        Cell size of the smooth background, pixels (default 64).
    max_fraction : `float`
        If more than this fraction of pixels is flagged, detection is deemed
        to have failed (default 0.05): the "noise" cannot be right.
    """

    threshold: float = 5.0
    grow: int = 2
    cell_size: int = 64
    max_fraction: float = 0.05


@dataclass(frozen=True)
class CosmicRayResult:
    """Result of `find_cosmic_rays`.

    Attributes
    ----------
    mask : `numpy.ndarray`
        Boolean image, `True` on (grown) cosmic-ray pixels.
    n_cosmic_rays : `int`
        Number of connected detections before growing.
    fraction : `float`
        Fraction of pixels flagged after growing.
    failed : `bool`
        `True` if ``fraction`` exceeds the configured maximum.
    """

    mask: np.ndarray
    n_cosmic_rays: int
    fraction: float
    failed: bool


def smooth_background(image: np.ndarray, cell_size: int = 64) -> np.ndarray:
    """Smooth background: medians of coarse cells, bilinearly interpolated.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image; non-finite pixels are ignored.
    cell_size : `int`, optional
        Cell size, pixels (cells at the edges may be larger).

    Returns
    -------
    background : `numpy.ndarray`
        ``float32`` array of the image's shape.

    Notes
    -----
    Vectorised: the cells of each shape are stacked and their medians taken
    in one call (from sorted values); the bilinear interpolation is the arithmetic of
    `scipy.ndimage.map_coordinates` (``order=1``, ``mode="nearest"``) done
    on whole arrays, in the same order, so the result is the same to the
    last bit as interpolating pixel by pixel (`_smooth_background_reference`
    is that definition; the tests compare the two).
    """
    ny, nx = image.shape
    cy, cx = max(1, ny // cell_size), max(1, nx // cell_size)
    y_edges = np.linspace(0, ny, cy + 1).astype(int)
    x_edges = np.linspace(0, nx, cx + 1).astype(int)
    cells = _cell_medians(image, y_edges, x_edges)
    if np.isnan(cells).all():
        return np.zeros(image.shape, dtype=np.float32)
    cells = np.where(np.isnan(cells), np.nanmedian(cells), cells)
    # Interpolate between cell centres; clamp beyond the outermost centres.
    y_centres = (y_edges[:-1] + y_edges[1:] - 1) / 2.0
    x_centres = (x_edges[:-1] + x_edges[1:] - 1) / 2.0
    y_pos = np.interp(np.arange(ny), y_centres, np.arange(cy))
    x_pos = np.interp(np.arange(nx), x_centres, np.arange(cx))
    y_low, y_high, y_w0, y_w1 = _linear_weights(y_pos, cy)
    x_low, x_high, x_w0, x_w1 = _linear_weights(x_pos, cx)
    # map_coordinates sums, for each pixel, (cell * y weight) * x weight over
    # the corners (y0, x0), (y0, x1), (y1, x0), (y1, x1), starting from 0.0.
    # The products with the y weights depend on the row only: computed once
    # per row and cell column.
    top = cells[y_low] * y_w0[:, None]
    bottom = cells[y_high] * y_w1[:, None]
    background = np.empty((ny, nx), dtype=np.float32)
    # Columns between two cell centres share their two cells: one strip at
    # a time (cache-sized), the cells broadcast along the strip.
    boundaries = np.flatnonzero((np.diff(x_low) != 0) | (np.diff(x_high) != 0)) + 1
    for start, stop in zip(
        np.concatenate([[0], boundaries]), np.concatenate([boundaries, [nx]]), strict=True
    ):
        low, high = x_low[start], x_high[start]
        w0, w1 = x_w0[start:stop], x_w1[start:stop]
        total = np.zeros((ny, stop - start), dtype=np.float64)
        total += top[:, low, None] * w0
        total += top[:, high, None] * w1
        total += bottom[:, low, None] * w0
        total += bottom[:, high, None] * w1
        background[:, start:stop] = total
    return background


def _cell_medians(image: np.ndarray, y_edges: np.ndarray, x_edges: np.ndarray) -> np.ndarray:
    """Median of the finite pixels of each cell (NaN for a cell with none)."""
    cy, cx = len(y_edges) - 1, len(x_edges) - 1
    cells = np.empty((cy, cx), dtype=np.float64)
    if not np.isfinite(image).all():
        for i in range(cy):
            for j in range(cx):
                block = image[y_edges[i] : y_edges[i + 1], x_edges[j] : x_edges[j + 1]]
                finite = block[np.isfinite(block)]
                cells[i, j] = np.median(finite) if finite.size else np.nan
        return cells
    heights, widths = np.diff(y_edges), np.diff(x_edges)
    # Cells of one shape, stacked: one median call per shape (at most four).
    for height in np.unique(heights):
        rows_i = np.flatnonzero(heights == height)
        for width in np.unique(widths):
            cols_j = np.flatnonzero(widths == width)
            rows = y_edges[rows_i][:, None] + np.arange(height)
            cols = x_edges[cols_j][:, None] + np.arange(width)
            stack = image[rows[:, None, :, None], cols[None, :, None, :]]
            cells[np.ix_(rows_i, cols_j)] = median_last_axis(stack.reshape(len(rows_i), len(cols_j), -1))
    return cells


def _linear_weights(position: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours and weights of order-1 spline interpolation, as scipy.ndimage computes them.

    ``position`` lies in ``[0, size - 1]``. The second neighbour of the last
    index is its mirror image (ndimage's border rule), with weight 0.
    """
    low = np.floor(position).astype(np.intp)
    fraction = position - low
    w0 = 1.0 - fraction
    w1 = 1.0 - w0  # ndimage: the last weight is 1 minus the others
    high = np.where(low + 1 >= size, 2 * size - 2 - (low + 1), low + 1) if size > 1 else np.zeros_like(low)
    return low, high, w0, w1


def _smooth_background_reference(image: np.ndarray, cell_size: int = 64) -> np.ndarray:
    """`smooth_background` as first written: a loop over cells and `scipy.ndimage.map_coordinates`."""
    ny, nx = image.shape
    cy, cx = max(1, ny // cell_size), max(1, nx // cell_size)
    y_edges = np.linspace(0, ny, cy + 1).astype(int)
    x_edges = np.linspace(0, nx, cx + 1).astype(int)
    cells = np.empty((cy, cx), dtype=np.float64)
    for i in range(cy):
        for j in range(cx):
            block = image[y_edges[i] : y_edges[i + 1], x_edges[j] : x_edges[j + 1]]
            finite = block[np.isfinite(block)]
            cells[i, j] = np.median(finite) if finite.size else np.nan
    if np.isnan(cells).all():
        return np.zeros(image.shape, dtype=np.float32)
    cells = np.where(np.isnan(cells), np.nanmedian(cells), cells)
    y_centres = (y_edges[:-1] + y_edges[1:] - 1) / 2.0
    x_centres = (x_edges[:-1] + x_edges[1:] - 1) / 2.0
    y_pos = np.interp(np.arange(ny), y_centres, np.arange(cy))
    x_pos = np.interp(np.arange(nx), x_centres, np.arange(cx))
    coords = np.meshgrid(y_pos, x_pos, indexing="ij")
    return ndimage.map_coordinates(cells, coords, order=1, mode="nearest").astype(np.float32)


def find_cosmic_rays(
    image: np.ndarray,
    noise: float | np.ndarray,
    *,
    expected: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    config: CosmicRayConfig | None = None,
) -> CosmicRayResult:
    """Find cosmic rays in one image.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image (e.g. an ISR-processed dark, in electrons or ADU).
    noise : `float` or `numpy.ndarray`
        Noise per pixel in the image's units (scalar, or an array of the
        image's shape, e.g. ``sqrt(read_noise**2 + expected)``).
    expected : `numpy.ndarray`, optional
        Expected signal per pixel; by default `smooth_background`.
    exclude : `numpy.ndarray`, optional
        Pixels never to flag (e.g. known defects).
    config : `CosmicRayConfig`, optional
        Threshold, growth and failure limit.

    Returns
    -------
    result : `CosmicRayResult`
        Mask, count and whether detection failed.

    Raises
    ------
    ValueError
        If the noise is not positive or shapes differ.
    """
    config = config or CosmicRayConfig()
    noise_array = np.asarray(noise, dtype=np.float32)
    if np.any(~(noise_array > 0)):
        raise ValueError("noise must be positive and finite everywhere")
    if expected is None:
        expected = smooth_background(image, config.cell_size)
    elif expected.shape != image.shape:
        raise ValueError(f"expected has shape {expected.shape}, image has {image.shape}")
    with np.errstate(invalid="ignore"):
        candidates = (image - expected) > config.threshold * noise_array
    if exclude is not None:
        candidates &= ~exclude
    # 8-connectivity: a diagonal track is one cosmic ray.
    _, n_found = ndimage.label(candidates, structure=np.ones((3, 3), dtype=bool))
    if config.grow > 0 and n_found:
        size = 2 * config.grow + 1
        mask = ndimage.maximum_filter(candidates.view(np.uint8), size=size).astype(bool)
    else:
        mask = candidates
    fraction = float(mask.mean()) if mask.size else 0.0
    return CosmicRayResult(
        mask=mask, n_cosmic_rays=int(n_found), fraction=fraction, failed=fraction > config.max_fraction
    )
