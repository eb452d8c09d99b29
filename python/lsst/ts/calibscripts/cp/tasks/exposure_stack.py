"""A lazily read stack of processed exposures, and its clipped-mean combination.

Shared by the tasks that combine exposures of one detector:
`~lsst.ts.calibscripts.cp.tasks.combine.CalibCombineTask` (bias, dark, flat)
and `~lsst.ts.calibscripts.cp.tasks.defects.DefectsFindTask` (the dark and
flat combinations defects are found in). The numerical kernel is
`lsst.ts.calibscripts.cp.algorithms.combine.combine`; this module feeds it from the
Butler without holding the whole stack, and adds the two-pass cosmic-ray
masking darks need.

Each input file is opened once and its blocks of rows are read straight from
it (`lsst.ts.calibscripts.cp.butler.image_file.ImageFile`): no Butler read,
no Astropy HDU objects per block. An input that is not a local file of a
layout read that way is read through Butler cut-outs, with the same values.
"""

from __future__ import annotations

__all__ = ["ExposureStack", "combine_stack"]

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from lsst.daf.butler import DeferredDatasetHandle
from lsst.images import Box, MaskSchema

from ..algorithms import combine as combine_algorithms
from ..algorithms.cosmic_rays import CosmicRayConfig, find_cosmic_rays
from ..butler.image_file import ImageFile, local_path
from .image_conventions import EXPOSURE_ID_KEY

_log = logging.getLogger(__name__)

type CosmicRayFinder = Callable[[int, int, np.ndarray, np.ndarray], np.ndarray]
"""``finder(input index, first row, image rows, variance rows)`` -> cosmic-ray pixels of the rows."""

type MaskBits = Callable[[list[str]], np.ndarray | int]
"""``bits(plane names)`` -> the bits of those mask planes in a block's mask array."""


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
        The combination (see `lsst.ts.calibscripts.cp.algorithms.combine.CombineResult`).

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
    # The blocks of rows (one per input, hundreds of MiB at full size) are
    # not needed after a pass: free them before the caller builds its output.
    stack.drop_blocks()
    if cosmic_rays is None:
        return result
    stack.cosmic_ray_finder = _cosmic_ray_finder(result.image, scales, cosmic_rays)
    result = _combine(stack, scales, exclude_planes, config)
    stack.drop_blocks()
    return result


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
    source.block_rows = stack.rows_per_read
    return combine_algorithms.combine(source, scales=scales, config=config)


def _cosmic_ray_finder(
    first_pass: np.ndarray, scales: Sequence[float] | None, config: CosmicRayConfig
) -> CosmicRayFinder:
    def finder(index: int, start: int, image: np.ndarray, variance: np.ndarray) -> np.ndarray:
        scale = 1.0 if scales is None else float(scales[index])
        expected = first_pass[start : start + image.shape[0]] * np.float32(scale)
        usable = np.isfinite(variance) & (variance > 0)
        if not usable.any():
            return np.zeros(image.shape, dtype=bool)
        # Pixels without a usable variance (NaN after ISR) borrow the
        # typical one; they are excluded anyway if masked. The median (a
        # partition of the whole block) is only taken when some need it.
        if usable.all():
            noise = np.sqrt(variance)
        else:
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


@dataclasses.dataclass(frozen=True)
class _Block:
    """Rows ``[start, start + len(image))`` of one input, as read."""

    start: int
    image: np.ndarray
    mask: np.ndarray
    """The mask's array: ``(rows, columns, bytes)`` as lsst-images holds it,
    or ``(rows, columns)`` integers as the file stores it."""
    bits: MaskBits
    cosmic_rays: np.ndarray | None
    """Cosmic rays found in these rows, if a finder is set."""


