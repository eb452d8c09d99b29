"""MakeLatissCalibrations end to end: simulated LATISS, real pipetask jobs through the OCPS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lsst.daf.butler import Butler, MissingCollectionError

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ScriptState

from . import procedure_examples as examples
from .script_runner import LogWatch, observatory, run_script

pytestmark = pytest.mark.slow


def read_text(path: str) -> str:
    return Path(path).read_text()


def certified(repo: Path, collection: str, dataset_type: str) -> list[object]:
    """Datasets certified in a collection ([] if the collection does not exist)."""
    with Butler.from_config(str(repo)) as butler:
        try:
            return list(butler.registry.queryDatasets(dataset_type, collections=collection, findFirst=False))
        except MissingCollectionError:
            return []


async def test_three_images_fail_verification(tmp_path: Path) -> None:
    # The procedure's example: 3 images per type, internal verification.
    async with observatory(tmp_path) as obs:
        run = await run_script(obs, MakeLatissCalibrations, examples.THREE_IMAGES)
    assert run.final_state == ScriptState.FAILED
    assert "BIAS calibration failed verification" in run.reason
    warnings = run.text(logging.WARNING)
    for section in (
        "Number of tests that failed per test type:",
        "Threshold values:",
        "Acceptable maximum number of failed exposures: 2",
        "Final number of exposures that failed verification: 3",
        "Generation collection: u/ocps/",
    ):
        assert section in warnings
    assert warnings.count(" NOISE") >= 3 * 16  # every amp of every exposure
    assert "BIAS calibration failed verification and will not be certified." in warnings
    errors = run.text(logging.ERROR)
    assert "DARK failed: not generated: we need a certified bias to make a combined dark" in errors
    assert certified(obs.config.repo_path, "LATISS/calib/u/plazas/daily.2022SEP29.2", "bias") == []
    # Darks were taken, but nothing was generated from them.
    assert "dark generation" not in run.text()


async def test_twenty_biases_then_external_verification(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        repo = obs.config.repo_path
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {"script_mode": "BIAS", "n_bias": 20, "generate_calibrations": True},
        )
        assert run.final_state == ScriptState.DONE, run.reason
        biases = run.script.exposures_used["BIAS"]
        assert len(biases) == 20
        # The default calib_collection is in the LATISS/calib chain: users read it plainly.
        with Butler.from_config(str(repo), collections=["LATISS/calib"]) as butler:
            bias = butler.get("bias", instrument="LATISS", detector=0, exposure=biases[0])
        assert bias is not None
        assert "certified into LATISS/calib/daily" in run.text()
        # The next day: external verification (the default) against what was certified.
        run = await run_script(obs, MakeLatissCalibrations, {"script_mode": "BIAS", "n_bias": 5}, index=2)
    assert run.final_state == ScriptState.DONE, run.reason
    record = run.script.summary.steps["BIAS"]
    assert record.generation_collection is None
    assert record.verification in ("all tests passed",) or record.verification.startswith("accepted")
    assert record.certified == ""


async def test_certification_conflict(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        repo = obs.config.repo_path
        first = await run_script(
            obs,
            MakeLatissCalibrations,
            {
                "script_mode": "BIAS",
                "n_bias": 20,
                "generate_calibrations": True,
                "calib_collection": "LATISS/calib/x",
            },
        )
        assert first.final_state == ScriptState.DONE, first.reason
        second = await run_script(
            obs,
            MakeLatissCalibrations,
            {
                "script_mode": "BIAS",
                "n_bias": 20,
                "generate_calibrations": True,
                "calib_collection": "LATISS/calib/x",
            },
            index=2,
        )
    assert second.final_state == ScriptState.FAILED
    assert "certification of bias failed" in second.reason
    assert "LATISS/calib/x" in second.reason
    assert len(certified(repo, "LATISS/calib/x", "bias")) == 1


async def test_ocps_job_failure_names_job_and_log(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        obs.ocps.faults.fail_job_numbers = {1}  # type: ignore[attr-defined]
        # Generation: it reads no calibration, so the preflight lets it start on a new repository.
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {"script_mode": "BIAS", "n_bias": 2, "generate_calibrations": True, "calib_collection": "x/c"},
        )
    assert run.final_state == ScriptState.FAILED
    assert "bias generation) failed with exit code 1" in run.reason
    log_path = run.reason.split("see the job log ")[1].split(";")[0].strip().rstrip(")")
    assert "injected failure" in read_text(log_path)


async def test_missing_oods_image_is_reported(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        _, day_obs, seq = obs.camera.names.next()
        missing = f"AT_O_{day_obs}_{seq + 3:06d}"  # the second kept bias (one is discarded)
        obs.oods.faults.drop = {missing}
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {"script_mode": "BIAS", "n_bias": 3, "do_verify": False, "oods_timeout": 2},
        )
    assert run.final_state == ScriptState.DONE, run.reason
    warnings = run.text(logging.WARNING)
    assert "BIAS: 1 of 3 exposures are not available" in warnings
    assert f"{day_obs * 100000 + seq + 3} ({missing}): RXX_S00 not announced by the OODS" in warnings
    assert len(run.script.exposures_used["BIAS"]) == 2
    assert "Waiting for the OODS: 2 of 3 BIAS raws (one per image and detector) announced" in run.text()


async def test_component_not_enabled(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        await obs.components["ATSpectrograph"].do_disable(None)  # type: ignore[arg-type]
        run = await run_script(obs, MakeLatissCalibrations, {"script_mode": "BIAS", "n_bias": 2})
    assert run.final_state == ScriptState.FAILED
    assert "components not ENABLED: ATSpectrograph (DISABLED)" in run.reason


async def test_missing_input_collection_before_first_image(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        run = await run_script(obs, MakeLatissCalibrations, examples.PTC_AND_DEFECTS)
    assert run.final_state == ScriptState.FAILED
    assert "input collections missing" in run.reason
    assert "u/czw/DM-28920/calib.20210720" in run.reason
    assert run.script.exposures_taken == {}


async def test_stop_aborts_jobs(tmp_path: Path) -> None:
    async def stop_when_a_job_runs(script: MakeLatissCalibrations, remote: sal.Remote, log: LogWatch) -> None:
        await log.wait_for("started: bias generation")
        await remote.cmd_stop.start(timeout=30)

    async with observatory(tmp_path) as obs:
        ocps = sal.Remote(obs.domain, "OCPS", 1, evt_max_history=0, readonly=True)
        async with ocps:
            run = await run_script(
                obs,
                MakeLatissCalibrations,
                {
                    "script_mode": "BIAS",
                    "n_bias": 20,
                    "generate_calibrations": True,
                    "calib_collection": "LATISS/calib/s",
                },
                while_running=stop_when_a_job_runs,
            )
            result = await ocps.evt_job_result.next(flush=False, timeout=30)
        assert result.exit_code == 255
        assert run.final_state == ScriptState.STOPPED
        assert "Exposures taken: BIAS:" in run.text()
        assert certified(obs.config.repo_path, "LATISS/calib/s", "bias") == []
