"""Ingest raw files into a repository from their own headers.

What the OODS does when the camera writes an image: read the primary header
of each file, define the exposure (and its day_obs and group) in the
registry, and register the file as a ``raw`` dataset in
``<instrument>/raw/all``. Exposure ids are formed as Rubin forms them:
``AT_O_20220929_000001`` -> ``2022092900001`` (``YYYYMMDD`` followed by the
sequence number in five digits).

Ingest is idempotent: a file already ingested (same data ID, same path) is
reported as skipped. A different file for an existing data ID, or a header
that contradicts the exposure already defined, is an error that names both.
"""

from __future__ import annotations

__all__ = [
    "IngestResult",
    "RawIngestError",
    "day_obs_timespan",
    "exposure_record",
    "ingest_raws",
]

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import astropy.units as u
from astropy.time import Time
from lsst.daf.butler import (
    Butler,
    DataCoordinate,
    DatasetRef,
    FileDataset,
    Timespan,
)
from lsst.daf.butler.registry import ConflictingDefinitionError
from lsst.resources import ResourcePath

from ...observations import exposure_id_from_obs_id
from .instrument import get_instrument
from .raw_file import ObservationMetadata, read_raw_header
from .repository import RAW_DATASET_TYPE_NAME, raw_collection

_log = logging.getLogger(__name__)


# Rubin's observing day rolls over at noon: day_obs D runs from D 12:00 to
# D+1 12:00 (UTC-12 h), so a night never straddles two day_obs values.
_DAY_OBS_OFFSET = 12 * u.hour

_TRANSFER_MODES = (None, "direct", "copy", "link", "symlink", "hardlink", "relsymlink", "move", "auto")


