"""Defects (bad pixels) from combined bias, dark and flat.

Thresholds (cp_pipe defaults):

* dark (e-/s): pixels above ``dark_hot_threshold`` = 3.0 e-/s are hot;
* flat (normalised): pixels below ``flat_cold_fraction`` = 0.9 times their
  amp's clipped mean are cold; optionally pixels more than
  ``flat_bright_sigma`` (4.8) clipped standard deviations above it are bright;
* bias (ADU): pixels more than ``bias_threshold`` = 1000 ADU from the amp's
  clipped mean are bad.

Then, within each amplifier, a column with at least ``column_min_bad`` = 50
bad pixels is filled between its lowest and highest bad pixel, except
across runs of at least ``column_min_gap`` = 30 good pixels, which split the
column into separately filled segments (an intermittent column stays
intermittent only where it is really good for a long stretch). Amp edges can
be marked bad too. The three types are merged as a union and expressed as
non-overlapping boxes ``(x0, y0, width, height)`` in assembled-detector
pixels: horizontal runs of each row, merged with identical runs of the next
rows, so a bad column is one tall box and an isolated pixel a 1 x 1 box.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from ..camera.geometry import Box, DetectorGeometry
from .statistics import sigma_clipped_stats

__all__ = [
    "DefectConfig",
    "DefectResult",
    "bad_pixels_from_bias",
    "boxes_to_mask",
    "boxes_to_table",
    "cold_pixels_from_flat",
    "fill_columns",
    "find_defects",
    "hot_pixels_from_dark",
    "mark_amp_edges",
    "mask_to_boxes",
    "table_to_boxes",
]


@dataclass(frozen=True)
class DefectConfig:
    """Defect-finding parameters.

    Parameters
    ----------
    dark_hot_threshold : `float`
        Dark current above which a pixel is hot, e-/s (3.0).
    flat_cold_fraction : `float`
        Fraction of the amp's clipped mean below which a flat pixel is cold
        (0.9).
    flat_bright_sigma : `float` or `None`
        If set, flat pixels this many clipped sigma above the amp mean are
        bad too (cp_pipe uses 4.8; off by default).
    bias_threshold : `float`
        Distance from the amp's clipped mean beyond which a bias pixel is
        bad, ADU (1000).
    column_min_bad : `int`
        Bad pixels in one amp column that trigger column filling (50).
    column_min_gap : `int`
        Good pixels that keep two parts of a column separate (30).
    amp_edge_width : `int`
        Pixels along every amp edge marked bad (0 = off).
    sigma : `float`
        Clip of the per-amp statistics (3.0).
    iterations : `int`
        Clip iterations (3).
    """

    dark_hot_threshold: float = 3.0
    flat_cold_fraction: float = 0.9
    flat_bright_sigma: float | None = None
    bias_threshold: float = 1000.0
    column_min_bad: int = 50
    column_min_gap: int = 30
    amp_edge_width: int = 0
    sigma: float = 3.0
    iterations: int = 3


def hot_pixels_from_dark(dark: np.ndarray, threshold: float = 3.0) -> np.ndarray:
    """Hot pixels of a combined dark (e-/s): ``dark > threshold``."""
    with np.errstate(invalid="ignore"):
        return np.asarray(dark > threshold)


def cold_pixels_from_flat(
    flat: np.ndarray,
    geometry: DetectorGeometry,
    fraction: float = 0.9,
    bright_sigma: float | None = None,
    sigma: float = 3.0,
    iterations: int = 3,
) -> np.ndarray:
    """Cold (and optionally bright) pixels of a combined flat, per amp.

    Parameters
    ----------
    flat : `numpy.ndarray`
        Assembled combined flat.
    geometry : `DetectorGeometry`
        Gives each amp's region.
    fraction : `float`, optional
        Pixels below ``fraction`` times the amp's clipped mean are cold.
    bright_sigma : `float`, optional
        If given, pixels above ``mean + bright_sigma * stdev`` are bad too.
    sigma, iterations
        Clip of the amp statistics.

    Returns
    -------
    mask : `numpy.ndarray`
        Boolean, assembled shape.
    """
    mask = np.zeros(flat.shape, dtype=bool)
    for amp in geometry:
        region = flat[amp.detector_slice]
        stats = sigma_clipped_stats(region, sigma, iterations)
        with np.errstate(invalid="ignore"):
            bad = region < fraction * stats.mean
            if bright_sigma is not None:
                bad |= region > stats.mean + bright_sigma * stats.stdev
        mask[amp.detector_slice] = bad
    return mask


def bad_pixels_from_bias(
    bias: np.ndarray,
    geometry: DetectorGeometry,
    threshold: float = 1000.0,
    sigma: float = 3.0,
    iterations: int = 3,
) -> np.ndarray:
    """Pixels of a combined bias more than ``threshold`` from their amp's clipped mean."""
    mask = np.zeros(bias.shape, dtype=bool)
    for amp in geometry:
        region = bias[amp.detector_slice]
        mean = sigma_clipped_stats(region, sigma, iterations).mean
        with np.errstate(invalid="ignore"):
            mask[amp.detector_slice] = np.abs(region - mean) > threshold
    return mask


