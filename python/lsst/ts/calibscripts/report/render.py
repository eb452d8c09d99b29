"""The report's HTML: one self-contained page, its figures beside it as PNG files.

`render_report` writes the page from what
`~lsst.ts.calibscripts.report.extract.extract_report` read and the figure
files `~lsst.ts.calibscripts.report.build` drew. Style and script are
inline, nothing is fetched from the network, so the directory can be copied,
mailed or opened from disk. The tables sort when a heading is clicked and
filter as one types (every word typed must appear in the row), with a
"failures only" switch; failed tests and failed exposures are shown in red.

Section ids (``summary``, ``verification``, ``gains``, ``ptc``, ``images``,
``history``) are stable: links and tests use them.
"""

from __future__ import annotations

__all__ = ["SECTIONS", "FigureFile", "render_report"]

import dataclasses
import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from .extract import GainRow, PtcDetector, ReportData, VerificationSummary

#: Section id -> heading, in page order.
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "verification": "Verification",
    "gains": "Gains from flat pairs",
    "ptc": "Photon transfer curve",
    "images": "Images",
    "history": "History",
}


@dataclasses.dataclass(frozen=True)
class FigureFile:
    """A figure written beside the page.

    Attributes
    ----------
    file : `str`
        File name, relative to the page.
    caption : `str`
        What it shows.
    kind : `str`
        What kind of figure (``thumbnail``, ``mosaic``, ``gain``...), a CSS
        class of its ``<figure>``.
    """

    file: str
    caption: str
    kind: str = ""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}g}"


def _cell(value: float | None, digits: int = 4) -> str:
    """Return a numeric cell, sortable by its exact value."""
    text = _number(value, digits)
    sort = "" if not text else f' data-value="{value!r}"'
    return f'<td class="num"{sort}>{text}</td>'


def _table(
    headings: Sequence[str],
    rows: Iterable[str],
    *,
    table_id: str,
    css: str = "",
    tools: bool = True,
    caption: str = "",
) -> str:
    """Return a table with sortable headings, a filter box and a "failures only" switch."""
    head = "".join(f'<th scope="col" title="Sort by {_e(h)}">{_e(h)}</th>' for h in headings)
    body = "\n".join(rows)
    controls = ""
    if tools:
        controls = (
            f'<div class="table-tools" data-for="{table_id}">'
            f'<input type="search" class="filter" placeholder="Filter: words that must appear" '
            f'aria-label="Filter the rows of {table_id}">'
            f'<label><input type="checkbox" class="failures-only"> failures only</label>'
            f'<span class="count"></span></div>'
        )
    caption_html = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'{controls}<div class="table-wrap"><table id="{table_id}" class="sortable {css}">{caption_html}'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _figures(figures: Sequence[FigureFile]) -> str:
    return "".join(
        f'<figure class="{_e(f.kind)}"><a href="{_e(f.file)}"><img src="{_e(f.file)}" alt="{_e(f.caption)}" '
        f'loading="lazy"></a><figcaption>{_e(f.caption)}</figcaption></figure>'
        for f in figures
    )


# --- sections ---------------------------------------------------------------------


def _summary(data: ReportData) -> str:
    rows = []
    for summary in data.verifications:
        outcome = summary.outcome
        state = "pass" if outcome.accepted else "fail"
        with_failures = len(outcome.exposures_with_failures)
        rows.append(
            f'<tr class="{state}" data-image-type="{summary.image_type}"><th scope="row">'
            f'<a href="#verification-{summary.image_type.lower()}">{summary.image_type}</a></th>'
            f"<td>{len(summary.exposures)}</td><td>{with_failures}</td>"
            f"<td>{len(outcome.failed_exposures)} (limit {outcome.max_failed_exposures})</td>"
            f'<td class="verdict">{_e(summary.verdict)}</td></tr>'
        )
    verification = (
        '<table class="overview"><thead><tr><th>Type</th><th>Exposures</th><th>With failed tests</th>'
        "<th>Failed the rule</th><th>Verdict</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        if rows
        else '<p class="none">No verification in these collections.</p>'
    )
    collections = []
    for product, collection in data.collections.generation.items():
        collections.append(
            f"<tr><td>{_e(product)}</td><td>generation</td><td><code>{_e(collection)}</code></td></tr>"
        )
    for image_type, collection in data.collections.verification.items():
        collections.append(
            f"<tr><td>{_e(image_type.lower())}</td><td>verification</td><td><code>{_e(collection)}</code></td></tr>"
        )
    for collection in data.collections.gains:
        collections.append(
            f"<tr><td>gains</td><td>flat pairs</td><td><code>{_e(collection)}</code></td></tr>"
        )
    for collection in data.collections.calibration:
        collections.append(
            f"<tr><td>certified</td><td>CALIBRATION</td><td><code>{_e(collection)}</code></td></tr>"
        )
    notes = "".join(f"<li>{_e(note)}</li>" for note in data.collections.notes)
    unused_names = ", ".join(f"<code>{_e(c)}</code>" for c in data.collections.unused)
    unused = f"<p>Holding nothing reported: {unused_names}</p>" if unused_names else ""
    simulated = (
        "<p>The data came from the simulated camera: its true gains are shown with the measured ones.</p>"
        if data.simulated
        else ""
    )
    return (
        verification
        + '<h3>Collections</h3><table class="collections"><thead><tr><th>Product</th><th>Job</th>'
        "<th>Collection</th></tr></thead><tbody>"
        + "".join(collections)
        + "</tbody></table>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + unused
        + simulated
    )


