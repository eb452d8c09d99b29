"""Raw camera files: one FITS file per image per detector.

Layout
------
* Primary HDU: no data; the observation metadata (`ObservationMetadata`) and
  the detector's identity.
* One image extension per amplifier, ``EXTNAME`` = amp name, in HDU order,
  with integer (``int32``) pixels in readout order, the section keywords
  ``DATASEC``, ``BIASSEC``, ``DETSEC``, ``DETSIZE`` and the IRAF-style
  ``DTV``/``DTM``/``LTV``/``LTM`` transforms (physical = raw pixel, so
  ``LTV = 0``; ``detector = DTM * raw + DTV``).
* Extensions are tile-compressed with RICE, which is lossless for integers.

`read_raw` rebuilds the geometry from each extension's own keywords, never
from `lsst.ts.calibscripts.cp.camera.geometry`'s constructors, so it reads full-size
and reduced files (or any other ITL-like layout) alike.

Astropy decompresses a tile-compressed HDU one tile at a time through
Python, with header look-ups for every tile; the cameras write one tile per
row, so at full size that is 2048 tiles per amplifier and about three times
the cost of the decompression itself. `read_raw` therefore decodes the
common layout (``RICE_1``, 32-bit integers, one tile per row, nothing but
the compressed column) itself, with Astropy's own RICE decoder, straight
from the file's bytes; any other layout goes through Astropy's reader.
"""

from __future__ import annotations

import importlib
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..camera.description import DetectorDescription
from ..camera.geometry import AmpGeometry, DetectorGeometry, amp_geometry_from_sections
from .fits_planes import shared_executor

__all__ = [
    "ObservationMetadata",
    "RawImage",
    "amp_header_cards",
    "read_raw",
    "read_raw_header",
    "write_raw",
]

RAW_DTYPE = np.int32
"""On-disk pixel type: the 18-bit ADC range does not fit in 16 bits."""


def _load_rice_decoder() -> Callable[[bytes, int, int, int], bytes] | None:
    # Astropy's C RICE decoder, the one its own reader calls per tile. It is
    # not public API: if it moves, raws are read by Astropy's reader.
    try:
        module = importlib.import_module("astropy.io.fits.hdu.compressed._compression")
    except ImportError:  # pragma: no cover - depends on the Astropy version
        return None
    decoder = getattr(module, "decompress_rice_1_c", None)
    return decoder if callable(decoder) else None


_decompress_rice = _load_rice_decoder()


