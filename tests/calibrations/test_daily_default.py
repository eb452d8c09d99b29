"""The procedure's Daily Default on a new simulated observatory: refused at once, or run to DONE.

Issue 15: on a repository without certified calibrations the Daily Default
(external verification) must refuse before the first image, saying what is
missing and what to do; on a bootstrapped repository it runs to DONE,
verifying against the reference calibrations.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from lsst.daf.butler import Butler, CollectionType, DatasetRef, Timespan

from lsst.ts.calibscripts.calibrations import MakeComCamBias, MakeLatissCalibrations
from lsst.ts.calibscripts.cp.butler.calibration_needs import timespan_now
from lsst.ts.calibscripts.sal import ScriptState
from lsst.ts.calibscripts.simulator.reference_calibrations import BootstrapPlan

from .script_runner import observatory, run_script


def find(butler: Butler, product: str, collection: str, when: Timespan) -> DatasetRef | None:
    """The calibration of detector 0 (flats: empty~empty) valid at a time, as pipetask finds it."""
    data_id: dict[str, str | int] = {"instrument": "LATISS", "detector": 0}
    if product == "flat":
        data_id["physical_filter"] = "empty~empty"
    return butler.find_dataset(product, data_id, collections=collection, timespan=when)


async def test_new_repository_refuses_the_daily_default_before_the_first_image(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        run = await run_script(obs, MakeLatissCalibrations, {})
        raws = list((obs.config.raw_path).rglob("*.fits"))
    assert run.final_state == ScriptState.FAILED
    assert (
        "external verification needs a certified bias, dark and flat for detector 0 in LATISS/calib "
        "valid now; none found for: bias, dark, flat (filter empty~empty). Run once with "
        "generate_calibrations: true, or name a collection that has them in input_collections_verify_*."
    ) in run.reason
    assert (
        "the gain from flat pairs needs a certified bias and dark for detector 0 in LATISS/calib valid now; "
        "none found for: bias, dark. Run once with generate_calibrations: true, or name a collection that "
        "has them in input_collections_ptc."
    ) in run.reason
    assert run.script.exposures_taken == {}
    assert raws == []


async def test_generation_that_needs_an_earlier_product_is_refused(tmp_path: Path) -> None:
    # Darks alone, generated: the dark pipeline subtracts a bias, which this run does not make.
    async with observatory(tmp_path) as obs:
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {"script_mode": "DARK", "generate_calibrations": True, "calib_collection": "LATISS/calib/t"},
        )
    assert run.final_state == ScriptState.FAILED
    assert (
        "Cannot start: dark generation and dark verification need a certified bias for detector 0 in "
        "LATISS/calib valid now; none found for: bias. Generate them in this run or an earlier one "
        "(generate_calibrations: true), or name a collection that has them in input_collections_dark or "
        "input_collections_verify_dark."
    ) in run.reason
    assert run.script.exposures_taken == {}


async def test_comcam_external_verification_names_every_detector(tmp_path: Path) -> None:
    async with observatory(tmp_path, "LSSTComCam") as obs:
        run = await run_script(obs, MakeComCamBias, {"generate_calibrations": False})
    assert run.final_state == ScriptState.FAILED
    assert (
        "external verification needs a certified bias for detectors 0-8 in LSSTComCam/calib valid now; "
        "none found for: bias. Run once with generate_calibrations: true, or name a collection that has "
        "them in input_collections_verify."
    ) in run.reason
    assert run.script.exposures_taken == {}


async def test_several_failures_make_a_short_reason(tmp_path: Path) -> None:
    async with observatory(tmp_path) as obs:
        # The bias generation fails (injected: no pipetask runs); nothing after it can be made.
        obs.ocps.faults.fail_job_numbers = {1}  # type: ignore[attr-defined]
        run = await run_script(
            obs,
            MakeLatissCalibrations,
            {
                "n_bias": 2,
                "n_dark": 2,
                "exp_times_dark": 1,
                "n_flat": 2,
                "generate_calibrations": True,
                "calib_collection": "LATISS/calib/t",
            },
        )
    assert run.final_state == ScriptState.FAILED
    lines = run.reason.removeprefix("Error in run: ").splitlines()
    assert lines[0] == "4 steps failed (details in the final summary):"
    assert [line.split(":")[0] for line in lines[1:]] == ["BIAS", "DARK", "FLAT", "GAIN"]
    job_id = run.script.summary.steps["BIAS"].failed_job
    assert job_id is not None
    assert lines[1] == f"BIAS: job {job_id}: injected failure of job number 1 (OcpsFaults.fail_job_numbers)"
    assert all(len(line) <= 210 for line in lines)
    # The full text stays in the log and the final summary.
    summary = run.script.summary.describe()
    assert f"OCPS job {job_id} (bias generation) failed with exit code 1" in summary
    assert "see the job log" in summary
    assert "see the job log" in run.text(logging.INFO)


@pytest.mark.slow
async def test_bootstrapped_repository_runs_the_daily_default(tmp_path: Path) -> None:
    t0 = time.monotonic()
    # The smallest reference set (jobs dominate the time, not images).
    plan = BootstrapPlan(n_bias=2, n_dark=2, n_flat=2)
    async with observatory(tmp_path, bootstrap=True, bootstrap_plan=plan) as obs:
        bootstrap_time = time.monotonic() - t0
        assert obs.bootstrapped == ["bias", "dark", "flat"]
        repo = obs.config.repo_path
        with Butler.from_config(str(repo)) as butler:
            assert butler.collections.get_info("LATISS/calib/bootstrap").type == CollectionType.CALIBRATION
            assert list(butler.collections.get_info("LATISS/calib").children) == [
                "LATISS/calib/daily",
                "LATISS/calib/bootstrap",
            ]
            reference = {
                product: find(butler, product, "LATISS/calib/bootstrap", timespan_now())
                for product in ("bias", "dark", "flat")
            }
        assert all(ref is not None for ref in reference.values())
        # The Daily Default's options (external verification, gains), fewer images.
        t1 = time.monotonic()
        run = await run_script(
            obs, MakeLatissCalibrations, {"n_bias": 3, "n_dark": 3, "exp_times_dark": 30, "n_flat": 4}
        )
        daily_time = time.monotonic() - t1
    print(f"bootstrap {bootstrap_time:.1f} s, daily default {daily_time:.1f} s")
    assert run.final_state == ScriptState.DONE, run.reason
    for name in ("BIAS", "DARK", "FLAT"):
        step = run.script.summary.steps[name]
        assert step.generation_collection is None
        assert step.verification_collection is not None
        assert step.certified == ""
    assert len(run.script.pair_gains) == 2
    # Verification used the reference calibrations: they are what LATISS/calib holds for the images.
    with Butler.from_config(str(repo)) as butler:
        (exposure,) = butler.query_dimension_records(
            "exposure", instrument="LATISS", exposure=run.script.exposures_used["FLAT"][0]
        )
        for product, ref in reference.items():
            assert find(butler, product, "LATISS/calib", exposure.timespan) == ref
    # Asked again (calibscripts sim --bootstrap): nothing is missing, nothing is made.
    async with observatory(tmp_path, bootstrap=True) as again:
        assert again.bootstrapped == []
