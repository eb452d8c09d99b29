"""Before the first image: does each job of the run find the calibrations it reads?

A calibration run submits a series of OCPS jobs (generation, verification,
defects, PTC, gains). Each reads certified calibrations from its input
collections: the pipeline says which (`calibrations_read`), minus those the
run itself makes and certifies before the job (a dark generated after this
run's bias uses that bias). `find_shortfalls` looks each one up in the
job's input collections, for every configured detector, valid now; and
`describe_shortfalls` says what is missing in words an operator can act on,
one sentence per group of jobs that read the same collections, e.g.

    external verification needs a certified bias, dark and flat for
    detector 0 in LATISS/calib valid now; none found for: bias, dark, flat.
    Run once with generate_calibrations: true, or name a collection that
    has them in input_collections_verify_*.
"""

from __future__ import annotations

__all__ = ["JobInputs", "Shortfall", "describe_shortfalls", "find_shortfalls", "format_detectors"]

import dataclasses
from collections.abc import Sequence

from lsst.daf.butler import Butler, Timespan

from ..cp.butler.calibration_needs import (
    CALIBRATION_ORDER,
    calibrations_read,
    missing_calibrations,
)
from ..cp.butler.pipetask_options import parse_config_options

#: Calibrations looked up per physical filter (their dataset type has that dimension).
_BY_FILTER = frozenset({"flat"})


@dataclasses.dataclass(frozen=True)
class JobInputs:
    """One OCPS job a run will submit, and where its calibrations come from.

    Attributes
    ----------
    step : `str`
        What the job is for: ``"bias verification"``, ``"dark generation"``,
        ``"gains from flat pairs"``...
    pipeline : `str`
        Pipeline, as the job names it (``${CP_VERIFY_DIR}/...``).
    options : `str`
        The job's ``config_options_*`` (``-c``/``-C`` overrides change what
        ISR reads).
    collections : `tuple` [`str`, ...]
        Input collections named in the configuration, where the job's
        calibrations must be found.
    collection_options : `tuple` [`str`, ...]
        The configuration options naming them, for the message.
    provided : `frozenset` [`str`]
        Calibrations the run makes and certifies before the job, and the
        job's own product when it verifies a generated calibration: not
        looked up.
    external : `bool`
        Verification of images against calibrations from the input
        collections (no generation).
    generating : `bool`
        Does the run generate calibrations (changes the advice)?
    """

    step: str
    pipeline: str
    options: str
    collections: tuple[str, ...]
    collection_options: tuple[str, ...]
    provided: frozenset[str] = frozenset()
    external: bool = False
    generating: bool = False

    def needs(self) -> tuple[str, ...]:
        """Calibrations to look up: those the pipeline reads, minus those provided.

        Raises
        ------
        lsst.ts.calibscripts.cp.butler.calibration_needs.CalibrationNeedsError
            If the pipeline cannot be loaded with the options (pipetask
            would refuse the job too).
        """
        overrides = parse_config_options(self.options).overrides
        return tuple(n for n in calibrations_read(self.pipeline, overrides) if n not in self.provided)


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """Calibrations one job needs and does not find.

    Attributes
    ----------
    job : `JobInputs`
        The job.
    needs : `tuple` [`str`, ...]
        Every calibration it looks up.
    missing : `dict` [`str`, `list` [`int`]]
        Calibration -> detectors without one valid now.
    detectors : `tuple` [`int`, ...]
        The detectors looked up.
    physical_filter : `str` or None
        Filter of the flats looked up (None: any).
    """

    job: JobInputs
    needs: tuple[str, ...]
    missing: dict[str, list[int]]
    detectors: tuple[int, ...]
    physical_filter: str | None = None