@dataclass(frozen=True)
class ObservationMetadata:
    """Observation metadata written to (and read from) a raw primary header.

    Parameters
    ----------
    instrument : `str`
        ``INSTRUME``, e.g. ``"LATISS"``.
    obs_id : `str`
        ``OBSID``, e.g. ``"AT_O_20220929_000001"``.
    day_obs : `int`
        ``DAYOBS``, observing day ``YYYYMMDD`` (written as a string as Rubin
        headers do).
    seq_num : `int`
        ``SEQNUM``, sequence number within the day.
    img_type : `str`
        ``IMGTYPE``: ``BIAS``, ``DARK``, ``FLAT``, ...
    exposure_time : `float`
        ``EXPTIME``, seconds.
    dark_time : `float`
        ``DARKTIME``, seconds.
    date_obs : `astropy.time.Time`
        Start of the exposure (``DATE-OBS``, TAI).
    date_end : `astropy.time.Time`
        End of the exposure (``DATE-END``, TAI).
    filter : `str`, optional
        ``FILTER``.
    grating : `str` or `None`, optional
        ``GRATING`` (LATISS); omitted from the header when `None`.
    group_id : `str`, optional
        ``GROUPID``.
    reason : `str`, optional
        ``REASON`` (observation reason).
    program : `str`, optional
        ``PROGRAM`` (science program).
    test_type : `str`, optional
        ``TESTTYPE``.
    obs_note : `str`, optional
        ``OBSNOTE``.
    telescope : `str`, optional
        ``TELESCOP``.
    controller : `str`, optional
        ``CONTRLLR``, ``"O"`` for on-sky/operations.
    """

    instrument: str
    obs_id: str
    day_obs: int
    seq_num: int
    img_type: str
    exposure_time: float
    dark_time: float
    date_obs: Time
    date_end: Time
    filter: str = "empty"
    grating: str | None = None
    group_id: str = ""
    reason: str = ""
    program: str = ""
    test_type: str = ""
    obs_note: str = ""
    telescope: str = ""
    controller: str = "O"

    @property
    def exposure_id(self) -> int:
        """Rubin exposure id, ``day_obs * 100000 + seq_num``."""
        return self.day_obs * 100_000 + self.seq_num

    def to_cards(self) -> list[tuple[str, Any, str]]:
        """Return the header cards ``(keyword, value, comment)``."""
        date_obs = Time(self.date_obs).tai
        date_end = Time(self.date_end).tai
        cards: list[tuple[str, Any, str]] = [
            ("TELESCOP", self.telescope, "Telescope"),
            ("INSTRUME", self.instrument, "Instrument"),
            ("OBSID", self.obs_id, "Observation id"),
            ("DAYOBS", f"{self.day_obs:08d}", "Observing day YYYYMMDD"),
            ("SEQNUM", int(self.seq_num), "Sequence number within the day"),
            ("CONTRLLR", self.controller, "Controller (O = operations)"),
            ("IMGTYPE", self.img_type, "Image type"),
            ("TESTTYPE", self.test_type, "Test type"),
            ("EXPTIME", float(self.exposure_time), "[s] Requested exposure time"),
            ("DARKTIME", float(self.dark_time), "[s] Dark time"),
            ("TIMESYS", "TAI", "Time scale of DATE-* keywords"),
            ("DATE-OBS", date_obs.isot, "Start of exposure (TAI)"),
            ("DATE-END", date_end.isot, "End of exposure (TAI)"),
            ("MJD-OBS", float(date_obs.mjd), "Start of exposure, MJD (TAI)"),
            ("MJD-END", float(date_end.mjd), "End of exposure, MJD (TAI)"),
            ("FILTER", self.filter, "Filter in the beam"),
        ]
        if self.grating is not None:
            cards.append(("GRATING", self.grating, "Disperser in the beam"))
        cards += [
            ("GROUPID", self.group_id, "Group id"),
            ("REASON", self.reason, "Observation reason"),
            ("PROGRAM", self.program, "Science program"),
            ("OBSNOTE", self.obs_note, "Observer note"),
        ]
        return cards

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> ObservationMetadata:
        """Parse the metadata back from a primary header.

        Raises
        ------
        KeyError
            If a required keyword is missing (the message names it).
        """
        required = ("INSTRUME", "OBSID", "DAYOBS", "SEQNUM", "IMGTYPE", "EXPTIME", "DATE-OBS", "DATE-END")
        missing = [key for key in required if key not in header]
        if missing:
            raise KeyError(f"Raw header lacks required keywords: {', '.join(missing)}")
        exposure_time = float(header["EXPTIME"])
        return cls(
            instrument=str(header["INSTRUME"]),
            obs_id=str(header["OBSID"]),
            day_obs=int(header["DAYOBS"]),
            seq_num=int(header["SEQNUM"]),
            img_type=str(header["IMGTYPE"]),
            exposure_time=exposure_time,
            dark_time=float(header.get("DARKTIME", exposure_time)),
            date_obs=Time(header["DATE-OBS"], scale=_time_scale(header)),
            date_end=Time(header["DATE-END"], scale=_time_scale(header)),
            filter=str(header.get("FILTER", "empty")),
            grating=str(header["GRATING"]) if "GRATING" in header else None,
            group_id=str(header.get("GROUPID", "")),
            reason=str(header.get("REASON", "")),
            program=str(header.get("PROGRAM", "")),
            test_type=str(header.get("TESTTYPE", "")),
            obs_note=str(header.get("OBSNOTE", "")),
            telescope=str(header.get("TELESCOP", "")),
            controller=str(header.get("CONTRLLR", "O")),
        )


def _time_scale(header: Mapping[str, Any]) -> str:
    return str(header.get("TIMESYS", "TAI")).lower()


