"""Which collections a report reads: what each one holds, and what a script's log names.

A calibration script leaves one output collection per OCPS job
(``u/ocps/<jobId>``, a CHAINED collection whose first child is the job's
RUN), and certifies what it accepted into a CALIBRATION collection. A report
is made from any of these:

* an OCPS output collection (or its RUN): classified by the datasets the
  job itself wrote (``verify<Type>Stats``: a verification; ``bias``,
  ``dark``, ``flat``, ``defects``, ``ptc``: a generation; ``cpPtcExtract``:
  gains from flat pairs);
* a CALIBRATION collection (e.g. a run's ``calib_collection``): the RUNs
  its certified calibrations came from are the generations, and the
  verifications that read those RUNs are found through the chains that
  hold them.

`collections_from_log` reads the collections out of the log a calibration
script writes (the OCPS jobs it ran, the verification reports and the final
summary), which is all the queue page knows of a script.
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_PRODUCTS",
    "GAIN_DATASET_TYPE",
    "VERIFIED_TYPES",
    "ReportSourceError",
    "RunCollections",
    "collections_from_log",
    "find_run_collections",
    "jobs_from_log",
    "output_run",
    "verification_stats_type",
]

import dataclasses
import re
from collections.abc import Iterable, Sequence

from lsst.daf.butler import Butler, CollectionInfo, CollectionType, MissingCollectionError

from ..cp.butler.dataset_types import CALIBRATION_DATASET_TYPES

#: Image types that are verified, in the order a script processes them.
VERIFIED_TYPES: tuple[str, ...] = ("BIAS", "DARK", "FLAT")

#: Dataset types of the calibration products, in the order a script makes them.
CALIBRATION_PRODUCTS: tuple[str, ...] = tuple(definition.name for definition in CALIBRATION_DATASET_TYPES)

#: The per-pair photon transfer measurements (gains from flat pairs).
GAIN_DATASET_TYPE = "cpPtcExtract"

# What a calibration script's log says about its jobs and collections:
# "OCPS job <id> finished: bias verification -> u/ocps/<id>" (each job),
# "Verification collection: ..." (a verification report) and
# "    generation collection: ..." (the final summary).
_JOB_FINISHED = re.compile(r"OCPS job (?P<job>\S+) finished: (?P<what>.+?) -> (?P<collection>\S+)\s*$")
_COLLECTION_LINE = re.compile(
    r"^\s*(?:generation|verification) collection:\s*(?P<collection>[^\s(]\S*)\s*$", re.IGNORECASE
)


class ReportSourceError(ValueError):
    """A collection cannot be reported on; the message says which and why."""


def verification_stats_type(image_type: str) -> str:
    """Return the run-level statistics dataset type of an image type (``verifyBiasStats``)."""
    return f"verify{image_type.capitalize()}Stats"


@dataclasses.dataclass
class RunCollections:
    """The collections of one script run (or any set), by what they hold.

    Attributes
    ----------
    generation : `dict` [`str`, `str`]
        Calibration dataset type (``bias``, ``dark``, ``flat``,
        ``defects``, ``ptc``) -> the collection that made it.
    verification : `dict` [`str`, `str`]
        Image type (``BIAS``, ``DARK``, ``FLAT``) -> its verification
        collection.
    gains : `list` [`str`]
        Collections with gains from flat pairs (``cpPtcExtract``): the
        gain-only jobs and the PTC jobs.
    calibration : `list` [`str`]
        CALIBRATION collections given.
    unused : `list` [`str`]
        Collections given that hold none of these.
    notes : `list` [`str`]
        What the reader should know about the choices made (e.g. a
        product certified by several runs: the latest is shown).
    """

    generation: dict[str, str] = dataclasses.field(default_factory=dict)
    verification: dict[str, str] = dataclasses.field(default_factory=dict)
    gains: list[str] = dataclasses.field(default_factory=list)
    calibration: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Is there nothing to report on?"""
        return not (self.generation or self.verification or self.gains)

    def generation_of(self, image_type: str) -> str | None:
        """Return the generation collection of an image type, if it is one of these."""
        return self.generation.get(image_type.lower())


def output_run(butler: Butler, name: str) -> str:
    """Return the RUN a job wrote into: the collection itself, or a pipetask chain's own run.

    ``pipetask run -o NAME`` makes ``NAME`` a CHAINED collection whose first
    child is ``NAME/<timestamp>``, followed by its inputs: only that first
    child holds what the job made.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    name : `str`
        A collection.

    Raises
    ------
    ReportSourceError
        If there is no such collection.
    """
    info = _info(butler, name)
    if info.type == CollectionType.CHAINED and info.children and info.children[0].startswith(name + "/"):
        return info.children[0]
    return name


def _info(butler: Butler, name: str, **kwargs: bool) -> CollectionInfo:
    try:
        return butler.collections.get_info(name, **kwargs)
    except MissingCollectionError:
        raise ReportSourceError(f"There is no collection {name!r} in the repository.") from None


