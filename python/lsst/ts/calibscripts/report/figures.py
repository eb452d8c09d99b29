"""The report's figures, as PNG bytes: matplotlib (Agg, no display) and astropy's zscale.

Each function takes what `lsst.ts.calibscripts.report.extract` read and
returns one PNG. Figures are made with `matplotlib.figure.Figure` directly
(never ``pyplot``), so that nothing depends on a display or on global state,
and reports can be drawn in a worker thread of the queue page's server.

Images are already binned when they arrive here; they are stretched with
`astropy.visualization.ZScaleInterval`, the stretch the procedure's
``afwDisplay`` ``zscale`` applies.
"""

from __future__ import annotations

__all__ = [
    "gain_figure",
    "history_figure",
    "image_figure",
    "mosaic_figure",
    "ptc_figure",
    "zscale_limits",
]

import datetime
import io
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from astropy.visualization import ZScaleInterval
from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogLocator

from ..cp.camera.description import InstrumentDescription
from .extract import CalibrationImage, GainRow, HistoryPoint, PtcDetector

#: Resolution of every figure (dots per inch).
DPI = 90
_FAIL_COLOR = "#d62728"
_TRUTH_COLOR = "#2ca02c"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def zscale_limits(pixels: np.ndarray) -> tuple[float, float]:
    """Return the zscale display limits of an image (its finite pixels).

    Parameters
    ----------
    pixels : `numpy.ndarray`
        The image.

    Returns
    -------
    limits : `tuple` [`float`, `float`]
        ``(vmin, vmax)``; ``(0, 1)`` for an image without finite pixels.
    """
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = ZScaleInterval().get_limits(finite)
    if not vmax > vmin:
        vmax = vmin + 1.0
    return float(vmin), float(vmax)


def _amp_grid(
    figure: Figure, n: int, rows_per_amp: int = 1, ratios: Sequence[float] = (1,)
) -> list[list[Axes]]:
    """Axes for ``n`` amplifiers, 4 per row; each amp gets ``rows_per_amp`` stacked axes.

    The margins are fixed (no constrained layout: laying out 32 axes costs
    seconds).
    """
    columns = 4
    rows = math.ceil(n / columns)
    height = figure.get_figheight()
    grid = figure.add_gridspec(
        rows * rows_per_amp,
        columns,
        height_ratios=list(ratios) * rows,
        left=0.07,
        right=0.99,
        bottom=0.55 / height,
        top=1 - 0.45 / height,
        wspace=0.28,
        hspace=0.12 if rows_per_amp > 1 else 0.35,
    )
    axes = []
    for index in range(n):
        row, column = divmod(index, columns)
        stack: list[Axes] = []
        for k in range(rows_per_amp):
            share = stack[0] if stack else None
            stack.append(figure.add_subplot(grid[row * rows_per_amp + k, column], sharex=share))
        axes.append(stack)
    return axes


