"""Make a report: find the collections, read every section, draw the figures, write the page.

`make_report` is what ``calibscripts report`` and the queue page call. It
says what it is doing through a ``progress`` callback (the command prints
each step, the page shows the latest), and writes ``index.html`` last, so
that a directory with an ``index.html`` holds a complete report.
"""

from __future__ import annotations

__all__ = ["INDEX", "ReportResult", "make_report"]

import dataclasses
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lsst.daf.butler import Butler

from ..cp.camera.description import get_instrument_description
from . import figures as draw
from .extract import DEFAULT_THRESHOLD, GainRow, ReportData, extract_report
from .render import FigureFile, render_report
from .sources import ReportSourceError, find_run_collections

#: Name of the report page in its directory.
INDEX = "index.html"

_HISTORY_QUANTITIES = (
    ("gain", "e-/ADU"),
    ("read noise", "e-"),
    ("bias level", "ADU"),
    ("dark current", "e-/s"),
)


@dataclasses.dataclass(frozen=True)
class ReportResult:
    """A report written.

    Attributes
    ----------
    path : `pathlib.Path`
        The page (``<directory>/index.html``).
    data : `ReportData`
        What it shows.
    figures : `int`
        Figure files written.
    seconds : `float`
        Time it took to make.
    """

    path: Path
    data: ReportData
    figures: int
    seconds: float


def _write(directory: Path, name: str, content: bytes) -> str:
    (directory / name).write_bytes(content)
    return name


def _draw(data: ReportData, directory: Path, progress: Callable[[str], None]) -> dict[str, list[FigureFile]]:
    """Draw every figure of a report into ``directory``; return them by group."""
    groups: dict[str, list[FigureFile]] = defaultdict(list)
    instrument = get_instrument_description(data.instrument)

    by_detector: dict[int, list[GainRow]] = defaultdict(list)
    for row in data.gains:
        by_detector[row.detector].append(row)
    if by_detector:
        progress(f"Drawing the gains of {len(by_detector)} detector(s)")
    for detector, rows in sorted(by_detector.items()):
        name = _write(directory, f"gain-{detector}.png", draw.gain_figure(rows))
        groups["gains"].append(
            FigureFile(
                name, f"Gain of each flat pair against its mean signal, {rows[0].detector_name}", "wide"
            )
        )

    if data.ptc:
        progress(f"Drawing the photon transfer curves of {len(data.ptc)} detector(s)")
    for curves in data.ptc:
        name = _write(directory, f"ptc-{curves.detector}.png", draw.ptc_figure(curves))
        groups["ptc"].append(
            FigureFile(
                name,
                f"Variance against mean per amplifier with the fitted model (orange) and the residuals, "
                f"{curves.detector_name}",
                "wide",
            )
        )

    calibrations = [image for image in data.images if image.kind in ("bias", "dark", "flat")]
    if data.images:
        progress(f"Drawing {len(data.images)} image(s) with zscale")
    for image in calibrations:
        plain = dataclasses.replace(image, defects=[])
        name = _write(directory, f"{image.kind}-{image.detector}.png", draw.image_figure(plain))
        groups["calibrations"].append(
            FigureFile(
                name, f"Combined {image.kind}, {image.detector_name} ({image.collection})", "thumbnail"
            )
        )
        if image.defects:
            name = _write(directory, f"defects-{image.detector}.png", draw.image_figure(image))
            groups["defects"].append(
                FigureFile(
                    name,
                    f"{len(image.defects)} defects (red) over the combined flat, {image.detector_name}",
                    "thumbnail",
                )
            )
    for image in data.images:
        if image.kind.startswith("verify"):
            name = _write(
                directory, f"{image.kind}-{image.exposure}-{image.detector}.png", draw.image_figure(image)
            )
            groups["verify-images"].append(
                FigureFile(
                    name,
                    f"{image.kind} of exposure {image.exposure}, {image.detector_name} ({image.collection})",
                    "thumbnail",
                )
            )
    for product in ("bias", "dark", "flat"):
        images = [image for image in calibrations if image.kind == product]
        if len(images) > 1:
            name = _write(directory, f"mosaic-{product}.png", draw.mosaic_figure(images, instrument))
            groups["mosaic"].append(
                FigureFile(name, f"Combined {product} of every detector, in place", "wide")
            )

    if data.history:
        progress(f"Drawing the history of {len({p.run for p in data.history})} calibration run(s)")
    truth = {(detector, amp): gain for detector, amps in data.truth.items() for amp, gain in amps.items()}
    if data.simulated:
        noise = {
            (detector.id, amp): value
            for detector in instrument.detectors
            for amp, value in detector.read_noise.items()
        }
    else:
        noise = {}
    for quantity, unit in _HISTORY_QUANTITIES:
        if not any(point.quantity == quantity for point in data.history):
            continue
        known = truth if quantity == "gain" else noise if quantity == "read noise" else None
        content = draw.history_figure(
            data.history, quantity, unit, truth=known or None, current_runs=data.runs
        )
        name = _write(directory, f"history-{quantity.replace(' ', '-')}.png", content)
        groups["history"].append(
            FigureFile(name, f"{quantity.capitalize()} ({unit}) of every run, in time order", "wide")
        )
    return groups


def make_report(
    repo: str | os.PathLike[str],
    collections: Sequence[str],
    directory: str | os.PathLike[str],
    *,
    threshold: int | Mapping[str, int] = DEFAULT_THRESHOLD,
    simulated: bool | None = None,
    history: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Make the report of some collections of a repository.

    Parameters
    ----------
    repo : `str` or `os.PathLike`
        The Butler repository (its directory or configuration).
    collections : sequence of `str`
        Output collections of a script's OCPS jobs, and/or the CALIBRATION
        collection it certified into (see
        `~lsst.ts.calibscripts.report.sources.find_run_collections`).
    directory : `str` or `os.PathLike`
        Where to write ``index.html`` and its figures (created if needed).
    threshold : `int` or mapping, optional
        ``number_verification_tests_threshold_<type>`` of the run (default
        8), for every type or by image type (``BIAS``...).
    simulated : `bool`, optional
        Whether the data came from the simulator (true gains shown);
        guessed from where the raws are by default.
    history : `bool`, optional
        Include the history of the repository.
    progress : callable, optional
        Told what is being done, one short sentence at a time.

    Returns
    -------
    result : `ReportResult`

    Raises
    ------
    ReportSourceError
        If a collection does not exist, or none holds anything to report.
    """
    say = progress or (lambda message: None)
    start = time.perf_counter()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    say(f"Opening the repository {repo}")
    with Butler.from_config(str(repo)) as butler:
        say(f"Finding what {len(collections)} collection(s) hold")
        found = find_run_collections(butler, collections)
        if found.empty:
            raise ReportSourceError(
                f"None of the collections {', '.join(collections)} holds verification statistics, "
                "calibrations or gains: nothing to report."
            )
        data = extract_report(
            butler,
            found,
            repo=str(repo),
            requested=collections,
            threshold=threshold,
            simulated=simulated,
            history=history,
            progress=say,
        )
    groups = _draw(data, directory, say)
    say("Writing the page")
    page = directory / INDEX
    partial = directory / f".{INDEX}.partial"
    partial.write_text(render_report(data, groups), encoding="utf-8")
    partial.replace(page)
    seconds = time.perf_counter() - start
    count = sum(len(files) for files in groups.values())
    say(f"Report written: {page} ({count} figures, {seconds:.1f} s)")
    return ReportResult(page, data, count, seconds)