def _rule_table(summary: VerificationSummary) -> str:
    outcome = summary.outcome
    rows = [
        (
            "Acceptable maximum number of failures per detector per test type",
            outcome.threshold,
            f"set by {summary.threshold_option}",
        ),
        (
            "Acceptable maximum number of failed detectors",
            outcome.max_failed_detectors,
            f"floor({len(summary.detectors)} detectors / 2) + 1",
        ),
        (
            "Acceptable maximum number of failed tests per exposure",
            outcome.max_failed_tests_per_exposure,
            "threshold x failed detectors",
        ),
        (
            "Acceptable maximum number of failed exposures",
            outcome.max_failed_exposures,
            f"floor({len(summary.exposures)} exposures / 2) + 1",
        ),
        (
            "Final number of exposures that failed verification",
            len(outcome.failed_exposures),
            "rejected when it reaches the maximum",
        ),
    ]
    body = "".join(
        f'<tr><th scope="row">{_e(label)}</th><td class="num">{value}</td><td>{_e(note)}</td></tr>'
        for label, value, note in rows
    )
    return f'<table class="rule"><tbody>{body}</tbody></table>'


def _exposure_table(summary: VerificationSummary) -> str:
    outcome = summary.outcome
    tests = sorted({test for counts in outcome.counts.values() for test in counts})
    rows = []
    for exposure in summary.exposures:
        counts: Counter[str] = outcome.counts.get(exposure, Counter())
        failed_rule = exposure in outcome.failed_exposures
        state = "fail" if failed_rule else ("warn" if counts else "pass")
        cells = "".join(
            f'<td class="num" data-value="{counts.get(t, 0)}">{counts.get(t, 0) or ""}</td>' for t in tests
        )
        failed = summary.failed_tests(exposure)
        verdict = "failed" if failed_rule else ("passed, with failed tests" if counts else "passed")
        rows.append(
            f'<tr class="exposure {state}" data-exposure="{exposure}">'
            f'<td class="num" data-value="{exposure}">{exposure}</td>'
            f'<td class="num" data-value="{failed}">{failed}</td>{cells}<td>{verdict}</td></tr>'
        )
    return _table(
        ["Exposure", "Failed tests", *tests, "Majority rule"],
        rows,
        table_id=f"exposures-{summary.image_type.lower()}",
        css="exposures",
        caption="Failed tests per exposure and test type",
    )


def _tests_table(summary: VerificationSummary) -> str:
    rows = []
    for row in summary.rows:
        state = "pass" if row.passed else "fail"
        rows.append(
            f'<tr class="{state}" data-exposure="{row.exposure}">'
            f'<td class="num" data-value="{row.exposure}">{row.exposure}</td>'
            f"<td>{_e(row.detector_name or 'exposure')}</td><td>{_e(row.amp or '-')}</td>"
            f"<td>{_e(row.test)}</td>"
            f"{_cell(row.value)}{_cell(row.tested)}{_cell(row.limit)}<td>{_e(row.criterion)}</td>"
            f'<td class="result">{"PASS" if row.passed else "FAIL"}</td></tr>'
        )
    return _table(
        [
            "Exposure",
            "Detector",
            "Amp",
            "Test",
            f"Value ({summary.units})",
            "Tested",
            "Limit",
            "Criterion",
            "Result",
        ],
        rows,
        table_id=f"tests-{summary.image_type.lower()}",
        css="tests",
        caption="Every test, per exposure, detector and amplifier",
    )


