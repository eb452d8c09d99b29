"""The ``calibscripts`` command: one entry point, one sub-command group per area.

Usage::

    calibscripts repo create PATH [--instrument LATISS ...] [--db postgresql://...]
    calibscripts repo ingest PATH FILE [FILE ...] [--transfer direct]
    calibscripts repo certify PATH INPUT_COLLECTION CALIB_COLLECTION TYPE --begin-date D --end-date D
    calibscripts pipelines env
    calibscripts pipelines path INSTRUMENT NAME
    calibscripts sim LATISS|LSSTComCam [--repo PATH] [--time-scale X] [--executor bps [--bps-site FILE]]
    calibscripts queue ATQueue|MTQueue [--standard DIR] [--external DIR]
    calibscripts ui [--queue ATQueue|MTQueue] [--port N] [--with-queue] [--simulate LATISS|LSSTComCam]
    calibscripts report REPO COLLECTION [COLLECTION ...] [-o DIR]

Adding a group (``sim``, ``queue``, ``ui``...): write a function
``_add_<group>_commands(subparsers)`` that adds one parser whose
sub-commands are added with `~lsst.ts.calibscripts.queue.service_cli.add_command`
(which sets ``handler``: a callable taking the parsed namespace and
returning an exit code), and list it in `_COMMAND_GROUPS`. A command that
runs a service until stopped is a
`~lsst.ts.calibscripts.queue.service_cli.ServiceCommand`. Import heavy
modules inside the handlers, so that ``calibscripts --help`` stays fast.

Errors the user can fix (bad arguments, existing repository, conflicting
certification...) are printed as one plain ``calibscripts: error: ...``
message with exit code 1, never as a traceback.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .queue.service_cli import add_command, add_log_level_argument, configure_logging

_USER_ERRORS: tuple[type[BaseException], ...] = (KeyError, ValueError, FileNotFoundError, RuntimeError)


def _add_repo_commands(subparsers: Any) -> None:
    repo = subparsers.add_parser("repo", help="Create and fill a Butler repository.")
    commands = repo.add_subparsers(dest="repo_command", metavar="COMMAND", required=True)

    create = add_command(
        commands,
        "create",
        _repo_create,
        help="Create a repository and register instruments.",
        description="Create a Butler repository with this package's storage classes and formatters, "
        "register the instruments and prepare <instrument>/raw/all for ingest.",
    )
    create.add_argument("path", help="Repository directory (created if needed).")
    create.add_argument(
        "--instrument",
        action="append",
        dest="instruments",
        metavar="NAME",
        help="Instrument to register: LATISS or LSSTComCam; repeat for several (default: LATISS).",
    )
    create.add_argument(
        "--db",
        metavar="URL",
        help="Registry database URL, e.g. postgresql://user@localhost:5432/butler "
        "(default: SQLite inside the repository).",
    )
    create.add_argument(
        "--exist-ok",
        action="store_true",
        help="If a repository already exists at PATH, only register the instruments.",
    )

    ingest = add_command(
        commands,
        "ingest",
        _repo_ingest,
        help="Ingest raw files into <instrument>/raw/all.",
        description="Ingest raw files, defining exposures from their headers. Files already ingested "
        "are skipped.",
    )
    ingest.add_argument("path", help="Repository directory.")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="Raw FITS files.")
    ingest.add_argument(
        "--transfer",
        default="direct",
        help="direct (default: leave files in place, record absolute paths), copy, move, link, symlink.",
    )

    certify = add_command(
        commands,
        "certify",
        _repo_certify,
        help="Certify calibrations into a CALIBRATION collection.",
        description="Certify every dataset of TYPE found in INPUT_COLLECTION (all children of a "
        "chained collection) into CALIB_COLLECTION for [begin, end).",
    )
    certify.add_argument("path", help="Repository directory.")
    certify.add_argument("input_collection", help="RUN or CHAINED collection holding the calibrations.")
    certify.add_argument("calib_collection", help="CALIBRATION collection (created if needed).")
    certify.add_argument("dataset_type", help="bias, dark, flat, defects or ptc.")
    certify.add_argument("--begin-date", required=True, help="Start of validity, e.g. 2022-09-29 (TAI).")
    certify.add_argument("--end-date", required=True, help="End of validity (exclusive), e.g. 2022-09-30.")


def _repo_create(args: argparse.Namespace) -> int:
    from .cp.butler.repository import create_repository, ensure_repository

    instruments = args.instruments or ["LATISS"]
    if args.exist_ok:
        root = ensure_repository(args.path, instruments, db=args.db)
    else:
        root = create_repository(args.path, instruments, db=args.db)
    print(f"Repository {root} ready with instrument(s) {', '.join(instruments)}.")
    return 0


def _repo_ingest(args: argparse.Namespace) -> int:
    from lsst.daf.butler import Butler

    from .cp.butler.ingest import ingest_raws

    with Butler.from_config(args.path, writeable=True) as butler:
        result = ingest_raws(butler, args.files, transfer=args.transfer)
    print(
        f"Ingested {len(result.ingested)} raw(s), skipped {len(result.skipped)} already ingested; "
        f"exposures: {' '.join(str(e) for e in result.exposures)}."
    )
    return 0


def _repo_certify(args: argparse.Namespace) -> int:
    from .cp.butler.certification import certify_calibrations

    refs = certify_calibrations(
        args.path,
        args.input_collection,
        args.calib_collection,
        args.dataset_type,
        begin_date=args.begin_date,
        end_date=args.end_date,
    )
    print(
        f"Certified {len(refs)} {args.dataset_type} dataset(s) into {args.calib_collection} "
        f"for [{args.begin_date}, {args.end_date})."
    )
    return 0


def _add_pipelines_commands(subparsers: Any) -> None:
    pipelines = subparsers.add_parser("pipelines", help="Locate the calibration pipelines.")
    commands = pipelines.add_subparsers(dest="pipelines_command", metavar="COMMAND", required=True)
    add_command(
        commands,
        "env",
        _pipelines_env,
        help="Print shell exports of CP_PIPE_DIR and CP_VERIFY_DIR.",
        description="Print 'export' lines for CP_PIPE_DIR and CP_VERIFY_DIR; use as "
        'eval "$(calibscripts pipelines env)" before running pipetask by hand.',
    )
    path = add_command(commands, "path", _pipelines_path, help="Print the path of a pipeline file.")
    path.add_argument("instrument", help="LATISS or LSSTComCam.")
    path.add_argument("name", help="cpBias, cpDark, cpFlat, cpDefects, cpPtc, verifyBias, verifyDark, ...")


def _pipelines_env(args: argparse.Namespace) -> int:
    import shlex

    from .cp.butler.pipeline_locations import (
        CP_PIPE_DIR_VARIABLE,
        CP_VERIFY_DIR_VARIABLE,
        pipeline_environment,
    )

    environment = pipeline_environment({})
    for name in (CP_PIPE_DIR_VARIABLE, CP_VERIFY_DIR_VARIABLE):
        print(f"export {name}={shlex.quote(environment[name])}")
    return 0


def _pipelines_path(args: argparse.Namespace) -> int:
    from .cp.butler.pipeline_locations import generation_pipeline, verification_pipeline

    finder = verification_pipeline if args.name.startswith("verify") else generation_pipeline
    print(finder(args.instrument, args.name))
    return 0


def _add_sim_commands(subparsers: Any) -> None:
    sim = add_command(
        subparsers,
        "sim",
        _sim,
        help="Run the simulated observatory of one instrument.",
        description="Start the simulated camera, OODS, header service (and spectrograph) and OCPS, "
        "ENABLED, with an embedded Butler repository created on first use.",
    )
    sim.add_argument("instrument", choices=["LATISS", "LSSTComCam"])
    sim.add_argument("--repo", help="Butler repository (default: var/repo/<instrument> of the project)")
    sim.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="wall-clock seconds per observatory second (default 1: real time)",
    )
    sim.add_argument(
        "--geometry",
        default="full",
        help="detector geometry: full (default), reduced (fast), or NXxNY data pixels per amp",
    )
    sim.add_argument(
        "--bootstrap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make reference calibrations (a certified bias, dark and flat in <instrument>/calib, from "
        "simulated images and the cp pipelines) if the repository lacks them; --no-bootstrap: never "
        "(default: only when the repository is created)",
    )
    # Light: the executors are loaded only when the OCPS starts.
    from .simulator.executors.settings import add_executor_arguments

    add_executor_arguments(sim)


def _sim(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from .simulator.executors.settings import executor_settings_from_args
    from .simulator.observatory import ObservatoryConfig, serve

    config = ObservatoryConfig(
        instrument=args.instrument,
        repo=Path(args.repo) if args.repo else None,
        time_scale=args.time_scale,
        geometry=args.geometry,
        bootstrap=args.bootstrap,
        ocps_executor=executor_settings_from_args(args),
    )
    asyncio.run(serve(config))
    return 0


def _add_queue_commands(subparsers: Any) -> None:
    from .queue.cli import add_queue_command

    add_queue_command(subparsers)


def _add_ui_commands(subparsers: Any) -> None:
    # The ui module builds its parser without loading the web server.
    from .ui.cli import add_ui_command

    add_ui_command(subparsers)


def _add_report_commands(subparsers: Any) -> None:
    # report.cli imports nothing heavy; the Butler and matplotlib load when the command runs.
    from .report.cli import REPORT_DESCRIPTION, REPORT_HELP, add_report_arguments

    report = add_command(subparsers, "report", _report, help=REPORT_HELP, description=REPORT_DESCRIPTION)
    add_report_arguments(report)


def _report(args: argparse.Namespace) -> int:
    from .report.cli import run_report

    return run_report(args)


_COMMAND_GROUPS: list[Callable[[Any], None]] = [
    _add_repo_commands,
    _add_pipelines_commands,
    _add_sim_commands,
    _add_queue_commands,
    _add_ui_commands,
    _add_report_commands,
]
"""Functions adding one sub-command group each to the top-level parser."""


def make_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``calibscripts`` command."""
    parser = argparse.ArgumentParser(
        prog="calibscripts",
        description="Calibration scripts for LATISS and LSSTComCam on a real Butler.",
    )
    add_log_level_argument(parser, help="Logging level (default: WARNING).")
    subparsers = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    for add_group in _COMMAND_GROUPS:
        add_group(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``calibscripts`` command.

    Parameters
    ----------
    argv
        Arguments without the program name; `sys.argv` if `None`.

    Returns
    -------
    exit_code
        0 on success, 1 on an error the user can fix (printed as one line),
        2 on a usage error.
    """
    parser = make_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except _USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
