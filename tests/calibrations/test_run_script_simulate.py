"""``run_script --simulate``: a newcomer runs the procedure end to end from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUN_SCRIPT = Path(sys.executable).parent / "run_script"


def run(args: list[str], var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALIBSCRIPTS_VAR_DIR": str(var_dir)}
    return subprocess.run(
        [str(RUN_SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env, check=False
    )


def test_simulated_bias_run_and_repo_choice(tmp_path: Path) -> None:
    common = [
        "auxtel/make_latiss_calibrations.py",
        "--simulate",
        "--geometry",
        "reduced",
        "--time-scale",
        "0.01",
    ]
    options = ["-p", "script_mode=BIAS", "-p", "n_bias=2", "-p", "do_verify=false", "-p", "n_processes=1"]
    result = run([*common, *options], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    repo = tmp_path / "repo" / "LATISS"
    assert f"Butler repository: {repo}" in result.stdout
    assert "Components ENABLED: ATSpectrograph, ATCamera, ATHeaderService, ATOODS, OCPS:1" in result.stdout
    assert "Collections: raws LATISS/raw/all" in result.stdout
    # The job logs live with the repository, not in the var dir.
    assert f"OCPS job logs: {repo}/simulated-scratch/uws/<jobId>/outs/ocps.log" in result.stdout
    assert "Checkpoint 3/4" in result.stdout
    assert result.stdout.rstrip().endswith("Final state: DONE")
    assert (repo / "butler.yaml").is_file()

    # A config repo that differs from --repo is refused before anything starts.
    config = tmp_path / "config.yaml"
    config.write_text(f"repo: {tmp_path / 'elsewhere'}\nscript_mode: BIAS\n")
    result = run([*common, "--repo", str(repo), "--config", str(config)], tmp_path)
    assert result.returncode == 2
    assert "differ; give one of them" in result.stderr