def _verification(data: ReportData, figures: Mapping[str, list[FigureFile]]) -> str:
    if not data.verifications:
        return (
            '<p class="none">No verification statistics (verify&lt;Type&gt;Stats) in these collections.</p>'
        )
    parts = []
    for summary in data.verifications:
        key = summary.image_type.lower()
        state = "pass" if summary.outcome.accepted else "fail"
        generation = (
            f"<code>{_e(summary.generation_collection)}</code>"
            if summary.generation_collection
            else "(none: external verification)"
        )
        parts.append(
            f'<section class="verification" id="verification-{key}" data-image-type="{summary.image_type}">'
            f"<h3>{summary.image_type}</h3>"
            f'<p class="verdict {state}">{_e(summary.verdict)}</p>'
            f"{_rule_table(summary)}"
            f"<p>Generation collection: {generation}<br>Verification collection: "
            f"<code>{_e(summary.collection)}</code><br>Detectors: {_e(', '.join(summary.detectors))}</p>"
            f"{_exposure_table(summary)}{_tests_table(summary)}"
            f'<div class="figures">{_figures(figures.get(f"verify-{key}", []))}</div></section>'
        )
    return "".join(parts)


def _gains(rows: Sequence[GainRow], figures: Sequence[FigureFile]) -> str:
    if not rows:
        return '<p class="none">No gains from flat pairs (cpPtcExtract) in these collections.</p>'
    truth = any(row.truth is not None for row in rows)
    body = []
    for row in rows:
        error = row.error_percent
        state = "fail" if error is not None and abs(error) > 5 else "pass"
        truth_cells = (_cell(row.truth) + _cell(error, 3)) if truth else ""
        body.append(
            f'<tr class="{state}"><td>{row.exposures[0]} {row.exposures[1]}</td>'
            f"{_cell(row.exposure_time)}<td>{_e(row.detector_name)}</td><td>{_e(row.amp)}</td>"
            f"{_cell(row.mean, 6)}{_cell(row.gain)}{_cell(row.noise)}{truth_cells}</tr>"
        )
    headings = [
        "Flat pair",
        "Exposure time (s)",
        "Detector",
        "Amp",
        "Mean (ADU)",
        "Gain (e-/ADU)",
        "Noise (e-)",
    ]
    if truth:
        headings += ["True gain", "Error (%)"]
    note = "<p>Errors beyond 5% are shown in red.</p>" if truth else ""
    return (
        _table(headings, body, table_id="gains-table", css="gains")
        + note
        + (f'<div class="figures">{_figures(figures)}</div>')
    )


def _ptc(detectors: Sequence[PtcDetector], figures: Sequence[FigureFile]) -> str:
    if not detectors:
        return '<p class="none">No photon transfer curve (ptc) in these collections.</p>'
    truth = any(amp.truth is not None for d in detectors for amp in d.amps)
    body = []
    for detector in detectors:
        for amp in detector.amps:
            state = "pass" if amp.fitted and amp.amp not in detector.bad_amps else "fail"
            error = (
                100 * (amp.gain - amp.truth) / amp.truth if amp.truth and math.isfinite(amp.gain) else None
            )
            truth_cells = (_cell(amp.truth) + _cell(error, 3)) if truth else ""
            body.append(
                f'<tr class="{state}"><td>{_e(detector.detector_name)}</td><td>{_e(amp.amp)}</td>'
                f"{_cell(amp.gain)}{_cell(amp.gain_error, 2)}{_cell(amp.noise)}{_cell(amp.noise_error, 2)}"
                f"{_cell(amp.a00, 3)}{_cell(amp.turnoff, 6)}{_cell(amp.chi2, 3)}"
                f'<td class="num">{int(amp.kept.sum())}/{amp.kept.size}</td>{truth_cells}'
                f"<td>{_e(amp.status)}</td></tr>"
            )
    headings = [
        "Detector",
        "Amp",
        "Gain (e-/ADU)",
        "±",
        "Noise (e-)",
        "±",
        "a00 (1/e-)",
        "Turnoff (ADU)",
        "chi²",
        "Pairs used",
    ]
    if truth:
        headings += ["True gain", "Error (%)"]
    headings.append("Fit")
    return (
        _table(headings, body, table_id="ptc-table", css="ptc")
        + f'<div class="figures">{_figures(figures)}</div>'
    )


def _images(figures: Mapping[str, list[FigureFile]]) -> str:
    parts = []
    for key, heading in (
        ("calibrations", "Combined calibrations (zscale)"),
        ("mosaic", "Focal plane"),
        ("verify-images", "One verification image per type (zscale)"),
        ("defects", "Defects over the flat"),
    ):
        if figures.get(key):
            parts.append(f'<h3>{_e(heading)}</h3><div class="figures">{_figures(figures[key])}</div>')
    return "".join(parts) or '<p class="none">No images in these collections.</p>'