@dataclasses.dataclass(frozen=True)
class _Piece:
    """The rows of one block that a tile of the combination covers."""

    image: np.ndarray
    mask: np.ndarray
    bits: MaskBits
    cosmic_rays: np.ndarray | None

    def excluded(self, names: list[str]) -> np.ndarray:
        """Pixels with any of the named mask planes set."""
        bits = self.bits(names)
        if self.mask.ndim == 3:
            return np.any(self.mask & bits, axis=-1)
        return (self.mask & bits) != 0


class ExposureStack:
    """A stack of processed exposures read lazily, in blocks of rows.

    Serves the rows the combination asks for (`lsst.ts.calibscripts.cp.algorithms.combine.
    RowLoaderSource`) from blocks of ``rows_per_read`` rows, read from each
    input file opened once (`~lsst.ts.calibscripts.cp.butler.image_file.ImageFile`),
    else from Butler cut-outs. The combination asks for small tiles of rows,
    input after input; reading each tile separately would cost a read per
    tile, reading whole images would hold the whole stack. This keeps one
    block of rows of every input: its image and mask only (and the variance
    only while cosmic rays are searched), not the variance nothing else
    reads.

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
        self._blocks: list[_Block | None] = [None] * len(self._handles)
        # Threads of the combination share the blocks: one reads, the
        # others wait for it.
        self._locks = [threading.Lock() for _ in self._handles]
        # The pieces of the last tile asked for, by thread and input: the
        # combination asks for a tile's image rows, then its mask rows. A
        # tile that straddles two blocks would otherwise read the second
        # block for the image, the first again for the mask, then the
        # second again.
        self._local = threading.local()
        self._metadata: list[dict[str, Any]] = []
        self._files: list[ImageFile | None] = []
        self.cosmic_ray_finder: CosmicRayFinder | None = None
        """Function returning the cosmic-ray pixels of a block, if any."""
        shape: tuple[int, int] | None = None
        for handle in self._handles:
            image_file = ImageFile.open(local_path(handle))
            if image_file is not None and not image_file.has_plane("mask"):
                image_file.close()
                image_file = None
            self._files.append(image_file)
            if image_file is not None:
                this_shape = image_file.shape
                metadata = dict(image_file.metadata)
            else:
                # A one-row cut-out reads the metadata (JSON tree) and the
                # bbox cheaply; the full shape comes from the bbox component.
                bbox = handle.get(component="bbox")
                this_shape = (int(bbox.shape[0]), int(bbox.shape[1]))
                cutout = handle.get(parameters={"bbox": Box.factory[0:1, 0 : this_shape[1]]})
                metadata = dict(cutout.metadata)
            if shape is None:
                shape = this_shape
            elif this_shape != shape:
                self.close()
                raise ValueError(
                    f"Input {handle.dataId['exposure']} has shape {this_shape}, the first input {shape}: "
                    "inputs from different geometries cannot be combined."
                )
            self._metadata.append(metadata)
        assert shape is not None
        self.shape = shape
        direct = sum(image_file is not None for image_file in self._files)
        _log.debug("%d of %d inputs read straight from their files.", direct, len(self._files))

    def close(self) -> None:
        """Close the input files (reading again reads through the Butler)."""
        for image_file in self._files:
            if image_file is not None:
                image_file.close()
        self._files = [None] * len(self._handles)

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

    @property
    def rows_per_read(self) -> int:
        """Rows of each input read at once."""
        return self._rows_per_read

    def drop_blocks(self) -> None:
        """Forget the cached blocks (before a second pass over the inputs)."""
        self._blocks = [None] * len(self._handles)
        self._local = threading.local()

    def _last_tiles(self) -> list[tuple[int, int, list[_Piece]] | None]:
        last: list[tuple[int, int, list[_Piece]] | None] | None = getattr(self._local, "last", None)
        if last is None:
            last = self._local.last = [None] * len(self._handles)
        return last

    def _block(self, index: int, y0: int) -> _Block:
        with self._locks[index]:
            return self._locked_block(index, y0)

    def _locked_block(self, index: int, y0: int) -> _Block:
        block = self._blocks[index]
        if block is not None and block.start <= y0 < block.start + block.image.shape[0]:
            return block
        # Drop the old block before reading the next, so that memory never
        # holds both (the last tile's pieces may still hold a few rows).
        self._blocks[index] = None
        # Blocks start at multiples of rows_per_read whatever the tiles:
        # cosmic rays are found block by block, so the blocks decide results.
        start = (y0 // self._rows_per_read) * self._rows_per_read
        stop = min(start + self._rows_per_read, self.shape[0])
        finder = self.cosmic_ray_finder
        image_file = self._files[index] if index < len(self._files) else None
        bits: MaskBits
        if image_file is not None and (finder is None or image_file.has_plane("variance")):
            image = image_file.read_rows("image", start, stop)
            mask_array = image_file.read_rows("mask", start, stop)
            if image_file.mask_bits_below(256):
                # The named planes' bits fit in a byte: a quarter of the memory.
                mask_array = mask_array.astype(np.uint8)
            variance = image_file.read_rows("variance", start, stop) if finder is not None else None
            bits = image_file.mask_bits
        else:
            planes = ["image", "mask"] + (["variance"] if finder is not None else [])
            parts = self._handles[index].get(
                component="components",
                parameters={"bbox": Box.factory[start:stop, 0 : self.shape[1]], "components": planes},
            )
            image = parts["image"].array
            mask_array = parts["mask"].array
            variance = parts["variance"].array if finder is not None else None
            bits = _schema_bits(parts["mask"].schema)
        cosmic_rays = None
        if finder is not None:
            assert variance is not None
            # Cosmic rays are a few pixels long, so finding them block by
            # block misses nothing but the growth across a block edge.
            cosmic_rays = finder(index, start, image, variance)
        block = _Block(start, image, mask_array, bits, cosmic_rays)
        self._blocks[index] = block
        return block

    def _pieces(self, index: int, y0: int, y1: int) -> list[_Piece]:
        last_tiles = self._last_tiles()
        last = last_tiles[index]
        if last is not None and last[0] == y0 and last[1] == y1:
            return last[2]
        # A tile of the combination may straddle two read blocks.
        pieces = []
        y = y0
        while y < y1:
            block = self._block(index, y)
            stop = min(y1, block.start + block.image.shape[0])
            rows = slice(y - block.start, stop - block.start)
            piece = _Piece(
                block.image[rows],
                block.mask[rows],
                block.bits,
                None if block.cosmic_rays is None else block.cosmic_rays[rows],
            )
            if stop < y1:
                # The next block replaces this one: copy these few rows so
                # that the views do not keep the whole old block alive.
                piece = dataclasses.replace(
                    piece,
                    image=piece.image.copy(),
                    mask=piece.mask.copy(),
                    cosmic_rays=None if piece.cosmic_rays is None else piece.cosmic_rays.copy(),
                )
            pieces.append(piece)
            y = stop
        last_tiles[index] = (y0, y1, pieces)
        return pieces

    def read_rows(self, index: int, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` of exposure ``index``."""
        pieces = [piece.image for piece in self._pieces(index, y0, y1)]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def read_mask_rows(self, index: int, y0: int, y1: int, planes: list[str]) -> np.ndarray | None:
        """Rows of exposure ``index`` with any of ``planes`` (or a cosmic ray) set, or `None`."""
        names = list(planes) + (["CR"] if self.cosmic_ray_finder is not None else [])
        if not names:
            return None
        pieces = []
        for piece in self._pieces(index, y0, y1):
            excluded = piece.excluded(names)
            if piece.cosmic_rays is not None:
                excluded |= piece.cosmic_rays
            pieces.append(excluded)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _schema_bits(schema: MaskSchema) -> MaskBits:
    """Bits of named planes in an lsst-images mask array (planes the schema lacks are skipped)."""

    def bits(names: list[str]) -> np.ndarray:
        known = [name for name in names if name in schema.names]
        return schema.bitmask(*known) if known else np.zeros(1, dtype=schema.dtype)

    return bits
