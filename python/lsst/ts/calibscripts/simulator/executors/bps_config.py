"""The bps YAML of one OCPS job, written from its ``execute`` fields.

The request is checked exactly as for pipetask (the pipeline must be one of
this package's, the query one bounded line, the config parsed by
`~lsst.ts.calibscripts.cp.butler.pipetask_options.parse_job_config`), then
split the way ``bps`` wants it:

- ``-c``/``-C`` go to ``extraQgraphOptions`` (the quantum graph carries the
  task configuration to every job);
- ``-i`` collections go to ``payload.inCollection``, after
  ``<instrument>/raw/all``;
- ``-j`` and ``--register-dataset-types`` mean nothing to ``pipetask
  qgraph``: parallelism comes from the site's cores, and the final job
  (``butler aggregate-graph --register-dataset-types``) registers the
  dataset types. Both are noted in the job log.

The output is ``payload.output: u/ocps/<jobId>`` with ``outputRun:
"{output}/{timestamp}"``: the same CHAINED collection over a timestamped RUN
that ``pipetask run -o`` makes.

bps reads its configuration values through its own template engine:
``{name}`` is replaced by another setting, ``$VAR``/``${VAR}`` and
``<ENV:VAR>`` by the environment, ``bpsEval(f, args)`` is *evaluated as
Python*, and the query is put between double quotes on the ``pipetask
qgraph`` command line that bps then splits. So every value that comes from
a request is refused if it holds any of these (`check_bps_text`): the
allow-list must hold in bps mode as it does for pipetask.

Quanta are clustered per detector by default (`cluster_sections`): all the
tasks that have the ``detector`` dimension run in one bps job per detector,
one ``pipetask run-qbb`` each, instead of one job per quantum.
"""

from __future__ import annotations

__all__ = [
    "CLUSTER_ALGORITHM",
    "BpsJobConfig",
    "bps_yaml_header",
    "build_bps_config",
    "check_bps_text",
    "cluster_sections",
    "task_dimensions",
    "write_bps_config",
]

import contextlib
import copy
import dataclasses
import os
import re
import shlex
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...cp.butler.pipeline_locations import pipeline_environment
from ...cp.butler.pipetask_options import (
    PipetaskOptionError,
    check_data_query,
    check_pipeline,
    parse_job_config,
)
from ..ocps_job import JobRequestError
from .base import JobRequest
from .bps_site import PARSL_SERVICE, BpsSite

CLUSTER_ALGORITHM = "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering"
"""bps's clustering by dimension values."""

# What bps's configuration engine would interpret in a value (see the module docstring).
_BPS_SPECIAL = re.compile(r"[{}$]|bpsEval|<(?:ENV|FILE|WMS):")
# The query also sits between double quotes on a command line bps splits.
_QUERY_SPECIAL = re.compile(r'["\\]')

# Pipelines are read with the pipeline variables set in os.environ, which
# threads share: one read at a time.
_ENVIRONMENT_LOCK = threading.Lock()


def check_bps_text(text: str, where: str, *, quoted: bool = False) -> str:
    r"""Refuse a request value that bps's configuration engine would interpret.

    Parameters
    ----------
    text : `str`
        The value (a data query, a ``-c`` override...).
    where : `str`
        What it is, for the message.
    quoted : `bool`, optional
        Does the value go between double quotes on a command line (the
        data query)? Then ``"`` and ``\`` are refused too.

    Returns
    -------
    text : `str`
        ``text``, unchanged.

    Raises
    ------
    JobRequestError
        Naming the value and what is refused in it.
    """
    match = _BPS_SPECIAL.search(text) or (_QUERY_SPECIAL.search(text) if quoted else None)
    if match is not None:
        refused = "{, }, $, bpsEval, <ENV:, <FILE:, <WMS:" + (', " and \\' if quoted else "")
        hint = " (write string literals with single quotes)" if match.group() == '"' else ""
        raise JobRequestError(
            f"{where}: {match.group()!r} in {text!r} is not accepted by the OCPS's bps mode, whose "
            f"configuration engine would interpret it (refused: {refused}){hint}"
        )
    return text


