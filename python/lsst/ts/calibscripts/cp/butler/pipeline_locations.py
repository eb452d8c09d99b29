"""Where the calibration pipelines live: ``CP_PIPE_DIR`` and ``CP_VERIFY_DIR``.

Rubin's scripts name their pipelines as
``${CP_PIPE_DIR}/pipelines/<instrument>/cpBias.yaml`` and
``${CP_VERIFY_DIR}/pipelines/<instrument>/verifyBias.yaml``, where the two
variables are the set-up directories of the ``cp_pipe`` and ``cp_verify``
packages. This package ships its own pipelines in the same layout, as
package data under ``lsst/ts/calibscripts/data/cp_pipe`` and
``.../data/cp_verify``, and the pipeline files import their shared
ingredients through the same variables. Any process that runs ``pipetask``
on them therefore needs the variables in its environment:
`pipeline_environment` gives it.
"""

from __future__ import annotations

__all__ = [
    "CP_PIPE_DIR_VARIABLE",
    "CP_VERIFY_DIR_VARIABLE",
    "cp_pipe_dir",
    "cp_verify_dir",
    "generation_pipeline",
    "pipeline_environment",
    "verification_pipeline",
]

import os
from collections.abc import Mapping
from pathlib import Path

CP_PIPE_DIR_VARIABLE = "CP_PIPE_DIR"
"""Name of the environment variable that points at `cp_pipe_dir`."""

CP_VERIFY_DIR_VARIABLE = "CP_VERIFY_DIR"
"""Name of the environment variable that points at `cp_verify_dir`."""

_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def cp_pipe_dir() -> Path:
    """Return the directory that plays the role of ``$CP_PIPE_DIR``.

    It holds ``pipelines/<instrument>/cp{Bias,Dark,Flat,Defects,Ptc}.yaml``
    and ``pipelines/_ingredients/``.
    """
    return _DATA_DIR / "cp_pipe"


def cp_verify_dir() -> Path:
    """Return the directory that plays the role of ``$CP_VERIFY_DIR``.

    It holds ``pipelines/<instrument>/verify{Bias,Dark,Flat}.yaml`` and
    ``pipelines/_ingredients/``.
    """
    return _DATA_DIR / "cp_verify"


def pipeline_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return an environment in which pipetask finds this package's pipelines.

    Parameters
    ----------
    base
        Environment to start from; `os.environ` if `None`. Values of
        ``CP_PIPE_DIR`` and ``CP_VERIFY_DIR`` already in it are replaced,
        because pipelines from another cp_pipe would not match this
        package's tasks.

    Returns
    -------
    environment
        A copy of ``base`` with both variables set.
    """
    environment = dict(os.environ if base is None else base)
    environment[CP_PIPE_DIR_VARIABLE] = str(cp_pipe_dir())
    environment[CP_VERIFY_DIR_VARIABLE] = str(cp_verify_dir())
    return environment


def _pipeline_path(root: Path, instrument: str, name: str) -> Path:
    path = root / "pipelines" / instrument / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.name for p in (root / "pipelines").iterdir() if not p.name.startswith("_"))
        raise FileNotFoundError(
            f"No pipeline {name!r} for instrument {instrument!r}: {path} does not exist "
            f"(instruments with pipelines: {', '.join(available)})."
        )
    return path


def generation_pipeline(instrument: str, name: str) -> Path:
    """Return the path of a calibration generation pipeline.

    Parameters
    ----------
    instrument
        Instrument name, e.g. ``LATISS`` or ``LSSTComCam``.
    name
        Pipeline name without extension: ``cpBias``, ``cpDark``, ``cpFlat``,
        ``cpDefects`` or ``cpPtc``.

    Raises
    ------
    FileNotFoundError
        If the instrument or the pipeline does not exist.
    """
    return _pipeline_path(cp_pipe_dir(), instrument, name)


def verification_pipeline(instrument: str, name: str) -> Path:
    """Return the path of a calibration verification pipeline.

    Parameters
    ----------
    instrument
        Instrument name, e.g. ``LATISS`` or ``LSSTComCam``.
    name
        Pipeline name without extension: ``verifyBias``, ``verifyDark`` or
        ``verifyFlat``.

    Raises
    ------
    FileNotFoundError
        If the instrument or the pipeline does not exist.
    """
    return _pipeline_path(cp_verify_dir(), instrument, name)