def _detector_cards(detector: DetectorDescription, geometry: DetectorGeometry) -> list[tuple[str, Any, str]]:
    return [
        ("DETECTOR", int(detector.id), "Detector id"),
        ("DET_NAME", detector.full_name, "Detector name <raft>_<slot>"),
        ("RAFTBAY", detector.raft, "Raft"),
        ("CCDSLOT", detector.name_in_raft, "Slot in the raft"),
        ("DET_SER", detector.serial, "Sensor serial number"),
        ("LSST_NUM", detector.serial, "Sensor serial number (LSST key)"),
        ("CCD_TYPE", detector.detector_type, "Sensor vendor"),
        ("DETSIZE", geometry.detsize, "Assembled detector size"),
    ]


def amp_header_cards(amp: AmpGeometry, detsize: str) -> list[tuple[str, Any, str]]:
    """Header cards describing one amplifier's geometry.

    Parameters
    ----------
    amp : `AmpGeometry`
        The amplifier.
    detsize : `str`
        ``DETSIZE`` of the detector.

    Returns
    -------
    cards : `list` [`tuple`]
        ``(keyword, value, comment)``; the ``DTV``/``DTM`` pair maps a raw
        data pixel (1-based) to the assembled detector (1-based).
    """
    # detector = DTM * raw + DTV along each axis (IRAF convention, 1-based).
    if amp.flip_x:
        dtm1, dtv1 = -1, amp.detector.x1 + amp.data.x0 + 1
    else:
        dtm1, dtv1 = 1, amp.detector.x0 - amp.data.x0
    if amp.flip_y:
        dtm2, dtv2 = -1, amp.detector.y1 + amp.data.y0 + 1
    else:
        dtm2, dtv2 = 1, amp.detector.y0 - amp.data.y0
    return [
        ("EXTNAME", amp.name, "Amplifier name"),
        ("DATASEC", amp.datasec, "Imaging pixels"),
        ("BIASSEC", amp.biassec, "Serial overscan"),
        ("DETSEC", amp.detsec, "Placement in the assembled detector"),
        ("DETSIZE", detsize, "Assembled detector size"),
        ("DTV1", dtv1, "Detector transform vector"),
        ("DTV2", dtv2, "Detector transform vector"),
        ("DTM1_1", float(dtm1), "Detector transform matrix"),
        ("DTM1_2", 0.0, "Detector transform matrix"),
        ("DTM2_1", 0.0, "Detector transform matrix"),
        ("DTM2_2", float(dtm2), "Detector transform matrix"),
        ("LTV1", 0, "Image transform vector"),
        ("LTV2", 0, "Image transform vector"),
        ("LTM1_1", 1.0, "Image transform matrix"),
        ("LTM2_2", 1.0, "Image transform matrix"),
    ]


