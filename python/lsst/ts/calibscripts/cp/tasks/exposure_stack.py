"""A lazily read stack of processed exposures, and its clipped-mean combination.

Shared by the tasks that combine exposures of one detector:
`~lsst.ts.calibscripts.cp.tasks.combine.CalibCombineTask` (bias, dark, flat)
and `~lsst.ts.calibscripts.cp.tasks.defects.DefectsFindTask` (the dark and
flat combinations defects are found in). The numerical kernel is
`lsst.ts.calibscripts.cp.combine.combine`; this module feeds it from the
Butler without holding the whole stack, and adds the two-pass cosmic-ray
masking darks need.
"""

from __future__ import annotations

__all__ = ["ExposureStack", "combine_stack"]

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box, MaskedImage

from .. import combine as combine_algorithms
from ..cosmic_rays import CosmicRayConfig, find_cosmic_rays
from .image_conventions import EXPOSURE_ID_KEY

_log = logging.getLogger(__name__)

type CosmicRayFinder = Callable[[int, int, MaskedImage], np.ndarray]
"""``finder(input index, first row, cut-out)`` -> cosmic-ray pixels of the cut-out."""


def combine_stack(
    stack: ExposureStack,
    scales: Sequence[float] | None,
    *,
    exclude_planes: Sequence[str],
    config: combine_algorithms.CombineConfig,
    cosmic_rays: CosmicRayConfig | None = None,
) -> combine_algorithms.CombineResult:
    """Combine a stack with the clipped mean, optionally without cosmic rays.

    Parameters
    ----------
    stack
        The exposures.
    scales
        Each input is divided by its scale (dark time, flat normalization);
        `None` for no scaling.
    exclude_planes
        Input pixels with these mask planes are not combined.
    config
        Clipping and tiling.
    cosmic_rays
        If given, find cosmic rays in each input and exclude them.

    Returns
    -------
    result
        The combination (see `lsst.ts.calibscripts.cp.combine.CombineResult`).

    Notes
    -----
    Hot pixels and columns are as bright as cosmic rays in every input; only
    the difference from what the stack says the pixel should hold tells them
    apart. So with ``cosmic_rays`` the stack is combined once (the clipped
    mean already rejects most cosmic rays), cosmic rays are found in each
    input against that combination, and the stack is combined again without
    them.
    """
    result = _combine(stack, scales, exclude_planes, config)
    if cosmic_rays is None:
        return result
    stack.cosmic_ray_finder = _cosmic_ray_finder(result.image, scales, cosmic_rays)
    stack.drop_blocks()
    return _combine(stack, scales, exclude_planes, config)


def _combine(
    stack: ExposureStack,
    scales: Sequence[float] | None,
    exclude_planes: Sequence[str],
    config: combine_algorithms.CombineConfig,
) -> combine_algorithms.CombineResult:
    planes = list(exclude_planes)
    source = combine_algorithms.RowLoaderSource(
        stack.n_inputs,
        stack.shape,
        stack.read_rows,
        lambda index, y0, y1: stack.read_mask_rows(index, y0, y1, planes),
    )
    return combine_algorithms.combine(source, scales=scales, config=config)


def _cosmic_ray_finder(
    first_pass: np.ndarray, scales: Sequence[float] | None, config: CosmicRayConfig
) -> CosmicRayFinder:
    def finder(index: int, start: int, cutout: MaskedImage) -> np.ndarray:
        image = cutout.image.array
        scale = 1.0 if scales is None else float(scales[index])
        expected = first_pass[start : start + image.shape[0]] * np.float32(scale)
        variance = cutout.variance.array
        usable = np.isfinite(variance) & (variance > 0)
        if not usable.any():
            return np.zeros(image.shape, dtype=bool)
        # Pixels without a usable variance (NaN after ISR) borrow the
        # typical one; they are excluded anyway if masked.
        noise = np.sqrt(np.where(usable, variance, np.median(variance[usable])))
        found = find_cosmic_rays(image, noise, expected=np.nan_to_num(expected, nan=np.inf), config=config)
        if found.failed:
            _log.warning(
                "Cosmic-ray detection flagged %.1f%% of rows %d-%d of input %d; not masking them.",
                100 * found.fraction,
                start,
                start + image.shape[0],
                index,
            )
            return np.zeros(image.shape, dtype=bool)
        return found.mask

    return finder