@contextlib.contextmanager
def _pipeline_variables() -> Iterator[None]:
    """Set ``CP_PIPE_DIR``/``CP_VERIFY_DIR`` in this process while a pipeline is read."""
    wanted = pipeline_environment({})
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def task_dimensions(pipeline: str) -> tuple[dict[str, frozenset[str]], list[tuple[str, str]]]:
    """Read a pipeline's tasks, their dimensions and the edges between them.

    Parameters
    ----------
    pipeline : `str`
        Pipeline file (checked, absolute), with an optional ``#subset``.

    Returns
    -------
    dimensions : `dict` [`str`, `frozenset` [`str`]]
        Dimension names of each task label, in the pipeline's order.
    edges : `list` [`tuple` [`str`, `str`]]
        (producer, consumer) task labels.
    """
    from lsst.pipe.base import Pipeline

    with _pipeline_variables():
        graph = Pipeline.from_uri(pipeline).to_graph()
    # Without a repository: the dimensions are all that is needed here.
    graph.resolve(visualization_only=True)
    dimensions = {label: frozenset(task.dimensions.names) for label, task in graph.tasks.items()}
    edges = [(a.name, b.name) for a, b in graph.make_task_xgraph().edges]
    return dimensions, edges


def cluster_sections(
    dimensions: Mapping[str, frozenset[str]], edges: Sequence[tuple[str, str]], cluster_by: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Make bps ``cluster`` sections that group a pipeline's tasks by dimensions.

    Tasks that have every dimension of ``cluster_by`` run together, one bps
    job per value (per detector by default). A task without them (e.g.
    ``cpFlatNorm``, which sees all detectors at once) runs one job per
    quantum, and tasks after it go into a second cluster, so that no
    cluster both feeds and waits for it (bps refuses clusters that make a
    cycle).

    Parameters
    ----------
    dimensions : `~collections.abc.Mapping` [`str`, `frozenset` [`str`]]
        Dimensions of each task label (`task_dimensions`).
    edges : `~collections.abc.Sequence` [`tuple` [`str`, `str`]]
        (producer, consumer) task labels.
    cluster_by : `~collections.abc.Sequence` [`str`]
        Dimension names, e.g. ``["detector"]``; empty: no clusters (one job
        per quantum).

    Returns
    -------
    cluster : `dict` [`str`, `dict` [`str`, `str`]]
        The ``cluster`` setting: name -> ``{"pipetasks": "a,b",
        "dimensions": "detector"}``; names are ``detector``, ``detector2``...
    """
    if not cluster_by:
        return {}
    wanted = frozenset(cluster_by)
    clustered = {label for label, dims in dimensions.items() if wanted <= dims}
    parents: dict[str, list[str]] = {label: [] for label in dimensions}
    for producer, consumer in edges:
        parents[consumer].append(producer)
    # Stage of a task: how many unclustered tasks lie on the longest path to it.
    stage: dict[str, int] = {}

    def stage_of(label: str) -> int:
        if label not in stage:
            stage[label] = max(
                (stage_of(p) + (0 if p in clustered else 1) for p in parents[label]),
                default=0,
            )
        return stage[label]

    by_stage: dict[int, list[str]] = {}
    for label in dimensions:  # the pipeline's (topological) order
        if label in clustered:
            by_stage.setdefault(stage_of(label), []).append(label)
    base = "_".join(cluster_by)
    dims = ",".join(cluster_by)
    return {
        (base if i == 0 else f"{base}{i + 1}"): {"pipetasks": ",".join(labels), "dimensions": dims}
        for i, (_, labels) in enumerate(sorted(by_stage.items()))
    }


@dataclasses.dataclass(frozen=True)
class BpsJobConfig:
    """The bps YAML of a job and what the OCPS notes about it.

    Attributes
    ----------
    settings : `dict`
        The bps configuration (written as YAML).
    notes : `list` [`str`]
        Lines for the job log (options that bps does not use...).
    """

    settings: dict[str, Any]
    notes: list[str]


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_bps_config(
    request: JobRequest,
    *,
    site: BpsSite,
    cluster_by: Sequence[str],
    final_job_cpus: int,
) -> BpsJobConfig:
    """Check a request and make its bps configuration.

    Reads the pipeline (for the clustering); call it from a thread.

    Parameters
    ----------
    request : `JobRequest`
        The request.
    site : `BpsSite`
        Where the jobs run.
    cluster_by : `~collections.abc.Sequence` [`str`]
        Dimensions to cluster quanta by (`cluster_sections`).
    final_job_cpus : `int`
        Processes of the final job (``butler aggregate-graph -j``), on
        the OCPS's machine; a site file's ``finalJob.requestCpus`` wins.

    Returns
    -------
    config : `BpsJobConfig`
        The configuration and notes for the log.

    Raises
    ------
    JobRequestError
        As `~lsst.ts.calibscripts.simulator.ocps_job.build_pipetask_command`
        does, and for values bps would interpret (`check_bps_text`).
    """
    parameters = request.parameters
    if not parameters.pipeline.strip():
        raise JobRequestError("pipeline is blank")
    try:
        pipeline = check_pipeline(parameters.pipeline)
        options = parse_job_config(parameters.config)
        query = check_data_query(parameters.data_query.strip())
    except PipetaskOptionError as e:
        raise JobRequestError(str(e)) from None
    check_bps_text(pipeline, "pipeline")
    check_bps_text(query, "data_query", quoted=True)
    for flag, value in options.overrides:
        check_bps_text(value, f"config: {flag}")
    notes = []
    if options.processes is not None:
        cores = f" ({site.cores})" if site.cores is not None else ""
        notes.append(f"bps: -j {options.processes} ignored: parallelism comes from the site's cores{cores}")
    if options.register_dataset_types:
        notes.append("bps: --register-dataset-types: the final job registers the dataset types")
    try:
        dimensions, edges = task_dimensions(pipeline)
    except Exception as e:
        raise JobRequestError(
            f"pipeline {parameters.pipeline!r} cannot be read: {type(e).__name__}: {e}"
        ) from e
    clusters = cluster_sections(dimensions, edges, cluster_by)
    if clusters:
        described = "; ".join(f"{name}: {c['pipetasks']}" for name, c in clusters.items())
        notes.append(f"bps: one job per {', '.join(cluster_by)} for the tasks of each cluster ({described})")
    else:
        notes.append("bps: one job per quantum (no clustering)")
    inputs = list(dict.fromkeys([request.raw_collection, *options.inputs]))
    defaults: dict[str, Any] = {
        "finalJob": {"requestCpus": final_job_cpus},
        "parsl": {"log_level": "WARN"},
    }
    job: dict[str, Any] = {
        "wmsServiceClass": PARSL_SERVICE,
        "pipelineYaml": pipeline,
        "operator": "ocps",
        "project": "ocps",
        "campaign": request.job_id,
        "payload": {
            "payloadName": request.job_id,
            "butlerConfig": request.repo,
            "inCollection": ",".join(inputs),
            "dataQuery": query,
            "output": request.output_collection,
            "outputRun": "{output}/{timestamp}",
        },
        "submitPath": str(request.job_dir / "submit"),
        "extraQgraphOptions": shlex.join(token for pair in options.overrides for token in pair),
    }
    if not query:
        # As pipetask without -d: everything in the inputs.
        job["pipetaskDataQuery"] = ""
    if clusters:
        job["clusterAlgorithm"] = CLUSTER_ALGORITHM
        job["cluster"] = clusters
    settings = _merge(_merge(defaults, site.settings), job)
    return BpsJobConfig(settings, notes)


def bps_yaml_header(request: JobRequest) -> str:
    """Return the comment at the top of a job's bps YAML."""
    return (
        f"# bps configuration of OCPS job {request.job_id}, written by the simulated OCPS\n"
        f"# from its execute fields. To run it again by hand (from {request.job_dir}, with\n"
        "# CP_PIPE_DIR set and the environment's bin first on PATH): bps submit bps.yaml\n"
    )


def write_bps_config(config: BpsJobConfig, request: JobRequest, path: Path) -> None:
    """Write a job's bps YAML.

    Parameters
    ----------
    config : `BpsJobConfig`
        The configuration.
    request : `JobRequest`
        The request (for the header).
    path : `~pathlib.Path`
        Where to write it.
    """
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bps_yaml_header(request) + yaml.safe_dump(config.settings, sort_keys=False, width=1000))