def fill_columns(
    mask: np.ndarray, geometry: DetectorGeometry | None = None, min_bad: int = 50, min_gap: int = 30
) -> np.ndarray:
    """Fill bad columns, amp by amp.

    Parameters
    ----------
    mask : `numpy.ndarray`
        Boolean bad-pixel mask (not modified).
    geometry : `DetectorGeometry`, optional
        Fill within each amp's region; the whole image if `None`.
    min_bad : `int`, optional
        A column (within an amp) with at least this many bad pixels is filled.
    min_gap : `int`, optional
        A run of at least this many good pixels is left unfilled.

    Returns
    -------
    filled : `numpy.ndarray`
        A new mask.
    """
    filled = mask.copy()
    regions = (
        [amp.detector_slice for amp in geometry] if geometry is not None else [(slice(None), slice(None))]
    )
    for region in regions:
        view = filled[region]
        counts = view.sum(axis=0)
        for x in np.flatnonzero(counts >= min_bad):
            rows = np.flatnonzero(view[:, x])
            # Split where the good gap between consecutive bad pixels is long.
            breaks = np.flatnonzero(np.diff(rows) - 1 >= min_gap)
            starts = np.concatenate(([rows[0]], rows[breaks + 1]))
            ends = np.concatenate((rows[breaks], [rows[-1]]))
            for y0, y1 in zip(starts, ends, strict=True):
                view[y0 : y1 + 1, x] = True
    return filled


def mark_amp_edges(mask: np.ndarray, geometry: DetectorGeometry, width: int) -> np.ndarray:
    """Return a copy of ``mask`` with ``width`` pixels along every amp edge set."""
    marked = mask.copy()
    if width <= 0:
        return marked
    for amp in geometry:
        view = marked[amp.detector_slice]
        view[:width, :] = True
        view[-width:, :] = True
        view[:, :width] = True
        view[:, -width:] = True
    return marked


def mask_to_boxes(mask: np.ndarray) -> list[Box]:
    """Decompose a boolean mask into non-overlapping boxes covering it exactly.

    Horizontal runs of each row are merged with identical runs in the rows
    below, so a bad column becomes one tall box.
    """
    boxes: list[Box] = []
    open_runs: dict[tuple[int, int], int] = {}  # (x0, x1) -> first row
    ny = mask.shape[0]
    for y in range(ny + 1):
        runs: set[tuple[int, int]] = set()
        if y < ny:
            row = mask[y].astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate(([0], row, [0]))))
            runs = {(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)}
        for run in list(open_runs):
            if run not in runs:
                y0 = open_runs.pop(run)
                boxes.append(Box(x0=run[0], y0=y0, width=run[1] - run[0], height=y - y0))
        for run in runs:
            open_runs.setdefault(run, y)
    boxes.sort(key=lambda b: (b.y0, b.x0))
    return boxes


