"""``calibscripts queue ATQueue|MTQueue``: run a ScriptQueue until it exits.

Also runnable as ``python -m lsst.ts.calibscripts.queue ATQueue``. The
transport comes from the environment (``CALIBSCRIPTS_TRANSPORT=redis`` and
``CALIBSCRIPTS_REDIS_URL`` for one that other processes can reach).
"""

from __future__ import annotations

__all__ = ["QUEUE_COMMAND", "QUEUE_NAMES", "add_queue_arguments", "add_queue_command", "main", "run_queue"]

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import TextIO

from ..sal import State
from .queue_model import find_scripts
from .script_queue import SalIndex, ScriptQueue
from .service_cli import ServiceCommand, stop_signals

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


async def _run(args: argparse.Namespace) -> int:
    return await run_queue(
        QUEUE_NAMES[args.name],
        standard_dir=args.standard,
        external_dir=args.external,
        initial_state=_STATES[args.state],
    )


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
        0, once the queue has closed (its scripts terminated).

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
    try:
        # Closing terminates the scripts; the queue is done once closed.
        with stop_signals(lambda: asyncio.ensure_future(queue.close())):
            await queue.done_task
    finally:
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


#: ``calibscripts queue`` and ``python -m lsst.ts.calibscripts.queue``.
QUEUE_COMMAND = ServiceCommand(
    name="queue",
    module="lsst.ts.calibscripts.queue",
    help="Run a ScriptQueue (ATQueue or MTQueue).",
    description="Run the ScriptQueue CSC until exitControl or Ctrl-C (which terminates its scripts). Set "
    "CALIBSCRIPTS_TRANSPORT=redis (and CALIBSCRIPTS_REDIS_URL) so that other processes can reach it.",
    summary="Run a ScriptQueue (ATQueue or MTQueue).",
    add_arguments=add_queue_arguments,
    run=_run,
)
#: Add the ``queue`` command to the ``calibscripts`` sub-command parsers
#: (`ServiceCommand.add_to`).
add_queue_command = QUEUE_COMMAND.add_to
#: Run a ScriptQueue from the command line; return the exit code
#: (`ServiceCommand.main`).
main = QUEUE_COMMAND.main
