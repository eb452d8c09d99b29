"""Where bps jobs run: the Parsl site section of the OCPS's bps configuration.

bps with the Parsl plugin (``lsst.ctrl.bps.parsl``) runs the same workflow
on this machine or on a cluster by changing only the site: ``computeSite``
names an entry of ``site``, whose ``class`` is a Parsl site of the plugin
(``lsst.ctrl.bps.parsl.sites.Local``, ``...sites.Slurm``...). The default
is `local_site`: ``Local`` with this machine's cores. An operator may give
a site file instead (``--bps-site FILE``, `load_site`): a YAML mapping with
``computeSite`` and ``site``, and optionally other bps settings of the
operator's own (``requestMemory``, ``finalJob: {requestCpus: ...}``,
``site.<name>.commandPrefix``...). The packaged `SLURM_SITE_FILE` is an
example for a Slurm cluster.

A site file is the operator's configuration, as trusted as the OCPS's
command line (a ``commandPrefix`` runs on every worker): requests never
change it. It may not set what the OCPS decides per job (the pipeline, the
repository, the collections, the query, the task options, the submit
path, the clustering: `JOB_KEYS`), and the plugin must be Parsl's.
"""

from __future__ import annotations

__all__ = [
    "JOB_KEYS",
    "PARSL_SERVICE",
    "SLURM_SITE_FILE",
    "BpsSite",
    "BpsSiteError",
    "load_site",
    "local_site",
]

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

PARSL_SERVICE = "lsst.ctrl.bps.parsl.ParslService"
"""The bps plugin the OCPS runs (``wmsServiceClass``)."""

LOCAL_SITE_CLASS = "lsst.ctrl.bps.parsl.sites.Local"
"""Parsl site of this machine."""

SLURM_SITE_FILE = Path(__file__).resolve().parents[2] / "data" / "bps" / "slurm-site.yaml"
"""Packaged example site file for a Slurm cluster."""

JOB_KEYS = frozenset(
    {
        "pipelineYaml",
        "qgraphFile",
        "payload",
        "butlerConfig",
        "inCollection",
        "dataQuery",
        "output",
        "outputRun",
        "submitPath",
        "extraQgraphOptions",
        "extraInitOptions",
        "extraRunQuantumOptions",
        "pipetaskInput",
        "pipetaskOutput",
        "pipetaskDataQuery",
        "createQuantumGraph",
        "runQuantumCommand",
        "clusterAlgorithm",
        "cluster",
        "includeConfigs",
    }
)
"""bps settings the OCPS writes for each job, which a site file may not set."""


class BpsSiteError(ValueError):
    """A site file cannot be used; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class BpsSite:
    """The site part of the bps configuration.

    Attributes
    ----------
    settings : `dict`
        bps settings: ``computeSite``, ``site`` and any others of the
        operator's (written into each job's bps YAML).
    source : `~pathlib.Path` or `None`
        The site file, or None for the default local site.
    """

    settings: dict[str, Any]
    source: Path | None = None

    @property
    def name(self) -> str:
        """The ``computeSite``."""
        return str(self.settings["computeSite"])

    @property
    def site_class(self) -> str:
        """The Parsl site class."""
        return str(self.settings["site"][self.name]["class"])

    @property
    def cores(self) -> int | None:
        """Cores of the local site (its parallelism), or None for other sites."""
        cores = self.settings["site"][self.name].get("cores")
        return int(cores) if self.site_class == LOCAL_SITE_CLASS and cores is not None else None

    def describe(self) -> str:
        """Say where jobs run, in a few words."""
        where = f"Parsl site {self.name!r} ({self.site_class}"
        if self.cores is not None:
            where += f", {self.cores} cores"
        where += ")"
        if self.source is not None:
            where += f" from {self.source}"
        return where


def local_site(cores: int | None = None) -> BpsSite:
    """Return the default site: Parsl ``Local`` with this machine's cores.

    Parameters
    ----------
    cores : `int`, optional
        Worker processes; default: the cores this process may use.

    Notes
    -----
    Parsl retries a failed job once by default; a quantum that failed here
    fails again, so the local site does not retry (``retries: 0``).
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 1:
        raise BpsSiteError(f"the local site needs at least one core, got {cores}")
    return BpsSite(
        {
            "computeSite": "local",
            "site": {"local": {"class": LOCAL_SITE_CLASS, "cores": cores, "retries": 0}},
        }
    )


def load_site(path: str | Path) -> BpsSite:
    """Read a site file.

    Parameters
    ----------
    path : `str` or `~pathlib.Path`
        YAML file with ``computeSite`` and ``site.<computeSite>.class``.

    Raises
    ------
    BpsSiteError
        If the file cannot be read, is not such a mapping, sets one of
        `JOB_KEYS`, or names a plugin other than Parsl's.
    """
    source = Path(path).expanduser().resolve()
    try:
        settings = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BpsSiteError(f"bps site file {source}: cannot be read: {e}") from None
    if not isinstance(settings, dict):
        raise BpsSiteError(f"bps site file {source}: must be a mapping with computeSite and site")
    compute_site = settings.get("computeSite")
    sites = settings.get("site")
    if not isinstance(compute_site, str) or not isinstance(sites, dict):
        raise BpsSiteError(f"bps site file {source}: needs computeSite (a name) and a site mapping")
    site = sites.get(compute_site)
    if not isinstance(site, dict) or not isinstance(site.get("class"), str):
        raise BpsSiteError(
            f"bps site file {source}: site.{compute_site}.class must name a Parsl site class "
            f"(e.g. {LOCAL_SITE_CLASS})"
        )
    owned = sorted(JOB_KEYS & settings.keys())
    if owned:
        raise BpsSiteError(
            f"bps site file {source}: sets {', '.join(owned)}, which the OCPS writes for each job "
            "(clustering: --bps-cluster)"
        )
    service = settings.get("wmsServiceClass", PARSL_SERVICE)
    if service != PARSL_SERVICE:
        raise BpsSiteError(
            f"bps site file {source}: wmsServiceClass {service!r}: the OCPS runs bps with {PARSL_SERVICE} "
            "(see doc/scaling-out.rst for HTCondor)"
        )
    return BpsSite(settings, source)