def boxes_to_mask(boxes: Iterable[Box], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise boxes into a boolean mask of ``shape``."""
    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        mask[box.slices] = True
    return mask


def boxes_to_table(boxes: Sequence[Box]) -> Table:
    """Defect boxes as an astropy Table with int32 columns x0, y0, width, height."""
    return Table(
        {
            "x0": np.array([b.x0 for b in boxes], dtype=np.int32),
            "y0": np.array([b.y0 for b in boxes], dtype=np.int32),
            "width": np.array([b.width for b in boxes], dtype=np.int32),
            "height": np.array([b.height for b in boxes], dtype=np.int32),
        }
    )


def table_to_boxes(table: Table) -> list[Box]:
    """Inverse of `boxes_to_table`.

    Raises
    ------
    KeyError
        If a column is missing.
    """
    missing = [c for c in ("x0", "y0", "width", "height") if c not in table.colnames]
    if missing:
        raise KeyError(f"Defect table lacks columns {missing}")
    return [
        Box(x0=int(r["x0"]), y0=int(r["y0"]), width=int(r["width"]), height=int(r["height"])) for r in table
    ]


@dataclass
class DefectResult:
    """Defects of one detector.

    Attributes
    ----------
    mask : `numpy.ndarray`
        Union of every type, after column filling (and edges).
    boxes : `list` [`Box`]
        ``mask`` as boxes.
    by_type : `dict` [`str`, `numpy.ndarray`]
        Masks per input (``"bias"``, ``"dark"``, ``"flat"``), each filled.
    """

    mask: np.ndarray
    boxes: list[Box]
    by_type: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self) -> Table:
        """Return the boxes as an astropy Table (see `boxes_to_table`)."""
        return boxes_to_table(self.boxes)


def find_defects(
    geometry: DetectorGeometry,
    *,
    bias: np.ndarray | None = None,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    config: DefectConfig | None = None,
) -> DefectResult:
    """Find defects from any of a combined bias, dark and flat and merge them.

    Parameters
    ----------
    geometry : `DetectorGeometry`
        Detector geometry; images are assembled.
    bias : `numpy.ndarray`, optional
        Combined bias, ADU.
    dark : `numpy.ndarray`, optional
        Combined dark, e-/s.
    flat : `numpy.ndarray`, optional
        Combined flat.
    config : `DefectConfig`, optional
        Thresholds.

    Returns
    -------
    result : `DefectResult`

    Raises
    ------
    ValueError
        If no image is given or one has the wrong shape.
    """
    config = config or DefectConfig()
    images = {"bias": bias, "dark": dark, "flat": flat}
    if all(image is None for image in images.values()):
        raise ValueError("find_defects needs at least one of bias, dark and flat")
    for name, image in images.items():
        if image is not None and image.shape != geometry.assembled_shape:
            raise ValueError(f"{name} has shape {image.shape}, detector is {geometry.assembled_shape}")
    by_type: dict[str, np.ndarray] = {}
    if bias is not None:
        by_type["bias"] = bad_pixels_from_bias(
            bias, geometry, config.bias_threshold, config.sigma, config.iterations
        )
    if dark is not None:
        by_type["dark"] = hot_pixels_from_dark(dark, config.dark_hot_threshold)
    if flat is not None:
        by_type["flat"] = cold_pixels_from_flat(
            flat,
            geometry,
            config.flat_cold_fraction,
            config.flat_bright_sigma,
            config.sigma,
            config.iterations,
        )
    for name in by_type:
        by_type[name] = fill_columns(by_type[name], geometry, config.column_min_bad, config.column_min_gap)
    mask = np.zeros(geometry.assembled_shape, dtype=bool)
    for partial in by_type.values():
        mask |= partial
    # Filling again after the union joins a column that is hot in part and
    # cold in part.
    mask = fill_columns(mask, geometry, config.column_min_bad, config.column_min_gap)
    mask = mark_amp_edges(mask, geometry, config.amp_edge_width)
    return DefectResult(mask=mask, boxes=mask_to_boxes(mask), by_type=by_type)
