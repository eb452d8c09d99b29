"""Certify calibrations into a CALIBRATION collection with a validity range.

Certification is what makes a combined calibration visible to every later
pipeline and to ``Butler(repo, collections=[calib]).get('bias', ...)``: the
dataset is associated with a CALIBRATION collection for a range of time
``[begin, end)``. The Butler refuses two datasets of the same type and data
ID whose ranges overlap in one collection; it then certifies nothing and
raises `~lsst.daf.butler.registry.ConflictingDefinitionError` with the range
in Julian dates. `certify_calibrations` turns that into a
`CertificationConflictError` an operator can act on: plain dates, the
dataset type, the collection and the range already there.
"""

from __future__ import annotations

__all__ = [
    "CertificationConflictError",
    "CertificationError",
    "certify_calibrations",
    "format_time",
    "parse_date",
]

import logging
from collections.abc import Iterable
from pathlib import Path

from astropy.time import Time
from lsst.daf.butler import Butler, CollectionType, DatasetRef, Timespan
from lsst.daf.butler.registry import ConflictingDefinitionError

_log = logging.getLogger(__name__)


class CertificationError(RuntimeError):
    """Calibrations could not be certified; nothing was certified."""


class CertificationConflictError(CertificationError):
    """The new validity range overlaps one already in the collection.

    Parameters
    ----------
    dataset_type
        Dataset type being certified.
    collection
        The CALIBRATION collection.
    begin, end
        The requested range, as given.
    existing
        ``(data ID text, begin, end)`` of each dataset already certified
        over an overlapping range.
    """

    def __init__(
        self,
        dataset_type: str,
        collection: str,
        begin: str,
        end: str,
        existing: list[tuple[str, str, str]],
    ) -> None:
        self.dataset_type = dataset_type
        self.collection = collection
        self.begin = begin
        self.end = end
        self.existing = existing
        if existing:
            ranges = "; ".join(f"{data_id} is valid [{b}, {e})" for data_id, b, e in existing)
            detail = f" Already certified there: {ranges}."
        else:
            detail = ""
        super().__init__(
            f"Cannot certify {dataset_type} into {collection} for [{begin}, {end}): the range overlaps "
            f"a {dataset_type} already certified in that collection.{detail} Nothing was certified. "
            "Choose a range that does not overlap, or another CALIBRATION collection."
        )


def parse_date(value: str | Time | None) -> Time | None:
    """Parse a validity-range bound.

    Parameters
    ----------
    value
        ISO date or date-time (``2022-09-29``, ``2022-09-29T12:00:00``),
        interpreted in TAI as Rubin's certification does; an
        `astropy.time.Time`; or `None` for an unbounded side.

    Raises
    ------
    ValueError
        If a string is not an ISO date.
    """
    if value is None or isinstance(value, Time):
        return value
    try:
        return Time(value, scale="tai", format="isot" if "T" in value else "iso")
    except ValueError:
        raise ValueError(
            f"Not an ISO date: {value!r}; write e.g. 2022-09-29 or 2022-09-29T12:00:00."
        ) from None


def format_time(time: Time | None) -> str:
    """Format a validity-range bound for an operator.

    Parameters
    ----------
    time
        The bound, or `None` for unbounded.

    Returns
    -------
    text
        ``YYYY-MM-DD`` at midnight, ``YYYY-MM-DDThh:mm:ss`` otherwise,
        ``unbounded`` for `None`.
    """
    if time is None:
        return "unbounded"
    text = time.tai.isot
    date, _, clock = text.partition("T")
    return date if clock.startswith("00:00:00.000") else text.split(".")[0]