def find_shortfalls(
    butler: Butler,
    jobs: Sequence[JobInputs],
    *,
    instrument: str,
    detectors: Sequence[int],
    timespan: Timespan,
    physical_filter: str | None = None,
) -> list[Shortfall]:
    """Look up every calibration each job needs; return what is missing.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        The repository.
    jobs : `~collections.abc.Sequence` [`JobInputs`]
        The run's jobs. Their collections must exist (the caller reports
        missing collections itself).
    instrument : `str`
        Instrument name.
    detectors : `~collections.abc.Sequence` [`int`]
        Configured detectors.
    timespan : `lsst.daf.butler.Timespan`
        When the calibrations must be valid (now).
    physical_filter : `str`, optional
        Filter the flats will be taken with; None accepts any.

    Returns
    -------
    shortfalls : `list` [`Shortfall`]
        One per job that misses something, in the order of ``jobs``.

    Raises
    ------
    lsst.ts.calibscripts.cp.butler.calibration_needs.CalibrationNeedsError
        If a job's pipeline cannot be loaded with its options.
    """
    shortfalls = []
    for job in jobs:
        needs = job.needs()
        missing: dict[str, list[int]] = {}
        for dataset_type in needs:
            if job.collections:
                absent = missing_calibrations(
                    butler,
                    dataset_type,
                    job.collections,
                    instrument,
                    detectors,
                    timespan,
                    physical_filter=physical_filter if dataset_type in _BY_FILTER else None,
                )
            else:
                absent = list(detectors)  # no input collections: only raws
            if absent:
                missing[dataset_type] = absent
        if missing:
            shortfalls.append(Shortfall(job, needs, missing, tuple(detectors), physical_filter))
    return shortfalls


def format_detectors(detectors: Sequence[int]) -> str:
    """Return ``detector 0``, ``detectors 0, 4`` or ``detectors 0-8`` (runs of 3+ as ranges)."""
    ids = sorted(set(detectors))
    parts: list[str] = []
    start = 0
    while start < len(ids):
        end = start
        while end + 1 < len(ids) and ids[end + 1] == ids[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{ids[start]}-{ids[end]}")
        else:
            parts.extend(str(i) for i in ids[start : end + 1])
        start = end + 1
    noun = "detector" if len(ids) == 1 else "detectors"
    return f"{noun} {', '.join(parts)}"


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _ordered(names: set[str]) -> list[str]:
    known = [name for name in CALIBRATION_ORDER if name in names]
    return known + sorted(names - set(known))


def _options_text(options: list[str]) -> str:
    verify = {
        "input_collections_verify_bias",
        "input_collections_verify_dark",
        "input_collections_verify_flat",
    }
    if verify <= set(options):
        options = ["input_collections_verify_*"] + [o for o in options if o not in verify]
    return " or ".join(options)


def describe_shortfalls(shortfalls: Sequence[Shortfall]) -> list[str]:
    """Say what is missing: one sentence per kind of job and collections read.

    The external verifications of every image type are one step to an
    operator ("external verification", as the procedure calls it); other
    jobs reading the same collections are named together.

    Parameters
    ----------
    shortfalls : `~collections.abc.Sequence` [`Shortfall`]
        From `find_shortfalls`.

    Returns
    -------
    sentences : `list` [`str`]
        E.g. "external verification needs a certified bias, dark and flat
        for detector 0 in LATISS/calib valid now; none found for: bias,
        dark, flat (filter empty~empty). Run once with
        generate_calibrations: true, or name a collection that has them in
        input_collections_verify_*."
    """
    groups: dict[tuple[tuple[str, ...], bool, bool], list[Shortfall]] = {}
    for shortfall in shortfalls:
        job = shortfall.job
        groups.setdefault((job.collections, job.generating, job.external), []).append(shortfall)
    sentences = []
    for (collections, generating, external), members in groups.items():
        steps = ["external verification"] if external else list(dict.fromkeys(m.job.step for m in members))
        needs = _ordered({n for s in members for n in s.needs})
        detectors = sorted({d for s in members for d in s.detectors})
        missing: dict[str, set[int]] = {}
        for s in members:
            for dataset_type, absent in s.missing.items():
                missing.setdefault(dataset_type, set()).update(absent)
        physical_filter = members[0].physical_filter
        items = []
        for dataset_type in _ordered(set(missing)):
            details = []
            if dataset_type in _BY_FILTER and physical_filter:
                details.append(f"filter {physical_filter}")
            if missing[dataset_type] != set(detectors):
                details.append(format_detectors(sorted(missing[dataset_type])))
            items.append(f"{dataset_type} ({'; '.join(details)})" if details else dataset_type)
        options = _options_text(list(dict.fromkeys(o for s in members for o in s.job.collection_options)))
        where = ", ".join(collections) if collections else "no input collection (only raws)"
        if generating:
            advice = (
                "Generate them in this run or an earlier one (generate_calibrations: true), "
                f"or name a collection that has them in {options}."
            )
        else:
            advice = (
                f"Run once with generate_calibrations: true, or name a collection that has them in {options}."
            )
        sentences.append(
            f"{_and_list(steps)} {'needs' if len(steps) == 1 else 'need'} a certified {_and_list(needs)} "
            f"for {format_detectors(detectors)} in {where} valid now; none found for: {', '.join(items)}. "
            f"{advice}"
        )
    return sentences
