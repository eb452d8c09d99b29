"""The whole LATISS sequence: generate and certify everything.

The daily default (external verification) against certified calibrations
is in test_daily_default.py (against the bootstrapped reference set) and
test_make_latiss_calibrations.py (against a bias certified by a run).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ScriptState

from .script_runner import observatory, run_script

pytestmark = pytest.mark.slow


async def test_generate_all(tmp_path: Path) -> None:
    # Amps of 200 x 200 pixels: enough for gains to 1-2 % from one pair.
    async with observatory(tmp_path, geometry="200x200") as obs:
        repo = obs.config.repo_path
        truth = obs.camera.models["RXX_S00"].truth.gains
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {
                "n_bias": 20,
                "n_dark": 20,
                "exp_times_dark": 30,
                "n_flat": 14,
                "exp_times_flat": [4, 4, 6, 6, 8, 8, 12, 12, 16, 16, 24, 24, 32, 32],
                "generate_calibrations": True,
                "do_defects": True,
                "do_ptc": True,
            },
        )
        assert run.final_state == ScriptState.DONE, run.reason
        summary = run.script.summary.steps
        for name in ("BIAS", "DARK", "FLAT", "DEFECTS", "PTC"):
            assert summary[name].certified.startswith("LATISS/calib/daily"), summary[name].describe()
        flats = run.script.exposures_used["FLAT"]
        with Butler.from_config(str(repo), collections=["LATISS/calib"]) as butler:
            for product in ("bias", "dark", "flat", "defects", "ptc"):
                assert butler.get(product, instrument="LATISS", detector=0, exposure=flats[0]) is not None
            ptc = butler.get("ptc", instrument="LATISS", detector=0, exposure=flats[0])
        for amp, gain in truth.items():
            assert ptc.gain[amp] == pytest.approx(gain, rel=0.03)
        # Gains reported per pair, detector and amplifier.
        assert len(run.script.pair_gains) == 7
        for per_detector in run.script.pair_gains.values():
            for amp, gain in per_detector[0].items():
                assert gain == pytest.approx(truth[amp], rel=0.03), amp
        assert "Gains estimated from flat pairs (e-/ADU):" in run.text(logging.INFO)