def _find_refs(butler: Butler, input_collection: str, dataset_type: str) -> list[DatasetRef]:
    info = butler.collections.get_info(input_collection)
    if info.type is CollectionType.CALIBRATION:
        raise CertificationError(
            f"Input collection {input_collection} is a CALIBRATION collection; give the RUN or CHAINED "
            "collection the calibrations were written to."
        )
    # find_first over a chain searches every child (the CLI's
    # --search-all-inputs), taking the first dataset per data ID.
    refs = butler.query_datasets(
        dataset_type, collections=input_collection, find_first=True, explain=False, limit=None
    )
    if not refs:
        raise CertificationError(
            f"No {dataset_type} datasets found in {input_collection}; nothing certified."
        )
    return refs


def _overlapping(
    butler: Butler, calib_collection: str, refs: Iterable[DatasetRef], timespan: Timespan
) -> list[tuple[str, str, str]]:
    data_ids = {ref.dataId for ref in refs}
    dataset_type = next(iter(refs)).datasetType
    found = []
    for association in butler.registry.queryDatasetAssociations(
        dataset_type, collections=[calib_collection], collectionTypes={CollectionType.CALIBRATION}
    ):
        span = association.timespan
        if span is None or association.ref.dataId not in data_ids or not span.overlaps(timespan):
            continue
        data_id = ", ".join(f"{k}={v}" for k, v in association.ref.dataId.required.items())
        found.append((data_id, format_time(span.begin), format_time(span.end)))
    return sorted(found)


def certify_calibrations(
    repo: str | Path | Butler,
    input_collection: str,
    calib_collection: str,
    dataset_type: str,
    *,
    begin_date: str | Time | None,
    end_date: str | Time | None,
) -> list[DatasetRef]:
    """Certify all datasets of a type from a collection for ``[begin, end)``.

    Parameters
    ----------
    repo
        Repository root, or a writeable `Butler`.
    input_collection
        RUN or CHAINED collection holding the calibrations (e.g. a pipetask
        output collection ``u/ocps/<job id>``). Every child of a chain is
        searched, the first found per data ID is certified.
    calib_collection
        CALIBRATION collection to certify into; registered if it does not
        exist.
    dataset_type
        ``bias``, ``dark``, ``flat``, ``defects``, ``ptc``...
    begin_date, end_date
        Validity range, ISO dates in TAI (``2022-09-29``); `None` for an
        unbounded side. The end is exclusive.

    Returns
    -------
    refs
        The datasets certified.

    Raises
    ------
    CertificationConflictError
        If the range overlaps one already certified for the same type and
        data ID in ``calib_collection``. Nothing is certified.
    CertificationError
        If no datasets are found, the range is empty, or a collection has
        the wrong type. Nothing is certified.
    ValueError
        If a date is not an ISO date.
    """
    begin = parse_date(begin_date)
    end = parse_date(end_date)
    if begin is not None and end is not None and begin >= end:
        raise CertificationError(
            f"Validity range [{format_time(begin)}, {format_time(end)}) is empty: the begin date must "
            "precede the end date. Nothing certified."
        )
    timespan = Timespan(begin, end)
    butler = repo if isinstance(repo, Butler) else Butler.from_config(str(repo), writeable=True)
    try:
        refs = _find_refs(butler, input_collection, dataset_type)
        if butler.collections.register(calib_collection, CollectionType.CALIBRATION):
            _log.info("Registered CALIBRATION collection %s", calib_collection)
        elif (kind := butler.collections.get_info(calib_collection).type) is not CollectionType.CALIBRATION:
            raise CertificationError(
                f"Collection {calib_collection} is a {kind.name} collection, not a CALIBRATION collection; "
                "choose another name. Nothing certified."
            )
        try:
            butler.registry.certify(calib_collection, refs, timespan)
        except ConflictingDefinitionError as err:
            raise CertificationConflictError(
                dataset_type,
                calib_collection,
                format_time(begin),
                format_time(end),
                _overlapping(butler, calib_collection, refs, timespan),
            ) from err
        _log.info(
            "Certified %d %s into %s for [%s, %s)",
            len(refs),
            dataset_type,
            calib_collection,
            format_time(begin),
            format_time(end),
        )
        return refs
    finally:
        if not isinstance(repo, Butler):
            butler.close()
