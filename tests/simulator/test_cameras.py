"""Simulated cameras, OODS and header service: events, names, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.control import LATISS, ComCam
from lsst.ts.calibscripts.simulator.camera_csc import parse_key_value_map
from lsst.ts.calibscripts.simulator.image_names import ImageNameSource, day_obs_for

from .observatory_fixtures import collect_image_in_oods, running_observatory


async def test_event_sequence_and_key_values(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (_, domain):
        camera = sal.Remote(domain, "ATCamera", evt_max_history=0)
        headers = sal.Remote(domain, "ATHeaderService", evt_max_history=0)
        async with camera, headers, LATISS(domain) as latiss:
            (exposure,) = await latiss.take_bias(1, group_id="2022-09-29T12:00:00.000", reason="daily")
            start = await camera.evt_startIntegration.next(flush=False, timeout=5)
            end = await camera.evt_endReadout.next(flush=False, timeout=5)
            lfa = await camera.evt_largeFileObjectAvailable.next(flush=False, timeout=5)
            header = await headers.evt_largeFileObjectAvailable.next(flush=False, timeout=5)
            assert start.imageName == end.imageName == lfa.id == header.id
            assert start.imageName.startswith("AT_O_")
            assert int(start.imageName[5:13] + start.imageName[15:]) == exposure
            assert end.requestedExposureTime == 0.0
            assert end.timestampEndOfReadout >= start.timestampAcquisitionStart
            assert end.additionalKeys.split(":")[:3] == ["imageType", "groupId", "testType"]
            assert end.additionalValues.startswith("BIAS:2022-09-29T12:00:00.000:BIAS")
            assert lfa.url.endswith(f"{start.imageName}_RXX_S00.fits")


async def test_overlapping_exposure_refused(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (_, domain), sal.Remote(domain, "ATCamera") as camera:
        fields = dict(numImages=1, expTime=200.0, shutter=False, keyValueMap="imageType: DARK", timeout=30)
        first = asyncio.create_task(camera.cmd_takeImages.set_start(**fields))
        await camera.evt_startIntegration.next(flush=True, timeout=5)
        with pytest.raises(sal.AckError, match="an exposure is already in progress"):
            await camera.cmd_takeImages.set_start(**fields)
        assert (await first).ack == sal.SalRetCode.CMD_COMPLETE


async def test_names_never_repeat_across_restart(tmp_path: Path) -> None:
    taken: list[int] = []
    for _ in range(2):
        async with running_observatory(tmp_path) as (_, domain), LATISS(domain) as latiss:
            taken += await latiss.take_bias(2)
    assert len(set(taken)) == 4
    assert taken == list(range(taken[0], taken[0] + 4))


def test_day_obs_rolls_over_at_noon_utc(tmp_path: Path) -> None:
    import datetime

    utc = datetime.UTC
    assert day_obs_for(datetime.datetime(2022, 9, 30, 11, 59, tzinfo=utc)) == 20220929
    assert day_obs_for(datetime.datetime(2022, 9, 30, 12, 0, tzinfo=utc)) == 20220930
    from lsst.ts.calibscripts.cp.camera.description import LATISS as LATISS_DESCRIPTION

    names = ImageNameSource(LATISS_DESCRIPTION, state_dir=tmp_path)
    assert names.next(datetime.datetime(2022, 9, 30, 3, tzinfo=utc))[0] == "AT_O_20220929_000001"
    assert names.next(datetime.datetime(2022, 9, 30, 4, tzinfo=utc))[0] == "AT_O_20220929_000002"
    assert names.next(datetime.datetime(2022, 9, 30, 13, tzinfo=utc))[0] == "AT_O_20220930_000001"


def test_parse_key_value_map() -> None:
    assert parse_key_value_map("imageType: BIAS, groupId: 2022-09-29T12:00:00, reason: x") == {
        "imageType": "BIAS",
        "groupId": "2022-09-29T12:00:00",
        "reason": "x",
    }
    with pytest.raises(sal.ExpectedError, match="'oops' is not 'key: value'"):
        parse_key_value_map("imageType: BIAS, oops")


async def test_comcam_nine_detectors_and_subsets(tmp_path: Path) -> None:
    async with running_observatory(tmp_path, "LSSTComCam") as (_, domain):
        oods = sal.Remote(domain, "CCOODS", evt_max_history=0)
        async with oods, ComCam(domain) as comcam:
            await comcam.assert_all_enabled()
            await comcam.take_bias(1)
            events = await collect_image_in_oods(oods, 9)
            assert sorted(e.sensor for e in events) == [
                "S00",
                "S01",
                "S02",
                "S10",
                "S11",
                "S12",
                "S20",
                "S21",
                "S22",
            ]
            assert {e.raft for e in events} == {"R22"}
            assert all(e.statusCode == 0 for e in events)
            await comcam.take_bias(1, sensors="R22_S11:R22_S00")
            events = await collect_image_in_oods(oods, 2)
            assert sorted(e.sensor for e in events) == ["S00", "S11"]
            with pytest.raises(TimeoutError):
                await oods.evt_imageInOODS.next(flush=False, timeout=0.5)
            with pytest.raises(sal.AckError, match=r"Unknown sensors \['R22_S33'\]"):
                await comcam.take_bias(1, sensors="R22_S33")


async def test_comcam_filter_change_only_when_different(tmp_path: Path) -> None:
    async with running_observatory(tmp_path, "LSSTComCam") as (_, domain), ComCam(domain) as comcam:
        camera = comcam.camera
        await comcam.setup_instrument(filter="r_03")
        assert (await camera.evt_endSetFilter.aget(timeout=1)).filterName == "r_03"
        camera.evt_startSetFilter.flush()
        await comcam.setup_instrument(filter="r_03")
        assert camera.evt_startSetFilter.nqueued == 0
        with pytest.raises(sal.AckError, match="Unknown filter 'q'; valid filters: u_02"):
            await comcam.setup_instrument(filter="q")


async def test_camera_fault_injection(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (observatory, domain), LATISS(domain) as latiss:
        observatory.camera.faults.fail_take_images = {2}
        await latiss.take_bias(1)
        with pytest.raises(sal.AckError, match="Injected fault: takeImages number 2 fails"):
            await latiss.take_bias(1)
        await latiss.take_bias(1)


async def test_oods_drop_and_fail(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (observatory, domain):
        oods = sal.Remote(domain, "ATOODS", evt_max_history=0)
        async with oods, LATISS(domain) as latiss:
            _, day_obs, seq = observatory.camera.names.next()
            dropped = f"AT_O_{day_obs}_{seq + 1:06d}"
            failed = f"AT_O_{day_obs}_{seq + 2:06d}"
            observatory.oods.faults.drop = {dropped}
            observatory.oods.faults.fail = {f"{failed}/RXX_S00"}
            await latiss.take_bias(3)
            events = await collect_image_in_oods(oods, 2)
            by_name = {e.obsid: e for e in events}
            assert dropped not in by_name
            assert by_name[failed].statusCode == 1
            assert "Injected fault" in by_name[failed].description
            with pytest.raises(TimeoutError):
                await oods.evt_imageInOODS.next(flush=False, timeout=0.5)
