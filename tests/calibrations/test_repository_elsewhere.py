"""A repository made elsewhere holds everything it needs: deleting the checkout's var/ breaks nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ScriptState

from .script_runner import observatory, run_script

pytestmark = pytest.mark.slow

RAWS = "LATISS/raw/all"


def bias_run(calib_collection: str) -> dict[str, object]:
    """Two biases, one OCPS job (generation), certified into ``calib_collection``."""
    return {
        "script_mode": "BIAS",
        "n_bias": 2,
        "do_verify": False,
        "generate_calibrations": True,
        "calib_collection": calib_collection,
    }


async def test_repository_elsewhere_keeps_working_after_var_is_deleted(tmp_path: Path) -> None:
    var_dir, repo = tmp_path / "checkout" / "var", tmp_path / "elsewhere" / "repo"
    async with observatory(var_dir, repo=repo) as obs:
        first = await run_script(obs, MakeLatissCalibrations, bias_run("LATISS/calib/first"))
    assert first.final_state == ScriptState.DONE, first.reason
    logs = list((repo / "simulated-scratch" / "uws").glob("*/outs/ocps.log"))
    assert len(logs) == 1
    # Raws and job logs live with the repository; var/ holds header files only.
    assert {p.suffix for p in var_dir.rglob("*") if p.is_file()} <= {".yaml", ".json"}

    shutil.rmtree(var_dir)
    async with observatory(var_dir, repo=repo) as obs:
        second = await run_script(obs, MakeLatissCalibrations, bias_run("LATISS/calib/second"))
    assert second.final_state == ScriptState.DONE, second.reason
    assert len(list((repo / "simulated-scratch" / "uws").glob("*/outs/ocps.log"))) == 2
    assert all(log.is_file() for log in logs)
    with Butler.from_config(str(repo), collections=["LATISS/calib/first"]) as butler:
        exposure = first.script.exposures_used["BIAS"][0]
        assert butler.get("bias", instrument="LATISS", detector=0, exposure=exposure) is not None
        raw = butler.get("raw", instrument="LATISS", detector=0, exposure=exposure, collections=RAWS)
        assert raw is not None
