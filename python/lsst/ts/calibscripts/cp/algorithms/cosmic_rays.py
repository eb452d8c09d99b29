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
    """
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
    # Interpolate between cell centres; clamp beyond the outermost centres.
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