def _held(butler: Butler, name: str) -> frozenset[str]:
    """Dataset types that a job wrote into the collection ``name`` (its own run)."""
    run = output_run(butler, name)
    return _info(butler, run, include_summary=True).dataset_types or frozenset()


def find_run_collections(butler: Butler, names: Sequence[str]) -> RunCollections:
    """Sort collections by what they hold (see the module's description).

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    names : sequence of `str`
        Output collections of OCPS jobs (or their RUNs), or CALIBRATION
        collections, in any order.

    Returns
    -------
    collections : `RunCollections`
        What each collection holds. Later collections replace earlier ones
        that hold the same thing.

    Raises
    ------
    ReportSourceError
        If a collection does not exist.
    """
    result = RunCollections()
    for name in dict.fromkeys(names):
        info = _info(butler, name)
        if info.type == CollectionType.CALIBRATION:
            result.calibration.append(name)
            _add_calibration_collection(butler, name, result)
            continue
        if not _classify(name, _held(butler, name), result):
            result.unused.append(name)
    return result


def _classify(name: str, held: frozenset[str], result: RunCollections) -> bool:
    """Record what a job's collection holds; return whether it holds anything reported."""
    found = False
    for image_type in VERIFIED_TYPES:
        if verification_stats_type(image_type) in held:
            result.verification[image_type] = name
            found = True
    for product in CALIBRATION_PRODUCTS:
        if product in held:
            result.generation[product] = name
            found = True
    if GAIN_DATASET_TYPE in held:
        if name not in result.gains:
            result.gains.append(name)
        found = True
    return found


def _add_calibration_collection(butler: Butler, name: str, result: RunCollections) -> None:
    """Add the generations certified in a CALIBRATION collection and their verifications."""
    held = _info(butler, name, include_summary=True).dataset_types or frozenset()
    for product in CALIBRATION_PRODUCTS:
        if product not in held:
            continue
        refs = butler.query_datasets(product, collections=name, find_first=False, explain=False)
        runs = sorted({ref.run for ref in refs}, key=_run_order)
        if not runs:
            continue
        if len(runs) > 1:
            result.notes.append(
                f"{product}: {len(runs)} runs certified into {name}; the latest, {runs[-1]}, is shown."
            )
        run = runs[-1]
        result.generation[product] = _public_name(butler, run)
        if product == "ptc":
            result.gains.append(result.generation[product])
        image_type = product.upper()
        if image_type in VERIFIED_TYPES:
            verification = _verification_of(butler, run, image_type)
            if verification is not None:
                result.verification[image_type] = verification


def _public_name(butler: Butler, run: str) -> str:
    """Return the job's chain (``u/ocps/<id>``) of a pipetask run, else the run."""
    parent, _, _ = run.rpartition("/")
    if parent:
        try:
            if output_run(butler, parent) == run:
                return parent
        except ReportSourceError:
            pass
    return run


def _verification_of(butler: Butler, generation_run: str, image_type: str) -> str | None:
    """Find the latest verification job that read a generation run (internal verification)."""
    parents = _info(butler, generation_run, include_parents=True).parents or frozenset()
    stats = verification_stats_type(image_type)
    found = [
        parent
        for parent in parents
        if _info(butler, parent).type == CollectionType.CHAINED and stats in _held(butler, parent)
    ]
    return max(found, key=lambda parent: _run_order(output_run(butler, parent))) if found else None


def _run_order(run: str) -> tuple[str, str]:
    """Order runs by the pipetask timestamp that ends their name, then by name."""
    last = run.rpartition("/")[2]
    return (last if re.fullmatch(r"\d{8}T\d{6}Z?", last) else "", run)


def jobs_from_log(messages: Iterable[str]) -> list[tuple[str, str, str]]:
    """Return the OCPS jobs a calibration script's log says have finished.

    Parameters
    ----------
    messages : iterable of `str`
        Log messages of the script, oldest first.

    Returns
    -------
    jobs : `list` [`tuple` [`str`, `str`, `str`]]
        ``(job id, what it was for, output collection)``, e.g. ``("1f2e",
        "bias verification", "u/ocps/1f2e")``, in the order they finished.
    """
    jobs = []
    for message in messages:
        for line in message.splitlines():
            match = _JOB_FINISHED.search(line)
            if match:
                jobs.append((match["job"], match["what"], match["collection"]))
    return jobs


def collections_from_log(messages: Iterable[str]) -> list[str]:
    """Return the output collections a calibration script's log names, in order, once each.

    The finished OCPS jobs, the verification reports' "Generation
    collection" and "Verification collection", and the final summary's
    collections.

    Parameters
    ----------
    messages : iterable of `str`
        Log messages of the script.
    """
    found: dict[str, None] = {}
    for message in messages:
        for line in message.splitlines():
            match = _JOB_FINISHED.search(line) or _COLLECTION_LINE.match(line)
            if match:
                found[match["collection"]] = None
    return list(found)
