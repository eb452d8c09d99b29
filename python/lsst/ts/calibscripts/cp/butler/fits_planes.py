"""Fast, lossless FITS writing of the planes of an lsst-images file.

lsst-images writes each plane (``image``, ``mask``, ``variance``) through
Astropy's tile compression. Astropy compresses ``GZIP`` tiles with the
standard library at zlib level 9, one tile at a time while holding the
interpreter lock, and builds the binary table of compressed tiles row by
row: writing one full-size ITL float plane that way takes 5 to 20 s of CPU.
Here the planes a write recipe names are compressed as the FITS
tile-compression convention defines them (the same ``GZIP_1`` or ``RICE_1``
tiles, the same header keywords), by

* deflate at a fast level with ISA-L (``isal``; the standard library's
  zlib at level 1 if it is missing): a standard gzip stream per tile, so
  every FITS reader (Astropy, CFITSIO, lsst-images) decompresses it;
* several tiles at once, in threads (both compressors release the
  interpreter lock);
* one compression for a constant plane (a variance of ones), whose tiles
  are all the same bytes;
* the table of tiles assembled as bytes and handed to Astropy as a finished
  HDU, which it copies to the file.

`PlaneCompression` is one plane's recipe; `write_fits` writes any
lsst-images object (`lsst.images.MaskedImage`...) with a mapping of them,
planes mapped to `None` stay uncompressed, and planes mapped to
`lsst.images.fits.FitsCompressionOptions` (``GZIP_2``, quantization) are
left to lsst-images. The pixel values read back are exactly those written.
"""

from __future__ import annotations

__all__ = [
    "PlaneCompression",
    "PlaneOptions",
    "deflate",
    "inflate",
    "shared_executor",
    "write_fits",
    "zero_rice_tile",
]

import functools
import gzip
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, cast

import numpy as np
from astropy.io import fits
from lsst.images.fits import FitsCompressionOptions, FitsOutputArchive
from lsst.images.serialization import ArrayReferenceModel, ButlerInfo, NumberType, no_header_updates

_igzip: ModuleType | None
try:
    from isal import igzip as _isal_igzip

    _igzip = _isal_igzip
except ImportError:  # pragma: no cover - isal is a dependency; the fallback is the standard library
    _igzip = None

try:
    from astropy.io.fits.hdu.compressed._compression import compress_rice_1_c as _compress_rice
except ImportError:  # pragma: no cover - depends on the Astropy version
    _compress_rice = None

type PlaneOptions = PlaneCompression | FitsCompressionOptions | None
"""How one plane is written: by this module, by lsst-images, or uncompressed."""

_FITS_BLOCK = 2880
_RICE_BLOCKSIZE = 32

_BITPIX = {
    np.dtype(np.uint8): 8,
    np.dtype(np.int16): 16,
    np.dtype(np.int32): 32,
    np.dtype(np.int64): 64,
    np.dtype(np.float32): -32,
    np.dtype(np.float64): -64,
}
"""FITS ``BITPIX`` of the pixel types written here (no ``BZERO`` offsets)."""


def deflate(data: bytes | memoryview, level: int) -> bytes:
    """Compress bytes into one gzip stream, as a FITS ``GZIP_1`` tile holds them.

    Parameters
    ----------
    data
        The tile's bytes (big-endian pixels).
    level
        ISA-L level, 0 (fastest) to 3; with the standard library's zlib
        (when ``isal`` is missing) level 1 is used whatever this is.

    Returns
    -------
    stream
        A gzip stream with a zero modification time (the same bytes for the
        same pixels).
    """
    if _igzip is not None:
        compressed: bytes = _igzip.compress(data, max(0, min(level, 3)), mtime=0)
        return compressed
    return gzip.compress(data, compresslevel=1, mtime=0)


