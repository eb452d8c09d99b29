"""How the simulated OCPS runs jobs: the choice of executor, in configuration and on the command line.

`ExecutorSettings` is what `~lsst.ts.calibscripts.simulator.observatory.ObservatoryConfig`
carries; `add_executor_arguments` and `executor_settings_from_args` give
``calibscripts sim``, ``run_script --simulate`` and ``calibscripts ui
--simulate`` the same options::

    --executor pipetask|bps   how the OCPS runs jobs (default pipetask)
    --bps-site FILE           bps: Parsl site file (default: Local, this machine's cores)
    --bps-cluster DIMS        bps: cluster quanta by these dimensions (default detector;
                              "quantum": one job per quantum)

This module imports nothing heavy: bps is loaded only when a bps executor
is made.
"""

from __future__ import annotations

__all__ = [
    "EXECUTOR_NAMES",
    "ExecutorSettings",
    "add_executor_arguments",
    "executor_settings_from_args",
    "parse_cluster",
]

import argparse
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import JobExecutor

EXECUTOR_NAMES = ("pipetask", "bps")
"""The OCPS's execution modes."""

_PER_QUANTUM = ("quantum", "none")
_DIMENSION = re.compile(r"^[a-z_][a-z0-9_]*$")


def parse_cluster(text: str) -> tuple[str, ...]:
    """Read a clustering: comma-separated dimension names, or ``quantum``.

    Parameters
    ----------
    text : `str`
        E.g. ``detector`` (the default), ``exposure,detector``, or
        ``quantum`` (also ``none``) for one job per quantum.

    Returns
    -------
    dimensions : `tuple` [`str`, ...]
        Empty for one job per quantum.

    Raises
    ------
    ValueError
        If a name is not a dimension name.
    """
    if text.strip().lower() in _PER_QUANTUM:
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    bad = [name for name in names if not _DIMENSION.match(name)]
    if not names or bad:
        raise ValueError(
            f"--bps-cluster {text!r}: give dimension names such as 'detector' (comma-separated), "
            "or 'quantum' for one job per quantum"
        )
    return names


@dataclasses.dataclass(frozen=True)
class ExecutorSettings:
    """How the simulated OCPS runs its jobs.

    Attributes
    ----------
    executor : `str`
        ``pipetask`` (one ``pipetask run`` per job, the default) or ``bps``
        (bps with the Parsl plugin).
    bps_site : `~pathlib.Path` or `None`
        bps: Parsl site file; None: ``Local`` with this machine's cores.
    bps_cluster : `tuple` [`str`, ...]
        bps: dimensions quanta are clustered by (one job per detector by
        default); empty for one job per quantum.
    """

    executor: str = "pipetask"
    bps_site: Path | None = None
    bps_cluster: tuple[str, ...] = ("detector",)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTOR_NAMES:
            names = ", ".join(EXECUTOR_NAMES)
            raise ValueError(f"Unknown OCPS executor {self.executor!r}; use one of {names}")
        if self.executor != "bps" and self.bps_site is not None:
            raise ValueError("A bps site file needs the bps executor (--executor bps)")
        if self.bps_site is not None:
            object.__setattr__(self, "bps_site", Path(self.bps_site).expanduser().resolve())

    def make_executor(self, pipetask: str | Path | None = None) -> JobExecutor:
        """Make the executor.

        Parameters
        ----------
        pipetask : `str` or `~pathlib.Path`, optional
            pipetask executable of the pipetask executor.

        Raises
        ------
        ValueError
            If pipetask cannot be found, or the site file cannot be used
            (`~.bps_site.BpsSiteError`).
        """
        if self.executor == "pipetask":
            from .pipetask import PipetaskExecutor

            return PipetaskExecutor(pipetask)
        from .bps import BpsExecutor
        from .bps_site import load_site

        site = load_site(self.bps_site) if self.bps_site is not None else None
        return BpsExecutor(site, cluster_by=self.bps_cluster)

    def describe(self) -> str:
        """Say how jobs run, for a start-up banner."""
        if self.executor == "pipetask":
            return "pipetask run per job"
        site = f"site file {self.bps_site}" if self.bps_site else "Parsl Local site (this machine's cores)"
        cluster = f"one job per {', '.join(self.bps_cluster)}" if self.bps_cluster else "one job per quantum"
        return f"bps + Parsl, {site}, {cluster}"


def add_executor_arguments(parser: Any, *, prefix: str = "") -> None:
    """Add ``--executor``, ``--bps-site`` and ``--bps-cluster`` to a parser.

    Parameters
    ----------
    parser : `argparse.ArgumentParser` or argument group
        Where to add them.
    prefix : `str`, optional
        Text before the help of ``--executor`` (e.g. "with --simulate: ").
    """
    parser.add_argument(
        "--executor",
        choices=EXECUTOR_NAMES,
        default="pipetask",
        help=f"{prefix}how the OCPS runs jobs: pipetask (one pipetask run per job, default) or bps "
        "(bps with the Parsl plugin)",
    )
    parser.add_argument(
        "--bps-site",
        metavar="FILE",
        help="with --executor bps: Parsl site file (default: Local with this machine's cores)",
    )
    parser.add_argument(
        "--bps-cluster",
        metavar="DIMS",
        default="detector",
        help="with --executor bps: cluster quanta by these dimensions (default detector; "
        "'quantum' for one job per quantum)",
    )


def executor_settings_from_args(args: argparse.Namespace) -> ExecutorSettings:
    """Return the settings given on a command line (see `add_executor_arguments`).

    Raises
    ------
    ValueError
        If they do not fit together (``--bps-site`` without ``--executor
        bps``...); the message names the options.
    """
    cluster = parse_cluster(args.bps_cluster)
    if args.executor != "bps" and (args.bps_site or cluster != ("detector",)):
        raise ValueError("--bps-site and --bps-cluster need --executor bps")
    return ExecutorSettings(
        executor=args.executor,
        bps_site=Path(args.bps_site) if args.bps_site else None,
        bps_cluster=cluster,
    )