class RawIngestError(RuntimeError):
    """Raw files could not be ingested; nothing was ingested by the call."""


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What `ingest_raws` did.

    Attributes
    ----------
    ingested
        References of the raws ingested by this call.
    skipped
        References of raws that were already in the repository with the same
        file (a repeated ingest).
    """

    ingested: list[DatasetRef]
    skipped: list[DatasetRef]

    @property
    def exposures(self) -> list[int]:
        """Sorted exposure ids of all ingested and skipped raws."""
        return sorted({int(ref.dataId["exposure"]) for ref in self.ingested + self.skipped})


def day_obs_timespan(day_obs: int) -> Timespan:
    """Return the timespan of an observing day.

    Parameters
    ----------
    day_obs
        Observing day as ``YYYYMMDD``.

    Returns
    -------
    timespan
        ``[YYYY-MM-DD 12:00, next day 12:00)`` TAI.
    """
    text = f"{day_obs:08d}"
    start = Time(f"{text[:4]}-{text[4:6]}-{text[6:]}T00:00:00", scale="tai") + _DAY_OBS_OFFSET
    return Timespan(start, start + 1 * u.day)


def exposure_record(metadata: ObservationMetadata, physical_filter: str) -> dict[str, Any]:
    """Return the exposure dimension record values of a raw's metadata.

    Parameters
    ----------
    metadata
        Observation metadata parsed from the primary header.
    physical_filter
        Butler physical filter of the exposure.

    Returns
    -------
    record
        Values for ``registry.syncDimensionData("exposure", record)``.
        ``observation_type`` is the lower-case ``IMGTYPE`` (``bias``,
        ``dark``, ``flat``), as in Rubin repositories.
    """
    exposure_id = exposure_id_from_obs_id(metadata.obs_id)
    if exposure_id != metadata.exposure_id:
        raise ValueError(
            f"OBSID {metadata.obs_id} gives exposure {exposure_id} but DAYOBS/SEQNUM give "
            f"{metadata.exposure_id}."
        )
    begin = Time(metadata.date_obs).tai
    end = Time(metadata.date_end).tai
    if end < begin:
        raise ValueError(f"DATE-END {end.isot} precedes DATE-OBS {begin.isot} in {metadata.obs_id}.")
    return {
        "instrument": metadata.instrument,
        "id": exposure_id,
        "obs_id": metadata.obs_id,
        "physical_filter": physical_filter,
        "group": metadata.group_id or metadata.obs_id,
        "day_obs": metadata.day_obs,
        "exposure_time": float(metadata.exposure_time),
        "dark_time": float(metadata.dark_time),
        "observation_type": metadata.img_type.lower(),
        "observation_reason": metadata.reason or "unknown",
        "science_program": metadata.program or "unknown",
        "target_name": "unknown",
        "seq_num": metadata.seq_num,
        "seq_start": metadata.seq_num,
        "seq_end": metadata.seq_num,
        "has_simulated": True,
        "can_see_sky": False,
        # A zero-length span (0 s bias) is valid and calibration lookups use it.
        "timespan": Timespan(begin, end),
    }


@dataclasses.dataclass(frozen=True)
class _RawFile:
    path: Path
    metadata: ObservationMetadata
    detector: int
    record: dict[str, Any]


def _describe_raw(path: Path) -> _RawFile:
    header = read_raw_header(path)
    metadata = ObservationMetadata.from_header(header)
    if "DETECTOR" not in header:
        raise KeyError("Raw header lacks required keyword DETECTOR")
    instrument = get_instrument(metadata.instrument)
    detector = int(header["DETECTOR"])
    instrument.description.detector(detector)  # KeyError names the known detectors
    physical_filter = instrument.description.physical_filter(metadata.filter, metadata.grating)
    return _RawFile(path, metadata, detector, exposure_record(metadata, physical_filter))


def ingest_raws(
    butler: Butler,
    files: Iterable[str | Path],
    *,
    transfer: str | None = "direct",
) -> IngestResult:
    """Ingest raw files into ``<instrument>/raw/all``.

    Parameters
    ----------
    butler
        Writeable Butler of a repository made by
        `~lsst.ts.calibscripts.cp.butler.repository.create_repository` (or with the
        instrument registered by
        `~lsst.ts.calibscripts.cp.butler.repository.register_instruments`).
    files
        Raw files, one image of one detector each.
    transfer
        How the datastore takes the files: ``direct`` (default) records the
        absolute path and leaves the file where the camera wrote it, as the
        OODS does; ``copy``, ``move``, ``link``, ``symlink``... put them
        inside the repository; `None` records files that are already inside
        the repository's datastore root in place, by their path relative
        to the root (what the simulated OODS does for the simulated
        camera's raws, so the repository can be moved).

    Returns
    -------
    result
        The references ingested and those skipped because the same file was
        already ingested.

    Raises
    ------
    RawIngestError
        If any file cannot be read, has an incomplete or inconsistent header,
        names an instrument not registered in the repository, or conflicts
        with data already in the repository. The message lists every bad
        file; nothing is ingested in that case.
    """
    if transfer not in _TRANSFER_MODES:
        known = ", ".join(str(mode) for mode in _TRANSFER_MODES)
        raise RawIngestError(f"Unknown transfer mode {transfer!r}; use one of {known}.")
    paths = [Path(f).expanduser().resolve() for f in files]
    if not paths:
        return IngestResult([], [])
    raws: list[_RawFile] = []
    problems: list[str] = []
    for path in paths:
        try:
            raws.append(_describe_raw(path))
        except FileNotFoundError:
            problems.append(f"{path}: no such file")
        except (KeyError, ValueError, OSError) as err:
            problems.append(f"{path}: {err.args[0] if err.args else err}")
    if problems:
        raise RawIngestError("Cannot ingest raws:\n  " + "\n  ".join(problems))

    registered = {record.name for record in butler.query_dimension_records("instrument")}
    missing = sorted({raw.metadata.instrument for raw in raws} - registered)
    if missing:
        raise RawIngestError(
            f"Instrument(s) {', '.join(missing)} not registered in {butler}; create the repository "
            "with them or call register_instruments first."
        )

    dataset_type = butler.get_dataset_type(RAW_DATASET_TYPE_NAME)
    to_ingest: dict[str, list[FileDataset]] = {}
    skipped: list[DatasetRef] = []
    with butler.transaction():
        for raw in raws:
            instrument = raw.metadata.instrument
            _sync(butler, raw, "day_obs", {
                "instrument": instrument,
                "id": raw.metadata.day_obs,
                "timespan": day_obs_timespan(raw.metadata.day_obs),
            })  # fmt: skip
            _sync(butler, raw, "group", {"instrument": instrument, "name": raw.record["group"]})
            _sync(butler, raw, "exposure", raw.record)
            data_id = butler.registry.expandDataId(
                instrument=instrument, detector=raw.detector, exposure=raw.record["id"]
            )
            run = raw_collection(instrument)
            existing = butler.find_dataset(dataset_type, data_id, collections=run)
            if existing is not None:
                existing_path = Path(butler.getURI(existing).ospath)
                if existing_path == raw.path:
                    skipped.append(existing)
                    continue
                raise RawIngestError(
                    f"Cannot ingest {raw.path}: {run} already has raw {_format_data_id(data_id)} "
                    f"from {existing_path}."
                )
            ref = DatasetRef(dataset_type, data_id, run=run)
            formatter = get_instrument(instrument).getRawFormatter(data_id)
            to_ingest.setdefault(run, []).append(
                FileDataset(path=ResourcePath(raw.path), refs=[ref], formatter=formatter)
            )
        for datasets in to_ingest.values():
            butler.ingest(*datasets, transfer=transfer)
    ingested = [ref for datasets in to_ingest.values() for d in datasets for ref in d.refs]
    _log.info("Ingested %d raws (%d already present)", len(ingested), len(skipped))
    return IngestResult(ingested=ingested, skipped=skipped)


def _sync(butler: Butler, raw: _RawFile, element: str, record: dict[str, Any]) -> None:
    try:
        butler.registry.syncDimensionData(element, record)
    except ConflictingDefinitionError as err:
        raise RawIngestError(
            f"Cannot ingest {raw.path}: its {element} record {record.get('id', record.get('name'))} "
            f"differs from the one already in the repository ({err})."
        ) from err


def _format_data_id(data_id: DataCoordinate) -> str:
    return ", ".join(f"{k}={v}" for k, v in data_id.required.items())