def _history(data: ReportData, figures: Sequence[FigureFile]) -> str:
    if not data.history:
        return '<p class="none">No certified calibration or gain measurement in the repository.</p>'
    runs = sorted({(p.time, p.run) for p in data.history})
    first, last = runs[0][0], runs[-1][0]
    return (
        f"<p>{len({run for _, run in runs})} calibration runs of the repository, from "
        f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} (time of the last input exposure); "
        "the runs of this report are circled. Gain and read noise come from every certified photon "
        "transfer curve (squares) and every gain from flat pairs (the median over a run's pairs, dots); "
        "bias level and dark current from every certified bias and dark (median of a central cut-out)."
        f'</p><div class="figures">{_figures(figures)}</div>'
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 1.5em 3em; color: #222; }
header { border-bottom: 2px solid #444; margin-bottom: 1em; }
nav a { margin-right: 1em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
code { font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
thead th { background: #eee; position: sticky; top: 0; cursor: pointer; user-select: none; }
thead th.sorted-asc::after { content: " ▲"; } thead th.sorted-desc::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.table-wrap { max-height: 28em; overflow: auto; display: inline-block; max-width: 100%; }
caption { text-align: left; font-weight: bold; padding: 2px 0; }
tr.fail td, tr.fail th { background: #f8d0d0; }
tr.fail td.result, tr.fail td:last-child { color: #a00; font-weight: bold; }
tr.warn td { background: #fff1c2; }
p.verdict { font-weight: bold; padding: 4px 8px; display: inline-block; border-radius: 3px; }
p.verdict.pass { background: #d7f0d7; } p.verdict.fail { background: #f8d0d0; color: #900; }
.table-tools { margin: 0.5em 0 0; font-size: 0.85em; }
.table-tools input.filter { width: 22em; } .table-tools .count { margin-left: 1em; color: #555; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figure.thumbnail img { width: 380px; } figure.wide img { width: 960px; }
figcaption { font-size: 0.8em; color: #444; max-width: 960px; }
p.none { color: #666; font-style: italic; }
section.verification { margin-bottom: 2em; }
"""

_SCRIPT = """
(function () {
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var v = cell.getAttribute("data-value");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) return a - b;
    if (an) return -1;
    if (bn) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var descending = th.classList.contains("sorted-asc");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      c.classList.remove("sorted-asc", "sorted-desc");
    });
    th.classList.add(descending ? "sorted-desc" : "sorted-asc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var c = compare(cellValue(r1, index), cellValue(r2, index));
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function applyFilter(tools) {
    var table = document.getElementById(tools.getAttribute("data-for"));
    var words = tools.querySelector(".filter").value.toLowerCase().split(/\\s+/).filter(Boolean);
    var failuresOnly = tools.querySelector(".failures-only").checked;
    var shown = 0, rows = table.tBodies[0].rows;
    Array.prototype.forEach.call(rows, function (row) {
      var text = row.textContent.toLowerCase();
      var visible = words.every(function (w) { return text.indexOf(w) >= 0; }) &&
        (!failuresOnly || row.classList.contains("fail") || row.classList.contains("warn"));
      row.hidden = !visible;
      if (visible) shown += 1;
    });
    tools.querySelector(".count").textContent = shown + " of " + rows.length + " rows";
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.addEventListener("click", function () { sortBy(table, index, th); });
    });
  });
  document.querySelectorAll(".table-tools").forEach(function (tools) {
    tools.querySelector(".filter").addEventListener("input", function () { applyFilter(tools); });
    tools.querySelector(".failures-only").addEventListener("change", function () { applyFilter(tools); });
    applyFilter(tools);
  });
})();
"""


def render_report(data: ReportData, figures: Mapping[str, list[FigureFile]]) -> str:
    """Return the report page.

    Parameters
    ----------
    data : `ReportData`
        What the sections show.
    figures : mapping
        Figure files by group: ``verify-bias`` (...), ``gains``, ``ptc``,
        ``calibrations``, ``mosaic``, ``verify-images``, ``defects``,
        ``history``.

    Returns
    -------
    page : `str`
        The HTML document.
    """
    title = f"Calibration report: {data.instrument}"
    requested = ", ".join(f"<code>{_e(c)}</code>" for c in data.requested)
    sections = {
        "summary": _summary(data),
        "verification": _verification(data, figures),
        "gains": _gains(data.gains, figures.get("gains", [])),
        "ptc": _ptc(data.ptc, figures.get("ptc", [])),
        "images": _images(figures),
        "history": _history(data, figures.get("history", [])),
    }
    nav = "".join(f'<a href="#{key}">{_e(heading)}</a>' for key, heading in SECTIONS.items())
    body = "".join(
        f'<section id="{key}" class="report-section"><h2>{_e(SECTIONS[key])}</h2>{content}</section>'
        for key, content in sections.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>Repository <code>{_e(data.repo)}</code>; "
        f"collections {requested or '(none given)'}; made {data.made:%Y-%m-%d %H:%M:%S} UTC.</p>"
        f"<nav>{nav}</nav></header>{body}<script>{_SCRIPT}</script></body></html>\n"
    )
