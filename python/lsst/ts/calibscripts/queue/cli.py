"""``calibscripts queue ATQueue|MTQueue``: run a ScriptQueue until it exits.

Also runnable as ``python -m lsst.ts.calibscripts.queue ATQueue``. The
transport comes from the environment (``CALIBSCRIPTS_TRANSPORT=redis`` and
``CALIBSCRIPTS_REDIS_URL`` for one that other processes can reach).
"""

from __future__ import annotations

__all__ = ["QUEUE_NAMES", "add_queue_arguments", "add_queue_command", "main", "run_queue"]

import argparse
import asyncio
import contextlib
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..sal import State
from .queue_model import find_scripts
from .script_queue import SalIndex, ScriptQueue

#: Queue names operators use, and their SAL indices.
QUEUE_NAMES: dict[str, SalIndex] = {"MTQueue": SalIndex.MAIN_TEL, "ATQueue": SalIndex.AUX_TEL}

_STATES = {name.lower(): State[name] for name in ("STANDBY", "DISABLED", "ENABLED")}


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of the queue command to ``parser``."""
    parser.add_argument("name", choices=sorted(QUEUE_NAMES), help="which queue: ATQueue (2) or MTQueue (1)")
    parser.add_argument(
        "--standard", type=Path, metavar="DIR", help="standard scripts directory (default: the package's)"
    )
    parser.add_argument("--external", type=Path, metavar="DIR", help="external scripts directory")
    parser.add_argument(
        "--state",
        choices=sorted(_STATES),
        default="enabled",
        help="summary state to start in (default: enabled, ready to run scripts)",
    )


def add_queue_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``queue`` command to the ``calibscripts`` sub-command parsers.

    Parameters
    ----------
    subparsers
        The object `argparse.ArgumentParser.add_subparsers` returned.

    Returns
    -------
    parser : `argparse.ArgumentParser`
        The command's parser; its ``handler`` default runs the queue and
        returns the exit code.
    """
    parser = subparsers.add_parser(
        "queue",
        help="Run a ScriptQueue (ATQueue or MTQueue).",
        description="Run the ScriptQueue CSC until exitControl or Ctrl-C (which terminates its "
        "scripts). Set CALIBSCRIPTS_TRANSPORT=redis (and CALIBSCRIPTS_REDIS_URL) so that other "
        "processes can reach it.",
    )
    add_queue_arguments(parser)
    parser.set_defaults(handler=_handle)
    return parser


def _handle(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(
            run_queue(
                QUEUE_NAMES[args.name],
                standard_dir=args.standard,
                external_dir=args.external,
                initial_state=_STATES[args.state],
            )
        )
    except (ConnectionError, ValueError) as e:
        print(f"calibscripts queue: error: {e}", file=sys.stderr)
        return 1


async def run_queue(
    index: int,
    *,
    standard_dir: Path | None = None,
    external_dir: Path | None = None,
    initial_state: State = State.ENABLED,
    stream: TextIO | None = None,
) -> int:
    """Run a ScriptQueue until it exits (``exitControl``, SIGINT or SIGTERM).

    Parameters
    ----------
    index : `int`
        SAL index of the queue.
    standard_dir, external_dir : `pathlib.Path`, optional
        Scripts directories.
    initial_state : `State`, optional
        Summary state to start in.
    stream : `typing.TextIO`, optional
        Where to print what the queue is; default stdout.

    Returns
    -------
    exit_code : `int`
        0.

    Raises
    ------
    ValueError
        If a directory does not exist.
    ConnectionError
        If the transport cannot connect.
    """
    stream = stream or sys.stdout
    queue = ScriptQueue(
        index, standard_dir=standard_dir, external_dir=external_dir, initial_state=initial_state
    )
    try:
        await queue.start_task
    except BaseException:
        await queue.close()
        raise
    print(_describe(queue), file=stream, flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(queue.close()))
    try:
        await queue.done_task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await queue.close()
    return 0


def _describe(queue: ScriptQueue) -> str:
    name = next((n for n, i in QUEUE_NAMES.items() if i == queue.salinfo.index), "ScriptQueue")
    lines = [f"{name} ({queue.salinfo.name_index}) is {queue.summary_state.name}."]
    lines.append(f"Standard scripts ({len(find_scripts(queue.standard_dir))}): {queue.standard_dir}")
    if queue.external_dir is not None:
        lines.append(f"External scripts ({len(find_scripts(queue.external_dir))}): {queue.external_dir}")
    domain = queue.domain
    environment = domain.transport.child_environment()
    if environment is None:
        lines.append(
            "Transport: in-process; only this process can reach the queue (scripts run in it too). "
            "Set CALIBSCRIPTS_TRANSPORT=redis to reach it from other processes."
        )
    else:
        settings = {**environment, "LSST_TOPIC_SUBNAME": domain.subname}
        lines.append(f"Transport: {domain.transport.name}; other processes reach the queue with:")
        lines.append("  " + " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items()))
    lines.append("Ctrl-C stops the queue and terminates its scripts.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a ScriptQueue from the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m lsst.ts.calibscripts.queue", description="Run a ScriptQueue (ATQueue or MTQueue)."
    )
    add_queue_arguments(parser)
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default WARNING",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    return _handle(args)
