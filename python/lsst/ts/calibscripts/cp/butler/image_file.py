"""Read rows of the pipelines' image files directly: opened once, no HDU objects per read.

The combinations read every input in blocks of rows, and the
verification reads whole planes. Through the Butler each block is a new
`lsst.images` read: the file is reopened, Astropy rebuilds every HDU object
and decompresses tile by tile in Python, which cost a full-size bias
combination more than its arithmetic. `ImageFile` opens an lsst-images FITS
file once and reads

* its metadata and the shape of its planes from the JSON tree and the HDU
  index lsst-images writes at the end of the file (two small reads);
* rows of a plain plane straight from the file into a native-endian array
  (`os.pread`, one copy and a byte swap);
* rows of a tile-compressed plane whose tiles span whole rows (``GZIP_1``,
  ``GZIP_2``, ``RICE_1`` without quantization or blank values, as
  `lsst.ts.calibscripts.cp.butler.fits_planes` and Astropy write them) by
  decompressing just the tiles those rows need, several at once in
  threads;
* the mask plane as its on-disk integers with the bit of each named plane.

`ImageFile.open` returns `None` for anything else (a remote file, another
layout), and the callers read through the Butler instead. The values read
are those `lsst.images` would return.
"""

from __future__ import annotations

__all__ = ["ImageFile", "local_path"]

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from lsst.daf.butler import DeferredDatasetHandle

from .fits_planes import inflate, shared_executor, zero_rice_tile

try:
    from astropy.io.fits.hdu.compressed._compression import decompress_rice_1_c as _decompress_rice
except ImportError:  # pragma: no cover - depends on the Astropy version
    _decompress_rice = None

_BLOCK = 2880
_DTYPES = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}


def local_path(handle: DeferredDatasetHandle) -> str | None:
    """Return the local file of a dataset, or `None` if it is not a local file.

    Parameters
    ----------
    handle
        Handle of a stored dataset (a quantum's input).
    """
    try:
        uri = handle.butler.getURI(handle.ref)
    except Exception:
        return None
    return uri.ospath if uri.isLocal else None


@dataclass(frozen=True)
class _Plane:
    """Where and how one plane is stored."""

    name: str
    shape: tuple[int, int]
    dtype: np.dtype
    """Native-endian pixel type."""
    data_address: int
    algorithm: str | None
    """``None`` for a plain image HDU."""
    tile_rows: int = 0
    descriptors: np.ndarray | None = None
    """``(count, heap offset)`` of each tile."""
    heap_address: int = 0
    rice_blocksize: int = 32
    bits: dict[str, int] | None = None
    """For a mask: plane name -> bit."""


