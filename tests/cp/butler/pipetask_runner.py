"""Run ``pipetask`` as the OCPS does: a subprocess with the pipeline environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lsst.ts.calibscripts.cp.butler.pipeline_locations import pipeline_environment

PIPETASK = Path(sys.executable).parent / "pipetask"


def run_pipetask(
    repo: Path,
    pipeline: Path | str,
    inputs: Sequence[str],
    output: str,
    query: str,
    config: Sequence[str] = (),
    jobs: int = 1,
) -> str:
    """Run ``pipetask run`` and return its combined output.

    Raises
    ------
    AssertionError
        If pipetask fails; the message carries the end of its output.
    """
    command = [
        str(PIPETASK),
        "--long-log",
        "run",
        "-b",
        str(repo),
        "-i",
        ",".join(inputs),
        "-o",
        output,
        "-p",
        str(pipeline),
        "-d",
        query,
        "-j",
        str(jobs),
        "--register-dataset-types",
    ]
    for option in config:
        command += ["-c", option]
    completed = subprocess.run(
        command, env=pipeline_environment(), capture_output=True, text=True, check=False
    )
    output_text = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise AssertionError(f"pipetask failed ({completed.returncode}):\n{output_text[-6000:]}")
    return output_text


def exposure_query(instrument: str, exposures: Sequence[int], detectors: Sequence[int] | None = None) -> str:
    """Data query for a list of exposures (and detectors) as the scripts write it."""
    query = f"instrument='{instrument}' AND exposure IN ({', '.join(str(e) for e in exposures)})"
    if detectors is not None:
        query += f" AND detector IN ({', '.join(str(d) for d in detectors)})"
    return query
