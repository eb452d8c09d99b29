"""Block-script behaviour of the calibration scripts (ts_standardscripts' BaseBlockScript)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.script.base_block_script import BaseBlockScript

from .script_runner import observatory, run_script

pytestmark = pytest.mark.slow


class RecordingLatiss(MakeLatissCalibrations):
    """MakeLatissCalibrations that records its checkpoints and feasibility checks."""

    def __init__(self, index: int, **kwargs: object) -> None:
        super().__init__(index, **kwargs)  # type: ignore[arg-type]
        self.reached: list[str] = []

    async def checkpoint(self, name: str = "") -> None:
        self.reached.append(name)
        await super().checkpoint(name)

    async def assert_feasibility(self, image_type: str) -> None:
        self.reached.append(f"feasible {image_type}")


class Stand:
    """What `BaseBlockScript.checkpoint_message` reads, without SAL."""

    def __init__(self, program: str | None, reason: str | None, obs_id: str) -> None:
        self.program, self.reason, self.obs_id = program, reason, obs_id


def test_checkpoint_message_spaced_as_production() -> None:
    message = BaseBlockScript.checkpoint_message.fget  # type: ignore[attr-defined]
    assert message(Stand("BLOCK-T1", "daily", "O1")) == "Stand BLOCK-T1 O1 daily"
    assert message(Stand("BLOCK-T1", "daily", "")) == "Stand BLOCK-T1  daily"
    assert message(Stand("BLOCK-T1", None, "")) == "Stand BLOCK-T1 "
    assert message(Stand(None, "daily", "O1")) is None


async def test_block_checkpoints_metadata_and_group_id(tmp_path: Path) -> None:
    config = {
        "script_mode": "BIAS",
        "n_bias": 2,
        "program": "BLOCK-T1",
        "reason": "daily",
        "note": "block test",
        "do_verify": False,
    }
    async with observatory(tmp_path) as obs:
        run = await run_script(obs, RecordingLatiss, config, index=7, block_id="AT_O_20261204_000001")
        script = run.script
        assert run.final_state == ScriptState.DONE, run.reason
        assert isinstance(script, RecordingLatiss)
        ids = script.exposures_used["BIAS"]
        message = "RecordingLatiss BLOCK-T1 AT_O_20261204_000001 daily"
        assert script.reached == [
            f"{message}: Start",
            "Setup instrument.",
            "Taking 2 biases.",
            "feasible BIAS",
            f"Images taken: {tuple(ids)}; type: BIAS",
            "Data-taking part completed.",
            f"{message}: Done",
        ]
        assert script.reached[4] == f"Images taken: ({ids[0]}, {ids[1]}); type: BIAS"
        butler = Butler.from_config(str(obs.config.repo_path))
        records = list(butler.registry.queryDimensionRecords("exposure", instrument="LATISS"))
        mine = [r for r in records if r.id in ids]
        assert len(mine) == 2
        for record in mine:
            assert record.group == "AT_O_20261204_000001_7"
            assert record.science_program == "BLOCK-T1"
            assert record.observation_reason == "daily"
