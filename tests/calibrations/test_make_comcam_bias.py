"""MakeComCamBias end to end on the simulated LSSTComCam."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.calibrations import MakeComCamBias
from lsst.ts.calibscripts.sal import ScriptState

from .script_runner import observatory, run_script

pytestmark = pytest.mark.slow


async def test_nine_detectors_then_a_subset(tmp_path: Path) -> None:
    async with observatory(tmp_path, "LSSTComCam") as obs:
        repo = obs.config.repo_path
        run = await run_script(
            obs, MakeComCamBias, {"n_bias": 20, "calib_collection": "LSSTComCam/calib/all"}
        )
        assert run.final_state == ScriptState.DONE, run.reason
        biases = run.script.exposures_used["BIAS"]
        assert "(9 detector(s))" in run.script.summary.steps["BIAS"].certified
        with Butler.from_config(str(repo), collections=["LSSTComCam/calib/all"]) as butler:
            for detector in range(9):
                assert (
                    butler.get("bias", instrument="LSSTComCam", detector=detector, exposure=biases[0])
                    is not None
                )

        run = await run_script(
            obs,
            MakeComCamBias,
            {"n_bias": 20, "detectors": [0, 4], "calib_collection": "LSSTComCam/calib/subset"},
            index=2,
        )
        assert run.final_state == ScriptState.DONE, run.reason
        with Butler.from_config(str(repo)) as butler:
            refs = butler.query_datasets("bias", collections="LSSTComCam/calib/subset", find_first=False)
        assert sorted(ref.dataId["detector"] for ref in refs) == [0, 4]