def inflate(stream: bytes) -> bytes:
    """Decompress one gzip stream (a FITS ``GZIP_1`` or ``GZIP_2`` tile), with ISA-L if installed."""
    if _igzip is not None:
        data: bytes = _igzip.decompress(stream)
        return data
    return gzip.decompress(stream)


@functools.cache
def zero_rice_tile(n_pixels: int, blocksize: int, bytepix: int) -> bytes | None:
    """Return the RICE_1 stream of a tile of zeros (a mask with nothing set); `None` without a coder."""
    if _compress_rice is None:  # pragma: no cover - depends on the Astropy version
        return None
    compressed: bytes = _compress_rice(bytes(n_pixels * bytepix), blocksize, bytepix)
    return compressed


@dataclass(frozen=True)
class PlaneCompression:
    """Lossless tile compression of one plane, written by this module.

    Parameters
    ----------
    algorithm
        ``GZIP_1`` (any pixel type) or ``RICE_1`` (integer planes only: for
        floats FITS RICE needs a lossy quantization).
    tile_rows
        Rows per tile; tiles span the whole width. Fewer, larger tiles read
        faster through Astropy (its work per tile is in Python); a row-block
        cut-out decompresses only the tiles it touches.
    level
        Deflate level of ``GZIP_1`` (ISA-L's 0 to 3).
    """

    algorithm: Literal["GZIP_1", "RICE_1"] = "GZIP_1"
    tile_rows: int = 100
    level: int = 2

    def __post_init__(self) -> None:
        if self.algorithm not in ("GZIP_1", "RICE_1"):
            raise ValueError(f"Tile compression {self.algorithm!r} is not one of GZIP_1, RICE_1.")
        if self.tile_rows < 1:
            raise ValueError(f"tile_rows must be positive, not {self.tile_rows}.")
        if not 0 <= self.level <= 9:
            raise ValueError(f"Deflate level must be 0 to 9, not {self.level}.")

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any] | None) -> PlaneOptions:
        """Read one plane of a write recipe.

        Parameters
        ----------
        recipe
            ``None`` (uncompressed), or a mapping: ``algorithm`` ``GZIP_1``
            or ``RICE_1`` with optional ``tile_rows`` (or lsst-images'
            ``tile_shape``, whose first element is used) and ``level``
            makes a `PlaneCompression`; anything else (``GZIP_2``,
            ``quantization``) is lsst-images'
            `~lsst.images.fits.FitsCompressionOptions`.

        Returns
        -------
        options
            The plane's options.

        Raises
        ------
        ValueError
            If the options are not valid.
        """
        if recipe is None:
            return None
        values = dict(recipe)
        algorithm = str(values.get("algorithm", "GZIP_2"))
        if algorithm not in ("GZIP_1", "RICE_1") or values.get("quantization") is not None:
            if "level" in values or "tile_rows" in values:
                raise ValueError(f"'level' and 'tile_rows' apply to GZIP_1 and RICE_1 only: {recipe}.")
            return FitsCompressionOptions.model_validate(values)
        unknown = set(values) - {"algorithm", "tile_rows", "tile_shape", "level", "quantization"}
        if unknown:
            raise ValueError(f"Unknown plane options {sorted(unknown)} in {recipe}.")
        tile_rows = values.get("tile_rows")
        if tile_rows is None and values.get("tile_shape") is not None:
            tile_rows = values["tile_shape"][0]
        return cls(
            algorithm=cast(Literal["GZIP_1", "RICE_1"], algorithm),
            tile_rows=int(tile_rows) if tile_rows is not None else cls.tile_rows,
            level=int(values.get("level", cls.level)),
        )

    def encode(self, tile: np.ndarray) -> bytes:
        """Compress one tile (a block of whole rows)."""
        if self.algorithm == "RICE_1":
            if _compress_rice is None:  # pragma: no cover - depends on the Astropy version
                raise RuntimeError("Astropy's RICE compressor is not available.")
            native = np.ascontiguousarray(tile, dtype=tile.dtype.newbyteorder("="))
            compressed: bytes = _compress_rice(native.tobytes(), _RICE_BLOCKSIZE, native.dtype.itemsize)
            return compressed
        big_endian = np.ascontiguousarray(tile, dtype=tile.dtype.newbyteorder(">"))
        return deflate(memoryview(big_endian).cast("B"), self.level)

    def make_hdu(self, array: np.ndarray, name: str, executor: Executor | None = None) -> fits.BinTableHDU:
        """Compress a 2-d plane into a tile-compressed image HDU.

        Parameters
        ----------
        array
            The pixels.
        name
            ``EXTNAME``.
        executor
            Threads that compress tiles concurrently (`shared_executor` by
            default).

        Returns
        -------
        hdu
            The binary-table form of a tile-compressed image (``ZIMAGE =
            T``), data already laid out: FITS readers see a compressed image.

        Raises
        ------
        ValueError
            If the plane is not 2-d, its pixel type has no FITS ``BITPIX``
            without an offset, or RICE_1 is asked for floating-point pixels.
        """
        if array.ndim != 2:
            raise ValueError(f"Only 2-d planes are tile-compressed here; {name} has shape {array.shape}.")
        dtype = array.dtype.newbyteorder("=")
        bitpix = _BITPIX.get(dtype)
        if bitpix is None:
            raise ValueError(f"No FITS BITPIX without offset for pixels of type {array.dtype} ({name}).")
        if self.algorithm == "RICE_1" and bitpix < 0:
            raise ValueError(f"RICE_1 is lossless for integer pixels only; {name} is {array.dtype}.")
        n_rows, n_columns = array.shape
        starts = list(range(0, n_rows, self.tile_rows))
        tiles = self._encode_tiles(array, starts, executor or shared_executor())
        header = self._header(name, bitpix, n_rows, n_columns, len(tiles), max(map(len, tiles)))
        sizes = np.array([len(tile) for tile in tiles], dtype=np.int64)
        descriptors = np.empty((len(tiles), 2), dtype=">i4")
        descriptors[:, 0] = sizes
        descriptors[:, 1] = np.cumsum(sizes) - sizes
        heap_size = int(sizes.sum())
        if heap_size >= 2**31:
            raise ValueError(f"{name}: {heap_size} compressed bytes exceed the 32-bit heap of a 'P' column.")
        header["PCOUNT"] = heap_size
        padding = -(descriptors.nbytes + heap_size) % _FITS_BLOCK
        content = b"".join([header.tostring().encode("ascii"), descriptors.tobytes(), *tiles, bytes(padding)])
        return fits.BinTableHDU.fromstring(content)

    def _encode_tiles(self, array: np.ndarray, starts: list[int], executor: Executor) -> list[bytes]:
        n_rows = array.shape[0]
        if array.size and bool(np.all(array == array[0, 0])):
            # A constant plane: every full tile is the same bytes.
            full = self.encode(array[: self.tile_rows])
            last_rows = n_rows - starts[-1]
            last = full if last_rows == self.tile_rows else self.encode(array[starts[-1] :])
            return [full] * (len(starts) - 1) + [last]
        return list(executor.map(lambda start: self.encode(array[start : start + self.tile_rows]), starts))

    def _header(
        self, name: str, bitpix: int, n_rows: int, n_columns: int, n_tiles: int, longest: int
    ) -> fits.Header:
        header = fits.Header()
        header["XTENSION"] = ("BINTABLE", "binary table extension")
        header["BITPIX"] = 8
        header["NAXIS"] = 2
        header["NAXIS1"] = (8, "width of table in bytes")
        header["NAXIS2"] = (n_tiles, "number of rows in table")
        header["PCOUNT"] = 0
        header["GCOUNT"] = 1
        header["TFIELDS"] = 1
        header["TTYPE1"] = "COMPRESSED_DATA"
        header["TFORM1"] = f"1PB({longest})"
        header["ZIMAGE"] = (True, "extension contains compressed image")
        header["ZTENSION"] = ("IMAGE", "Image extension")
        header["ZBITPIX"] = (bitpix, "array data type")
        header["ZNAXIS"] = (2, "number of array dimensions")
        header["ZNAXIS1"] = n_columns
        header["ZNAXIS2"] = n_rows
        header["ZPCOUNT"] = 0
        header["ZGCOUNT"] = 1
        header["ZTILE1"] = (n_columns, "size of tiles to be compressed")
        header["ZTILE2"] = (min(self.tile_rows, n_rows), "size of tiles to be compressed")
        header["ZCMPTYPE"] = (self.algorithm, "compression algorithm")
        if self.algorithm == "RICE_1":
            header["ZNAME1"] = ("BLOCKSIZE", "compression block size")
            header["ZVAL1"] = (_RICE_BLOCKSIZE, "pixels per block")
            header["ZNAME2"] = ("BYTEPIX", "bytes per pixel (1, 2, 4, or 8)")
            header["ZVAL2"] = (abs(bitpix) // 8, "bytes per pixel (1, 2, 4, or 8)")
        header["EXTNAME"] = name
        return header


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """Threads for compressing tiles, one per core (at most four), made once per process."""
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = max(1, min(4, os.cpu_count() or 1))
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fits-tiles")
        return _executor


class _PlaneOutputArchive(FitsOutputArchive):
    """lsst-images' FITS output archive, with the planes named by `PlaneCompression` written here."""

    def add_array(
        self,
        array: np.ndarray,
        *,
        name: str | None = None,
        update_header: Callable[[fits.Header], None] = no_header_updates,
        tile_shape: tuple[int, ...] | None = None,
        options_name: str | None = None,
    ) -> ArrayReferenceModel:
        lookup = options_name if options_name is not None else name
        options = self._compression_options.get(lookup) if lookup is not None else None
        if not isinstance(options, PlaneCompression) or name is None or array.ndim != 2:
            return super().add_array(
                array,
                name=name,
                update_header=update_header,
                tile_shape=tile_shape,
                options_name=options_name,
            )
        name, version = self._register_name(name)
        hdu = options.make_hdu(array, name.upper())
        key = self._add_hdu(hdu, version, update_header)
        return ArrayReferenceModel(
            source=str(key), shape=list(array.shape), datatype=NumberType.from_numpy(array.dtype)
        )


def write_fits(
    obj: Any,
    path: str,
    plane_options: Mapping[str, PlaneOptions],
    *,
    update_header: Callable[[fits.Header], None] = no_header_updates,
    compression_seed: int | None = None,
    butler_info: ButlerInfo | None = None,
) -> None:
    """Write an lsst-images object to a FITS file, its planes as the options say.

    Parameters
    ----------
    obj
        An object with a ``serialize`` method (`lsst.images.MaskedImage`,
        `lsst.images.Image`...).
    path
        The file to write; must not exist.
    plane_options
        Plane name (``image``, ``mask``, ``variance``) -> `PlaneCompression`
        (written here), `~lsst.images.fits.FitsCompressionOptions`
        (lsst-images) or `None` (uncompressed). Planes not named get the
        lsst-images default.
    update_header
        Callback given the primary header (Butler provenance).
    compression_seed
        Seed for lsst-images' quantized planes, if any.
    butler_info
        Butler dataset and provenance to store in the file.
    """
    opaque_metadata = getattr(obj, "_opaque_metadata", None)
    # The archive keeps the mapping and looks a plane up by name; our own
    # options pass through it to _PlaneOutputArchive.add_array.
    options = cast(Mapping[str, FitsCompressionOptions | None], plane_options)
    with _PlaneOutputArchive.open(
        path,
        compression_options=options,
        opaque_metadata=opaque_metadata,
        update_header=update_header,
        compression_seed=compression_seed,
    ) as archive:
        tree = archive.serialize_root(obj, None, butler_info)
        archive.add_tree(tree)