def image_figure(image: CalibrationImage) -> bytes:
    """Draw one binned image with zscale, its colour bar and its defects.

    Parameters
    ----------
    image : `CalibrationImage`
        The image; its defects (if any) are outlined in red.
    """
    vmin, vmax = zscale_limits(image.pixels)
    ny, nx = image.pixels.shape
    figure = Figure(figsize=(5.2, 5.2 * ny / nx * 0.85 + 0.9), layout="constrained")
    axes = figure.add_subplot()
    shown = axes.imshow(
        image.pixels,
        origin="lower",
        cmap="gray",
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        extent=(0, nx * image.binning, 0, ny * image.binning),
    )
    for box in image.defects:
        axes.add_patch(
            Rectangle(
                (box.x0, box.y0),
                max(box.width, image.binning),
                max(box.height, image.binning),
                fill=False,
                edgecolor=_FAIL_COLOR,
                linewidth=0.8,
            )
        )
    exposure = f", exposure {image.exposure}" if image.exposure is not None else ""
    defects = f", {len(image.defects)} defects" if image.defects else ""
    axes.set_title(f"{image.title}, {image.detector_name}{exposure}{defects}", fontsize=9)
    axes.set_xlabel(f"x (pixels; binned {image.binning}x{image.binning})", fontsize=8)
    axes.tick_params(labelsize=7)
    bar = figure.colorbar(shown, ax=axes, shrink=0.8)
    bar.set_label(f"zscale {vmin:.4g} .. {vmax:.4g} {image.units}".strip(), fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return _png(figure)


_SLOT = re.compile(r"S(\d)(\d)$")


def mosaic_figure(images: Sequence[CalibrationImage], instrument: InstrumentDescription) -> bytes:
    """Draw the images of several detectors where they sit in the focal plane.

    Detectors are placed by raft and slot (``R22_S01``: raft R22, row 0,
    column 1); one zscale for all, so that differences between detectors
    show.

    Parameters
    ----------
    images : sequence of `CalibrationImage`
        One image of one kind per detector.
    instrument : `InstrumentDescription`
        Gives each detector's raft and slot.
    """
    places: dict[int, tuple[int, int]] = {}
    rafts = sorted({instrument.detector(image.detector).raft for image in images})
    for image in images:
        detector = instrument.detector(image.detector)
        match = _SLOT.match(detector.name_in_raft)
        row, column = (int(match.group(1)), int(match.group(2))) if match else (0, len(places))
        places[image.detector] = (row, rafts.index(detector.raft) * 3 + column)
    n_rows = max(row for row, _ in places.values()) + 1
    n_columns = max(column for _, column in places.values()) + 1
    vmin, vmax = zscale_limits(np.concatenate([image.pixels.ravel() for image in images]))
    figure = Figure(figsize=(2.3 * n_columns + 0.8, 2.1 * n_rows + 0.5), layout="constrained")
    grid = figure.add_gridspec(n_rows, n_columns)
    shown = None
    for image in images:
        row, column = places[image.detector]
        # Row 0 of a raft (S0x) is at the bottom of the focal plane.
        axes = figure.add_subplot(grid[n_rows - 1 - row, column])
        shown = axes.imshow(image.pixels, origin="lower", cmap="gray", vmin=vmin, vmax=vmax)
        axes.set_title(f"{image.detector} {image.detector_name}", fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
    if shown is not None:
        bar = figure.colorbar(shown, ax=figure.axes, shrink=0.8)
        bar.set_label(f"zscale {vmin:.4g} .. {vmax:.4g} {images[0].units}".strip(), fontsize=8)
    figure.suptitle(f"{images[0].title}: focal plane", fontsize=10)
    return _png(figure)


def gain_figure(rows: Sequence[GainRow]) -> bytes:
    """Draw the gain of each flat pair against its mean signal, one panel per amplifier.

    Parameters
    ----------
    rows : sequence of `GainRow`
        Gains of one detector; where they have a true gain (simulated
        data), it is drawn as a green line and each point's error in
        percent is written in the panel.
    """
    by_amp: dict[str, list[GainRow]] = defaultdict(list)
    for row in rows:
        by_amp[row.amp].append(row)
    figure = Figure(figsize=(10, 2.0 * math.ceil(len(by_amp) / 4) + 0.9))
    for (amp, amp_rows), (axes,) in zip(by_amp.items(), _amp_grid(figure, len(by_amp)), strict=True):
        amp_rows.sort(key=lambda r: r.mean)
        means = [r.mean for r in amp_rows]
        axes.plot(means, [r.gain for r in amp_rows], "o-", color="#1f77b4", markersize=4, linewidth=1)
        truth = amp_rows[0].truth
        if truth is not None:
            axes.axhline(truth, color=_TRUTH_COLOR, linestyle="--", linewidth=1)
            errors = [r.error_percent for r in amp_rows if r.error_percent is not None]
            worst = max(errors, key=abs) if errors else math.nan
            axes.text(
                0.02,
                0.04,
                f"true {truth:.3f}; worst {worst:+.1f}%",
                transform=axes.transAxes,
                fontsize=7,
                color=_TRUTH_COLOR,
            )
        if len(means) > 1 and min(means) > 0 and max(means) / min(means) > 20:
            axes.set_xscale("log")
            axes.minorticks_off()
        axes.set_title(amp, fontsize=8, pad=2)
        axes.tick_params(labelsize=7)
    figure.supxlabel("mean signal of the pair (ADU)", fontsize=9, y=0.2 / figure.get_figheight())
    figure.supylabel("gain (e-/ADU)", fontsize=9)
    name = rows[0].detector_name if rows else ""
    truth_note = "; dashed: the simulator's true gain" if any(r.truth is not None for r in rows) else ""
    figure.suptitle(f"Gain from flat pairs, {name}{truth_note}", fontsize=10)
    return _png(figure)


def ptc_figure(detector: PtcDetector) -> bytes:
    """Draw each amplifier's variance against mean with the fitted model, and the residuals.

    Parameters
    ----------
    detector : `PtcDetector`
        The curves of one detector. Pairs the fit left out are drawn in
        red; the residual is ``(variance - model) / model``.
    """
    n = len(detector.amps)
    figure = Figure(figsize=(10.5, 2.6 * math.ceil(n / 4) + 0.9))
    for amp, (top, bottom) in zip(detector.amps, _amp_grid(figure, n, 2, (3, 1)), strict=True):
        kept = amp.kept
        top.loglog(amp.means[kept], amp.variances[kept], "o", markersize=3, color="#1f77b4")
        if (~kept).any():
            top.loglog(amp.means[~kept], amp.variances[~kept], "x", markersize=4, color=_FAIL_COLOR)
        if amp.fitted and amp.means.size:
            grid = np.geomspace(max(amp.means.min(), 1e-3), amp.means.max(), 100)
            top.loglog(grid, amp.model(grid), "-", color="#ff7f0e", linewidth=1)
            bottom.semilogx(amp.means, 100 * amp.residuals, "o", markersize=3, color="#1f77b4")
        bottom.axhline(0, color="0.5", linewidth=0.8)
        label = (
            f"g={amp.gain:.3f} n={amp.noise:.2f} a00={amp.a00:.2e}" if amp.fitted else f"fit: {amp.status}"
        )
        top.set_title(f"{amp.amp}: {label}", fontsize=7, pad=2)
        # Minor ticks of log axes cost most of the drawing time: none.
        for axes in (top, bottom):
            axes.minorticks_off()
            axes.xaxis.set_major_locator(LogLocator(numticks=4))
        top.yaxis.set_major_locator(LogLocator(numticks=4))
        top.tick_params(labelsize=6, labelbottom=False)
        bottom.tick_params(labelsize=6)
        bottom.set_ylabel("%", fontsize=6)
    figure.supxlabel("mean (ADU)", fontsize=9, y=0.2 / figure.get_figheight())
    figure.supylabel("variance (ADU^2); below: (variance - model) / model", fontsize=9)
    figure.suptitle(f"Photon transfer curve, {detector.detector_name}", fontsize=10)
    return _png(figure)


_MARKERS = {"PTC": "s", "flat pairs": "o", "bias": "o", "dark": "o"}


def history_figure(
    points: Sequence[HistoryPoint],
    quantity: str,
    unit: str,
    *,
    truth: Mapping[tuple[int, str], float] | None = None,
    current_runs: Sequence[str] = (),
) -> bytes:
    """Draw one quantity against time.

    Per-amplifier quantities (gain, read noise) get one panel per detector
    and one colour per amplifier; per-detector quantities (bias level, dark
    current) one panel with one colour per detector. Values from a photon
    transfer curve are squares joined by dotted lines, the others dots
    joined by lines.

    Parameters
    ----------
    points : sequence of `HistoryPoint`
        The history (any quantity: only ``quantity`` is drawn).
    quantity : `str`
        ``gain``, ``read noise``, ``bias level`` or ``dark current``.
    unit : `str`
        Its unit, for the axis.
    truth : mapping, optional
        ``(detector, amp) -> value``: the simulator's truth, drawn dashed.
    current_runs : sequence of `str`
        Runs of this report, circled.
    """
    chosen = [p for p in points if p.quantity == quantity]
    per_amp = any(p.amp for p in chosen)
    panels = sorted({(p.detector, p.detector_name) for p in chosen}) if per_amp else [(-1, "")]
    height = 2.8 * len(panels) + 1.0
    figure = Figure(figsize=(10, height))
    figure.subplots_adjust(left=0.08, right=0.83, top=1 - 0.35 / height, bottom=0.75 / height, hspace=0.35)
    times = [p.time for p in chosen]
    for index, (detector, name) in enumerate(panels):
        axes = figure.add_subplot(len(panels), 1, index + 1)
        lines: dict[tuple[str, str], list[HistoryPoint]] = defaultdict(list)
        for point in chosen:
            if per_amp and point.detector != detector:
                continue
            key = (point.amp if per_amp else point.detector_name, point.source)
            lines[key].append(point)
        colors: dict[str, str] = {}
        for (label, source), series in sorted(lines.items()):
            new = label not in colors
            color = colors.setdefault(label, f"C{len(colors) % 10}")
            axes.plot(
                date2num([p.time for p in series]),
                [p.value for p in series],
                marker=_MARKERS.get(source, "o"),
                linestyle=":" if source == "PTC" else "-",
                color=color,
                markersize=4,
                linewidth=0.8,
                label=label if new else None,
            )
            current = [p for p in series if p.run in current_runs]
            if current:
                axes.plot(
                    date2num([p.time for p in current]),
                    [p.value for p in current],
                    "o",
                    markersize=9,
                    markerfacecolor="none",
                    markeredgecolor="black",
                    markeredgewidth=0.6,
                )
            if new and truth and per_amp and (detector, label) in truth:
                axes.axhline(truth[(detector, label)], color=color, linestyle="--", linewidth=0.6, alpha=0.6)
        axes.set_ylabel(f"{quantity} ({unit})", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.set_title(name if per_amp else f"{quantity} per detector", fontsize=9)
        if times and min(times) == max(times):
            day = datetime.timedelta(days=1)
            axes.set_xlim(float(date2num(min(times) - day)), float(date2num(max(times) + day)))
        if lines:
            axes.legend(
                fontsize=6, ncol=2 if len(colors) > 8 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0)
            )
        axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d\n%H:%M"))
    return _png(figure)