def write_raw(
    path: str | os.PathLike[str],
    metadata: ObservationMetadata,
    detector: DetectorDescription,
    geometry: DetectorGeometry,
    amps: Mapping[str, np.ndarray],
    *,
    extra_cards: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Write one raw image of one detector.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        Output file (conventionally ``<obs_id>_<detector full name>.fits``).
    metadata : `ObservationMetadata`
        Observation metadata for the primary header.
    detector : `DetectorDescription`
        Detector identity for the primary header.
    geometry : `DetectorGeometry`
        Geometry describing the arrays.
    amps : `Mapping` [`str`, `numpy.ndarray`]
        Raw amplifier arrays by amp name, each of its amp's ``raw_shape``.
        Values are rounded to the nearest integer and stored as ``int32``.
    extra_cards : `Mapping` [`str`, `Any`], optional
        Additional primary-header keywords.
    overwrite : `bool`, optional
        Replace an existing file.

    Raises
    ------
    ValueError
        If an amp is missing or has the wrong shape.
    """
    missing = [name for name in geometry.amp_names if name not in amps]
    if missing:
        raise ValueError(f"No pixel data for amps {missing}")
    primary = fits.PrimaryHDU()
    for key, value, comment in metadata.to_cards() + _detector_cards(detector, geometry):
        primary.header[key] = (value, comment)
    for key, value in (extra_cards or {}).items():
        primary.header[key] = value
    hdus: list[fits.PrimaryHDU | fits.CompImageHDU] = [primary]
    for amp in geometry:
        array = np.asarray(amps[amp.name])
        if array.shape != amp.raw_shape:
            raise ValueError(f"Amp {amp.name}: array shape {array.shape} != raw shape {amp.raw_shape}")
        if np.issubdtype(array.dtype, np.integer):
            pixels = array.astype(RAW_DTYPE, copy=False)
        else:
            pixels = np.rint(array).astype(RAW_DTYPE)
        hdu = fits.CompImageHDU(data=pixels, compression_type="RICE_1")
        for key, value, comment in amp_header_cards(amp, geometry.detsize):
            hdu.header[key] = (value, comment)
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(os.fspath(path), overwrite=overwrite)


@dataclass
class RawImage:
    """The content of a raw file.

    Attributes
    ----------
    header : `astropy.io.fits.Header`
        Primary header.
    metadata : `ObservationMetadata`
        Parsed observation metadata.
    geometry : `DetectorGeometry`
        Geometry rebuilt from the extensions' own keywords.
    amps : `dict` [`str`, `numpy.ndarray`]
        Raw amplifier arrays (``int32``, readout order) by amp name.
    amp_headers : `dict` [`str`, `astropy.io.fits.Header`]
        Extension headers by amp name.
    """

    header: fits.Header
    metadata: ObservationMetadata
    geometry: DetectorGeometry
    amps: dict[str, np.ndarray] = field(default_factory=dict)
    amp_headers: dict[str, fits.Header] = field(default_factory=dict)

    @property
    def detector_id(self) -> int:
        """Detector id from the ``DETECTOR`` keyword."""
        return int(self.header["DETECTOR"])


def read_raw_header(path: str | os.PathLike[str]) -> fits.Header:
    """Read only the primary header of a raw file (cheap: no pixels)."""
    return fits.getheader(os.fspath(path), 0)


def read_raw(path: str | os.PathLike[str]) -> RawImage:
    """Read a raw file written by `write_raw` (or any file laid out alike).

    Parameters
    ----------
    path : `str` or `os.PathLike`
        The file.

    Returns
    -------
    raw : `RawImage`
        Header, metadata, per-amp arrays and the geometry taken from each
        extension's ``DATASEC``, ``BIASSEC``, ``DETSEC`` and ``NAXISn``.

    Raises
    ------
    ValueError
        If an image extension lacks ``EXTNAME`` or a section keyword.
    """
    with open(os.fspath(path), "rb") as stream:
        content = stream.read()
    raw = _read_row_tiled(path, content)
    return raw if raw is not None else _read_with_astropy(path, content)


def _read_row_tiled(path: str | os.PathLike[str], content: bytes) -> RawImage | None:
    """Read a file whose every extension is in the cameras' layout; `None` if one is not.

    The headers are parsed once (as binary tables), each amplifier's
    image header is rebuilt from its table header, and the amplifiers are
    decoded in threads (the RICE decoder releases the interpreter lock).
    """
    if _decompress_rice is None:
        return None
    # (amp name, image header, table header, table start, (blocksize, rows, columns))
    jobs: list[tuple[str, fits.Header, fits.Header, int, tuple[int, int, int]]] = []
    with fits.open(io.BytesIO(content), memmap=False, disable_image_compression=True) as hdul:
        header = hdul[0].header.copy()
        for index in range(1, len(hdul)):
            table = hdul[index].header
            if not table.get("ZIMAGE"):
                if table.get("XTENSION") == "IMAGE":
                    return None  # an uncompressed amplifier: Astropy reads it
                continue
            settings = _row_tiled_rice_settings(table)
            if settings is None:
                return None
            ext_header = _image_header(table)
            name = ext_header.get("EXTNAME")
            if not name:
                raise ValueError(f"{path}: image extension {index} has no EXTNAME")
            jobs.append((str(name), ext_header, table, int(hdul.fileinfo(index)["datLoc"]), settings))
    if not jobs:
        raise ValueError(f"{path}: no amplifier image extensions")

    def decode(job: tuple[str, fits.Header, fits.Header, int, tuple[int, int, int]]) -> np.ndarray:
        _, _, table_header, data_start, settings = job
        return _decode_rows(content, data_start, table_header, settings)

    arrays = list(shared_executor().map(decode, jobs))
    amps = [(job[0], job[1], data) for job, data in zip(jobs, arrays, strict=True)]
    return _raw_image(path, header, amps)


def _read_with_astropy(path: str | os.PathLike[str], content: bytes) -> RawImage:
    """Read any layout: row-tiled RICE extensions decoded here, the others by Astropy."""
    decoded = _decode_row_tiled_rice(content)
    amps: list[tuple[str, fits.Header, np.ndarray]] = []
    with fits.open(io.BytesIO(content), memmap=False) as hdul:
        header = hdul[0].header.copy()
        for index, hdu in enumerate(hdul[1:], start=1):
            if not isinstance(hdu, fits.CompImageHDU | fits.ImageHDU):
                continue
            ext_header = hdu.header
            name = ext_header.get("EXTNAME")
            if not name:
                raise ValueError(f"{path}: image extension {index} has no EXTNAME")
            data = decoded.get(index)
            if data is None:
                data = np.array(hdu.data, dtype=RAW_DTYPE)  # decompresses and owns its memory
            amps.append((str(name), ext_header.copy(), data))
    if not amps:
        raise ValueError(f"{path}: no amplifier image extensions")
    return _raw_image(path, header, amps)


def _raw_image(
    path: str | os.PathLike[str], header: fits.Header, amps: list[tuple[str, fits.Header, np.ndarray]]
) -> RawImage:
    arrays: dict[str, np.ndarray] = {}
    amp_headers: dict[str, fits.Header] = {}
    amp_geometries: list[AmpGeometry] = []
    for name, ext_header, data in amps:
        missing = [key for key in ("DATASEC", "BIASSEC", "DETSEC") if key not in ext_header]
        if missing:
            raise ValueError(f"{path}: extension {name} lacks {', '.join(missing)}")
        amp_geometries.append(
            amp_geometry_from_sections(
                name=name,
                raw_shape=(data.shape[0], data.shape[1]),
                datasec=str(ext_header["DATASEC"]),
                biassec=str(ext_header["BIASSEC"]),
                detsec=str(ext_header["DETSEC"]),
            )
        )
        arrays[name] = data
        amp_headers[name] = ext_header
    return RawImage(
        header=header,
        metadata=ObservationMetadata.from_header(header),
        geometry=DetectorGeometry.from_amps(amp_geometries),
        amps=arrays,
        amp_headers=amp_headers,
    )


_TABLE_KEYWORDS = re.compile(
    r"(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|THEAP|T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP)\d+"
    r"|ZIMAGE|ZCMPTYPE|ZBITPIX|ZNAXIS\d*|ZTILE\d+|ZNAME\d+|ZVAL\d+|ZMASKCMP|ZQUANTIZ|ZDITHER0"
    r"|ZSIMPLE|ZTENSION|ZEXTEND|ZBLOCKED|ZPCOUNT|ZGCOUNT|ZHECKSUM|ZDATASUM|CHECKSUM|DATASUM)"
)
"""Keywords of a compressed HDU's table that its image header does not have."""


def _image_header(table: fits.Header) -> fits.Header:
    """Rebuild the header of the image a tile-compressed HDU holds from the header of its table."""
    n_axes = int(table["ZNAXIS"])
    header = fits.Header(
        [("XTENSION", "IMAGE", "Image extension"), ("BITPIX", int(table["ZBITPIX"]), "array data type")]
        + [("NAXIS", n_axes, "number of array dimensions")]
        + [(f"NAXIS{axis}", int(table[f"ZNAXIS{axis}"])) for axis in range(1, n_axes + 1)]
        + [("PCOUNT", 0, "number of parameters"), ("GCOUNT", 1, "number of groups")]
    )
    for card in table.cards:
        if card.keyword and not _TABLE_KEYWORDS.fullmatch(card.keyword):
            header.append(card)
    return header


_DESCRIPTOR_FORM = re.compile(r"1?PB(\(\d+\))?")
"""``TFORM`` of a column of byte arrays with 32-bit descriptors."""


def _decode_row_tiled_rice(content: bytes) -> dict[int, np.ndarray]:
    """Decompress the row-tiled RICE ``int32`` extensions of a FITS file.

    Parameters
    ----------
    content
        The whole file.

    Returns
    -------
    arrays
        ``int32`` pixels by HDU index, for every extension in the layout the
        cameras write (``RICE_1``, ``ZBITPIX = 32``, one tile per row, only
        the ``COMPRESSED_DATA`` column, no scaling or blank value); other
        extensions are left to Astropy's reader.
    """
    if _decompress_rice is None:
        return {}
    arrays: dict[int, np.ndarray] = {}
    with fits.open(io.BytesIO(content), memmap=False, disable_image_compression=True) as hdul:
        for index in range(1, len(hdul)):
            table = hdul[index].header
            settings = _row_tiled_rice_settings(table)
            if settings is None:
                continue
            arrays[index] = _decode_rows(content, int(hdul.fileinfo(index)["datLoc"]), table, settings)
    return arrays


def _decode_rows(
    content: bytes, data_start: int, table: fits.Header, settings: tuple[int, int, int]
) -> np.ndarray:
    """Decode one row-tiled RICE extension whose table starts at ``data_start``."""
    assert _decompress_rice is not None
    blocksize, n_rows, n_columns = settings
    heap_start = data_start + int(table.get("THEAP", table["NAXIS1"] * table["NAXIS2"]))
    # One (byte count, heap offset) descriptor per row, big-endian.
    descriptors = np.frombuffer(content, dtype=">i4", count=2 * n_rows, offset=data_start).reshape(n_rows, 2)
    starts = (descriptors[:, 1].astype(np.int64) + heap_start).tolist()
    ends = (descriptors[:, 0] + descriptors[:, 1].astype(np.int64) + heap_start).tolist()
    decompress = _decompress_rice
    rows = [
        decompress(content[start:end], blocksize, 4, n_columns)
        for start, end in zip(starts, ends, strict=True)
    ]
    return np.frombuffer(b"".join(rows), dtype=np.int32, count=n_rows * n_columns).reshape(n_rows, n_columns)


def _row_tiled_rice_settings(table: fits.Header) -> tuple[int, int, int] | None:
    """Return ``(blocksize, rows, columns)`` if a compressed HDU's layout is the simple one."""
    if not table.get("ZIMAGE") or table.get("ZCMPTYPE") not in ("RICE_1", "RICE_ONE"):
        return None
    if table.get("ZBITPIX") != 32 or table.get("ZNAXIS") != 2:
        return None
    n_columns, n_rows = int(table["ZNAXIS1"]), int(table["ZNAXIS2"])
    if table.get("ZTILE1", n_columns) != n_columns or table.get("ZTILE2", 1) != 1:
        return None
    # One tile per row and a single column: no ZBLANK/ZSCALE/ZZERO columns.
    if table.get("TFIELDS") != 1 or table.get("TTYPE1") != "COMPRESSED_DATA":
        return None
    if not _DESCRIPTOR_FORM.fullmatch(str(table.get("TFORM1", ""))):
        return None
    if table.get("NAXIS1") != 8 or table.get("NAXIS2") != n_rows:
        return None
    if any(key in table for key in ("ZBLANK", "BLANK", "ZSCALE", "ZZERO", "ZQUANTIZ")):
        return None
    options = {"BLOCKSIZE": 32, "BYTEPIX": 4}
    for i in range(1, 1000):
        if f"ZNAME{i}" not in table:
            break
        options[str(table[f"ZNAME{i}"]).upper()] = int(table[f"ZVAL{i}"])
    if options["BYTEPIX"] != 4:
        return None
    return options["BLOCKSIZE"], n_rows, n_columns