class ExposureStack:
    """A stack of processed exposures read lazily, in blocks of rows.

    Serves the rows the combination asks for (`lsst.ts.calibscripts.cp.combine.
    RowLoaderSource`) from Butler cut-outs of ``rows_per_read`` rows. The
    combination asks for small tiles of rows, input after input; reading each
    tile separately would reopen every file hundreds of times, reading whole
    images would hold the whole stack. This keeps one block of rows of every
    input.

    Parameters
    ----------
    handles
        Deferred handles of ``MaskedImageV2`` datasets of one detector.
    rows_per_read
        Rows per cut-out.

    Raises
    ------
    ValueError
        If the images differ in shape.
    """

    def __init__(self, handles: Sequence[DeferredDatasetHandle], rows_per_read: int) -> None:
        self._handles = list(handles)
        self._rows_per_read = rows_per_read
        self._blocks: list[tuple[int, MaskedImage] | None] = [None] * len(self._handles)
        self._metadata: list[dict[str, Any]] = []
        self.cosmic_ray_finder: CosmicRayFinder | None = None
        """Function returning the cosmic-ray pixels of a block, if any."""
        shape: tuple[int, int] | None = None
        for handle in self._handles:
            # A one-row cut-out reads the metadata (JSON tree) and the bbox
            # cheaply; the full shape comes from the bbox component.
            bbox = handle.get(component="bbox")
            this_shape = (int(bbox.shape[0]), int(bbox.shape[1]))
            if shape is None:
                shape = this_shape
            elif this_shape != shape:
                raise ValueError(
                    f"Input {handle.dataId['exposure']} has shape {this_shape}, the first input {shape}: "
                    "inputs from different geometries cannot be combined."
                )
            cutout = handle.get(parameters={"bbox": Box.factory[0:1, 0 : this_shape[1]]})
            self._metadata.append(dict(cutout.metadata))
        assert shape is not None
        self.shape = shape

    @property
    def n_inputs(self) -> int:
        """Number of exposures in the stack."""
        return len(self._handles)

    def metadata(self, index: int) -> dict[str, Any]:
        """Metadata of exposure ``index`` (from the ISR output)."""
        return self._metadata[index]

    def exposure_id(self, index: int) -> int:
        """Exposure id of exposure ``index``."""
        value = self._metadata[index].get(EXPOSURE_ID_KEY)
        return int(value) if value is not None else int(self._handles[index].dataId["exposure"])

    def detector_id(self, index: int) -> int:
        """Detector id of exposure ``index``."""
        return int(self._handles[index].dataId["detector"])

    def drop_blocks(self) -> None:
        """Forget the cached blocks (before a second pass over the inputs)."""
        self._blocks = [None] * len(self._handles)

    def _block(self, index: int, y0: int) -> tuple[int, MaskedImage]:
        block = self._blocks[index]
        if block is not None and block[0] <= y0 < block[0] + block[1].image.array.shape[0]:
            return block
        start = (y0 // self._rows_per_read) * self._rows_per_read
        stop = min(start + self._rows_per_read, self.shape[0])
        cutout = self._handles[index].get(parameters={"bbox": Box.factory[start:stop, 0 : self.shape[1]]})
        if self.cosmic_ray_finder is not None:
            # Cosmic rays are a few pixels long, so finding them block by
            # block misses nothing but the growth across a block edge.
            cutout.mask.set("CR", self.cosmic_ray_finder(index, start, cutout))
        block = (start, cutout)
        self._blocks[index] = block
        return block

    def _pieces(self, index: int, y0: int, y1: int) -> list[tuple[MaskedImage, slice]]:
        # A tile of the combination may straddle two read blocks.
        pieces = []
        y = y0
        while y < y1:
            start, cutout = self._block(index, y)
            stop = min(y1, start + cutout.image.array.shape[0])
            pieces.append((cutout, slice(y - start, stop - start)))
            y = stop
        return pieces

    def read_rows(self, index: int, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` of exposure ``index``."""
        pieces = [cutout.image.array[rows] for cutout, rows in self._pieces(index, y0, y1)]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def read_mask_rows(self, index: int, y0: int, y1: int, planes: list[str]) -> np.ndarray | None:
        """Rows of exposure ``index`` with any of ``planes`` (or a cosmic ray) set, or `None`."""
        names = list(planes) + (["CR"] if self.cosmic_ray_finder is not None else [])
        if not names:
            return None
        pieces = []
        for cutout, rows in self._pieces(index, y0, y1):
            known = [name for name in names if name in cutout.mask.schema.names]
            bits = cutout.mask.schema.bitmask(*known) if known else np.zeros(1, dtype=cutout.mask.array.dtype)
            pieces.append(np.any(cutout.mask.array[rows] & bits, axis=-1))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