class ImageFile:
    """An lsst-images FITS file opened once, read by planes and rows.

    Use `open`, which returns `None` when the file cannot be read this way.

    Parameters
    ----------
    path
        The file.
    descriptor
        Its open file descriptor (owned: `close` closes it).
    metadata
        The image's flexible metadata.
    planes
        Plane name (``image``, ``mask``, ``variance``) -> layout.
    """

    def __init__(
        self, path: str, descriptor: int, metadata: dict[str, Any], planes: dict[str, _Plane]
    ) -> None:
        self.path = path
        self._fd = descriptor
        self.metadata = metadata
        self._planes = planes
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | None) -> ImageFile | None:
        """Open a file written by lsst-images, or return `None` if its layout is not one read here.

        Parameters
        ----------
        path
            Local file, or `None` (then `None` is returned).

        Returns
        -------
        image_file
            The opened file, whose metadata and plane layouts are read.
        """
        if path is None:
            return None
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            parsed = _parse(descriptor)
        except (KeyError, ValueError, TypeError, IndexError, OSError, json.JSONDecodeError):
            parsed = None
        if parsed is None:
            os.close(descriptor)
            return None
        metadata, planes = parsed
        return cls(path, descriptor, metadata, planes)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ImageFile:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the image plane (rows, columns)."""
        return self._planes["image"].shape

    def has_plane(self, name: str) -> bool:
        """Whether the file has a plane of this name that is read here."""
        return name in self._planes

    def mask_bits(self, names: Sequence[str]) -> int:
        """Return the on-disk bits of the named mask planes (those the mask has)."""
        bits = self._planes["mask"].bits or {}
        value = 0
        for name in names:
            value |= bits.get(name, 0)
        return value

    def mask_bits_below(self, limit: int) -> bool:
        """Whether every plane the mask names has a bit below ``limit`` (e.g. 256: a byte holds them)."""
        bits = self._planes["mask"].bits or {}
        return all(0 < bit < limit for bit in bits.values())

    def read_rows(self, plane: str, y0: int = 0, y1: int | None = None) -> np.ndarray:
        """Return rows ``[y0, y1)`` of a plane as a new native-endian array.

        Parameters
        ----------
        plane
            ``image``, ``mask`` (its on-disk integers: see `mask_bits`) or
            ``variance``.
        y0, y1
            Rows; all by default.
        """
        layout = self._planes[plane]
        n_rows = layout.shape[0]
        y1 = n_rows if y1 is None else min(y1, n_rows)
        y0 = max(0, min(y0, y1))
        if layout.algorithm is None:
            return self._read_plain(layout, y0, y1)
        return self._read_tiles(layout, y0, y1)

    def _pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise OSError(f"{self.path}: short read of {size} bytes at {offset}.")
        return data

    def _read_plain(self, layout: _Plane, y0: int, y1: int) -> np.ndarray:
        n_columns = layout.shape[1]
        big = layout.dtype.newbyteorder(">")
        out = np.empty((y1 - y0, n_columns), dtype=big)
        nbytes = out.nbytes
        if nbytes:
            view = memoryview(out).cast("B")
            offset = layout.data_address + y0 * n_columns * big.itemsize
            done = 0
            while done < nbytes:
                count = os.preadv(self._fd, [view[done:]], offset + done)
                if count <= 0:
                    raise OSError(f"{self.path}: short read of plane {layout.name}.")
                done += count
        return out.byteswap(inplace=True).view(layout.dtype) if big != layout.dtype else out

    def _read_tiles(self, layout: _Plane, y0: int, y1: int) -> np.ndarray:
        assert layout.descriptors is not None
        n_columns = layout.shape[1]
        out = np.empty((y1 - y0, n_columns), dtype=layout.dtype)
        if y1 <= y0:
            return out
        first, last = y0 // layout.tile_rows, (y1 - 1) // layout.tile_rows

        def decode(tile: int) -> None:
            count, offset = (int(value) for value in layout.descriptors[tile])  # type: ignore[index]
            start = tile * layout.tile_rows
            rows = min(layout.tile_rows, layout.shape[0] - start)
            lo, hi = max(y0, start), min(y1, start + rows)
            data = self._pread(count, layout.heap_address + offset)
            if layout.algorithm == "RICE_1":
                zeros = zero_rice_tile(rows * n_columns, layout.rice_blocksize, layout.dtype.itemsize)
                if data == zeros:  # a mask tile with nothing set: no decoding
                    out[lo - y0 : hi - y0] = 0
                    return
            pixels = _decode_tile(layout, data, rows * n_columns).reshape(rows, n_columns)
            out[lo - y0 : hi - y0] = pixels[lo - start : hi - start]

        tiles = range(first, last + 1)
        if len(tiles) == 1:
            decode(first)
        else:
            list(shared_executor().map(decode, tiles))
        return out


def _decode_tile(layout: _Plane, data: bytes, n_pixels: int) -> np.ndarray:
    itemsize = layout.dtype.itemsize
    if layout.algorithm == "RICE_1":
        if _decompress_rice is None:  # pragma: no cover - depends on the Astropy version
            raise RuntimeError("Astropy's RICE decoder is not available.")
        decoded = _decompress_rice(data, layout.rice_blocksize, itemsize, n_pixels)
        return np.frombuffer(decoded, dtype=f"i{itemsize}", count=n_pixels).astype(layout.dtype, copy=False)
    raw = inflate(data)
    big = layout.dtype.newbyteorder(">")
    if layout.algorithm == "GZIP_2":
        # Bytes stored most significant first, plane by plane.
        shuffled = np.frombuffer(raw, dtype=np.uint8, count=n_pixels * itemsize)
        raw = shuffled.reshape(itemsize, n_pixels).T.tobytes()
    return np.frombuffer(raw, dtype=big, count=n_pixels).astype(layout.dtype)


def _read_header(descriptor: int, address: int, size: int) -> fits.Header:
    data = os.pread(descriptor, size, address)
    if len(data) != size:
        raise OSError("short header read")
    return fits.Header.fromstring(data.decode("ascii"))


def _parse(descriptor: int) -> tuple[dict[str, Any], dict[str, _Plane]] | None:
    """Read the JSON tree and the HDU index; return metadata and plane layouts."""
    primary = fits.Header.fromstring(os.pread(descriptor, _BLOCK, 0).decode("ascii"))
    if "INDXADDR" not in primary or "JSONADDR" not in primary:
        return None
    index_hdu = fits.BinTableHDU.fromstring(
        os.pread(descriptor, int(primary["INDXSIZE"]), int(primary["INDXADDR"]))
    )
    index = {
        str(row["EXTNAME"]).strip().upper(): (int(row["HDRADDR"]), int(row["DATADDR"]), int(row["DATSIZE"]))
        for row in index_hdu.data
    }
    json_hdu = fits.BinTableHDU.fromstring(
        os.pread(descriptor, int(primary["JSONSIZE"]), int(primary["JSONADDR"]))
    )
    tree = json.loads(bytes(json_hdu.data[0][0]))
    if not isinstance(tree.get("metadata", {}), dict):
        return None
    planes: dict[str, _Plane] = {}
    for name in ("image", "mask", "variance"):
        node = tree.get(name)
        if not isinstance(node, dict):
            continue
        references = node.get("data")
        if isinstance(references, list):
            if len(references) != 1:
                continue  # a mask of more than one integer plane: not read here
            references = references[0]
        if not isinstance(references, dict) or tuple(node.get("yx0", (0, 0))) != (0, 0):
            continue
        source = str(references.get("source", ""))
        if not source.startswith("fits:"):
            continue
        extname = source.removeprefix("fits:").upper()
        if extname not in index:
            continue
        plane = _plane_layout(descriptor, name, index[extname])
        if plane is not None:
            planes[name] = plane
    if "image" not in planes:
        return None
    return dict(tree.get("metadata") or {}), planes


def _plane_layout(descriptor: int, name: str, location: tuple[int, int, int]) -> _Plane | None:
    header_address, data_address, _ = location
    header = _read_header(descriptor, header_address, data_address - header_address)
    bits = _mask_bits(header) if name == "mask" else None
    if not header.get("ZIMAGE"):
        if header.get("XTENSION", "IMAGE") != "IMAGE" or header.get("NAXIS") != 2:
            return None
        if any(key in header for key in ("BZERO", "BSCALE", "BLANK")):
            return None
        dtype = _DTYPES.get(int(header["BITPIX"]))
        if dtype is None:
            return None
        shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        return _Plane(name, shape, np.dtype(dtype), data_address, None, bits=bits)
    algorithm = str(header.get("ZCMPTYPE", "")).strip()
    if algorithm == "RICE_ONE":
        algorithm = "RICE_1"
    if algorithm not in ("GZIP_1", "GZIP_2", "RICE_1") or header.get("ZNAXIS") != 2:
        return None
    if header.get("TFIELDS") != 1 or str(header.get("TTYPE1", "")).strip() != "COMPRESSED_DATA":
        return None
    if any(key in header for key in ("ZBLANK", "ZSCALE", "ZZERO", "BZERO", "BSCALE")):
        return None
    if str(header.get("ZQUANTIZ", "NONE")).strip() not in ("NONE", "NO_DITHER"):
        return None
    n_columns, n_rows = int(header["ZNAXIS1"]), int(header["ZNAXIS2"])
    if int(header.get("ZTILE1", n_columns)) != n_columns:
        return None  # tiles narrower than a row: not read here
    tile_rows = int(header.get("ZTILE2", 1))
    dtype = _DTYPES.get(int(header["ZBITPIX"]))
    if dtype is None:
        return None
    options = {"BLOCKSIZE": 32, "BYTEPIX": np.dtype(dtype).itemsize}
    for i in range(1, 100):
        if f"ZNAME{i}" not in header:
            break
        options[str(header[f"ZNAME{i}"]).strip().upper()] = header[f"ZVAL{i}"]
    itemsize = np.dtype(dtype).itemsize
    if algorithm == "RICE_1" and (dtype.startswith("f") or int(options["BYTEPIX"]) != itemsize):
        return None
    form = str(header["TFORM1"]).strip()
    if form.startswith(("1PB", "PB")):
        descriptor_dtype = ">i4"
    elif form.startswith(("1QB", "QB")):
        descriptor_dtype = ">i8"
    else:
        return None
    n_tiles = int(header["NAXIS2"])
    if n_tiles != -(-n_rows // tile_rows):
        return None
    table = os.pread(descriptor, int(header["NAXIS1"]) * n_tiles, data_address)
    descriptors = np.frombuffer(table, dtype=descriptor_dtype).reshape(n_tiles, 2).astype(np.int64)
    heap_address = data_address + int(header.get("THEAP", int(header["NAXIS1"]) * n_tiles))
    return _Plane(
        name,
        (n_rows, n_columns),
        np.dtype(dtype),
        data_address,
        algorithm,
        tile_rows=tile_rows,
        descriptors=descriptors,
        heap_address=heap_address,
        rice_blocksize=int(options["BLOCKSIZE"]),
        bits=bits,
    )


def _mask_bits(header: fits.Header) -> dict[str, int]:
    bits = {}
    for i in range(1000):
        key = f"MSKN{i:04d}"
        if key not in header:
            break
        bits[str(header[key]).strip()] = int(header[f"MSKM{i:04d}"])
    return bits
