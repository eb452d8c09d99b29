"""Which certified calibrations a pipeline reads, and whether a repository has them.

A calibration job fails late and far from its cause when a calibration it
reads is missing: pipetask builds its quantum graph, finds no ``bias`` for
the exposures' time in the input collections, and stops with "Not enough
datasets (0) found for non-optional connection ...". At the summit that is
after the night's images were taken. Both questions can be answered before
the first image:

* `calibrations_read`: the calibrations a pipeline's tasks need, read from
  the pipeline itself (with the job's ``-c``/``-C`` overrides applied, since
  ``isr:doDark=False`` removes the dark), not from a table that could drift
  from the pipelines: every prerequisite input that is a calibration
  (``isCalibration``) and is required (``minimum`` > 0).
* `missing_calibrations`: for which detectors a repository's collections
  hold no dataset of a type whose validity range covers a time, looked up
  as pipetask looks up prerequisites (`lsst.daf.butler.Butler.find_dataset`
  with a timespan, the first collection that has one wins).
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_ORDER",
    "CalibrationNeedsError",
    "calibrations_read",
    "missing_calibrations",
    "timespan_now",
]

import functools
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from astropy.time import Time, TimeDelta
from lsst.daf.butler import Butler, Timespan
from lsst.daf.butler.registry import MissingDatasetTypeError

from .pipeline_locations import pipeline_environment
from .pipetask_options import PipetaskOptionError, check_pipeline

#: Order in which calibration types are named in messages (others follow, sorted).
CALIBRATION_ORDER = ("bias", "dark", "flat", "defects", "ptc")

# Loading a pipeline expands $CP_PIPE_DIR / $CP_VERIFY_DIR in its imports from
# os.environ; the variables are set for the load only, one load at a time.
_ENVIRONMENT_LOCK = threading.Lock()


class CalibrationNeedsError(ValueError):
    """A pipeline cannot be loaded with the given overrides (the job would fail too)."""


@contextmanager
def _pipeline_variables() -> Iterator[None]:
    wanted = pipeline_environment({})  # CP_PIPE_DIR and CP_VERIFY_DIR only
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _ordered(names: set[str]) -> tuple[str, ...]:
    known = [name for name in CALIBRATION_ORDER if name in names]
    return tuple(known + sorted(names - set(known)))


@functools.lru_cache(maxsize=64)
def calibrations_read(pipeline: str, overrides: tuple[tuple[str, str], ...] = ()) -> tuple[str, ...]:
    """Return the certified calibrations a pipeline's tasks cannot run without.

    Parameters
    ----------
    pipeline : `str`
        As an OCPS job names it: ``${CP_PIPE_DIR}/pipelines/LATISS/cpFlat.yaml``,
        optionally with ``#subset``.
    overrides : `tuple` [`tuple` [`str`, `str`], ...], optional
        The job's configuration overrides, as
        `~lsst.ts.calibscripts.cp.butler.pipetask_options.PipetaskOptions.overrides`:
        ``("-c", "LABEL:FIELD=VALUE")`` or ``("-C", "LABEL:FILE")``.

    Returns
    -------
    dataset_types : `tuple` [`str`, ...]
        Dataset type names (``bias``, ``dark``, ``flat``...), in
        `CALIBRATION_ORDER`. Optional calibrations (``defects`` for ISR) are
        not included.

    Raises
    ------
    CalibrationNeedsError
        If the pipeline is not one of this package's, an override names a
        task label the pipeline does not have, or the configuration is
        invalid: pipetask would refuse the job for the same reason.
    """
    # Imported here: pipe_base is heavy, and only the preflight and the bootstrap need it.
    from lsst.pipe.base import Pipeline

    try:
        resolved = check_pipeline(pipeline)
    except PipetaskOptionError as e:
        raise CalibrationNeedsError(str(e)) from None
    try:
        with _pipeline_variables():
            loaded = Pipeline.from_uri(resolved)
        for flag, value in overrides:
            label, _, rest = value.partition(":")
            if flag == "-c":
                field, _, field_value = rest.partition("=")
                loaded.addConfigOverride(label, field, field_value)
            else:
                loaded.addConfigFile(label, rest)
        graph = loaded.to_graph()
    except Exception as e:
        # LookupError for an unknown label, FieldValidationError, ValueError...: the
        # message is pipe_base's, as pipetask would print it.
        raise CalibrationNeedsError(f"{pipeline}: {type(e).__name__}: {e}") from None
    needed: set[str] = set()
    for task in graph.tasks.values():
        connections = task.get_connections()
        for name, edge in task.prerequisite_inputs.items():
            connection = getattr(connections, name)
            if connection.isCalibration and connection.minimum > 0:
                needed.add(edge.parent_dataset_type_name)
    return _ordered(needed)


def timespan_now(seconds: float = 1.0) -> Timespan:
    """Return a timespan starting now, ``seconds`` long, for "valid now" lookups.

    Parameters
    ----------
    seconds : `float`, optional
        Length; a short one, so that at most one validity range of a type
        matches in a collection.
    """
    now = Time.now().tai
    return Timespan(now, now + TimeDelta(seconds, format="sec"))


def missing_calibrations(
    butler: Butler,
    dataset_type: str,
    collections: Sequence[str],
    instrument: str,
    detectors: Sequence[int],
    timespan: Timespan,
    *,
    physical_filter: str | None = None,
) -> list[int]:
    """Return the detectors for which no calibration of a type is valid over a timespan.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    dataset_type : `str`
        ``bias``, ``dark``, ``flat``...
    collections : `~collections.abc.Sequence` [`str`]
        Searched in order, as a job's input collections are.
    instrument : `str`
        Instrument name.
    detectors : `~collections.abc.Sequence` [`int`]
        Detector ids.
    timespan : `lsst.daf.butler.Timespan`
        The time the calibration must be valid at (see `timespan_now`).
    physical_filter : `str`, optional
        For types with a ``physical_filter`` dimension (flats): the filter
        the images will be taken with. If `None`, a calibration of any
        filter will do.

    Returns
    -------
    detectors : `list` [`int`]
        Those without one (all of them if the dataset type is not even
        registered).

    Raises
    ------
    lsst.daf.butler.MissingCollectionError
        If a collection does not exist.
    """
    try:
        registered = butler.get_dataset_type(dataset_type)
    except MissingDatasetTypeError:
        return list(detectors)
    by_filter = "physical_filter" in registered.dimensions.names
    missing = []
    for detector in detectors:
        if by_filter and physical_filter is None:
            found = bool(
                butler.query_datasets(
                    registered,
                    collections=list(collections),
                    where=f"instrument = '{instrument}' AND detector = {int(detector)} "
                    f"AND {dataset_type}.timespan OVERLAPS :when",
                    bind={"when": timespan},
                    find_first=False,
                    explain=False,
                    limit=1,
                )
            )
        else:
            data_id: dict[str, str | int] = {"instrument": instrument, "detector": int(detector)}
            if by_filter:
                assert physical_filter is not None
                data_id["physical_filter"] = physical_filter
            found = (
                butler.find_dataset(registered, data_id, collections=list(collections), timespan=timespan)
                is not None
            )
        if not found:
            missing.append(int(detector))
    return missing
