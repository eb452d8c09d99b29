"""``calibscripts report REPO COLLECTION...``: the report of a run, written as HTML and PNG.

`add_report_arguments` adds the command's arguments and `run_report` runs
it; `lsst.ts.calibscripts.cli` adds them as the ``report`` sub-command. This
module imports nothing heavy at import time, so that building the
``calibscripts`` parser stays fast.
"""

from __future__ import annotations

__all__ = ["REPORT_DESCRIPTION", "REPORT_HELP", "add_report_arguments", "run_report"]

import argparse
import sys
import time

REPORT_HELP = "Write the HTML report of a calibration run (tables, plots, images, history)."

REPORT_DESCRIPTION = (
    "Write a self-contained report (index.html and PNG figures, nothing fetched from the network) of "
    "one calibration script run or any set of collections: the verification tests per exposure, "
    "detector and amplifier with the majority rule's verdict, the gains from flat pairs, the photon "
    "transfer curve, zscale images of the combined calibrations, and the history of the gain, read "
    "noise, bias level and dark current over every calibration run of the repository. COLLECTION is "
    "an OCPS job's output collection (u/ocps/<jobId>, as the script's log names them), or the "
    "CALIBRATION collection a run certified into: its calibrations and their verifications are found."
)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``calibscripts report`` to its parser."""
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument(
        "collections", nargs="+", metavar="COLLECTION", help="Output or CALIBRATION collection(s) of the run."
    )
    parser.add_argument(
        "-o",
        "--output",
        default="report",
        help="Directory to write index.html and its figures into (default: ./report).",
    )
    parser.add_argument(
        "--threshold",
        type=int,
        default=8,
        help="number_verification_tests_threshold_<type> of the run, for the majority rule (default 8).",
    )
    parser.add_argument(
        "--simulated",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="The data came from the simulator: show its true gains (default: when the raws are where "
        "the simulated camera writes them).",
    )
    parser.add_argument(
        "--history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Include the history of every calibration run of the repository (default: yes).",
    )
    parser.add_argument("--quiet", action="store_true", help="Print only where the report is.")


def run_report(args: argparse.Namespace) -> int:
    """Make the report; print each step and where it is.

    Returns
    -------
    exit_code : `int`
        0. Errors the user can fix (no such repository or collection,
        nothing to report) are raised as `ValueError` or
        `FileNotFoundError`, which ``calibscripts`` prints as one line.
    """
    from .build import make_report

    start = time.perf_counter()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:5.1f} s] {message}", flush=True)

    result = make_report(
        args.repo,
        args.collections,
        args.output,
        threshold=args.threshold,
        simulated=args.simulated,
        history=args.history,
        progress=progress,
    )
    if args.quiet:
        print(result.path)
    sys.stdout.flush()
    return 0
