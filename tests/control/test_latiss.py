"""LATISS use-case class against the simulated observatory."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.control import LATISS

from ..simulator.observatory_fixtures import collect_image_in_oods, running_observatory


def exposure_records(repo: Path, ids: list[int]) -> dict[int, object]:
    with Butler.from_config(str(repo)) as butler:
        where = f"exposure IN ({', '.join(map(str, ids))})"
        records = butler.query_dimension_records("exposure", where=where, instrument="LATISS")
        raws = butler.query_datasets("raw", collections="LATISS/raw/all", where=where, instrument="LATISS")
        assert sorted(ref.dataId["exposure"] for ref in raws) == sorted(ids)
        return {r.id: r for r in records}


async def test_take_bias_darks_flats(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (observatory, domain):
        oods = sal.Remote(domain, "ATOODS", evt_max_history=0)
        async with LATISS(domain) as latiss, oods:
            await latiss.assert_all_enabled()
            biases = await latiss.take_bias(3, group_id="g1", reason="test", program="CALIB")
            assert len(biases) == 3
            assert biases == list(range(biases[0], biases[0] + 3))
            darks = await latiss.take_darks(2.0, 2, group_id="g1")
            flats = await latiss.take_flats(1.5, 2, filter="SDSSr_65mm", grating="holo4_003", group_id="g1")
            events = await collect_image_in_oods(oods, 7)
            assert all(e.statusCode == 0 for e in events), [e.description for e in events]
            assert {(e.raft, e.sensor) for e in events} == {("RXX", "S00")}
        records = exposure_records(observatory.config.repo_path, biases + darks + flats)
        bias = records[biases[0]]
        assert (bias.observation_type, bias.exposure_time, bias.group) == ("bias", 0.0, "g1")  # type: ignore[attr-defined]
        assert bias.observation_reason == "test"  # type: ignore[attr-defined]
        assert bias.science_program == "CALIB"  # type: ignore[attr-defined]
        dark = records[darks[0]]
        assert (dark.observation_type, dark.exposure_time) == ("dark", 2.0)  # type: ignore[attr-defined]
        flat = records[flats[1]]
        assert (flat.observation_type, flat.exposure_time) == ("flat", 1.5)  # type: ignore[attr-defined]
        assert flat.physical_filter == "SDSSr_65mm~holo4_003"  # type: ignore[attr-defined]


async def test_invalid_filter_and_grating_name(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (_, domain), LATISS(domain) as latiss:
        with pytest.raises(sal.AckError, match="Unknown filter 'SDSSq'; valid filters: empty, SDSSg_65mm"):
            await latiss.setup_instrument(filter="SDSSq")
        with pytest.raises(sal.AckError, match="Unknown grating 'holo9'; valid gratings: empty"):
            await latiss.setup_instrument(grating="holo9")
        await latiss.setup_instrument(filter=2, linear_stage=20)
        reported = latiss.spectrograph.evt_reportedFilterPosition.get()
        assert reported is not None
        assert reported.name == "SDSSr_65mm"


async def test_image_rules(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (_, domain), LATISS(domain) as latiss:
        with pytest.raises(ValueError, match=r"below the 0\.1 s minimum"):
            await latiss.take_flats(0.05, 1)
        with pytest.raises(ValueError, match="Unknown image type 'SKY'"):
            await latiss.take_imgtype("SKY", 1.0, 1)
        # BIAS forces the exposure time to 0.
        ids = await latiss.take_imgtype("BIAS", 5.0, 1)
        assert len(ids) == 1


async def test_assert_all_enabled_lists_the_others(tmp_path: Path) -> None:
    async with running_observatory(tmp_path) as (observatory, domain), LATISS(domain) as latiss:
        spectrograph = observatory.components["ATSpectrograph"]
        await spectrograph.do_disable(None)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match=r"Setup: components not ENABLED: ATSpectrograph \(DISABLED\)"):
            await latiss.assert_all_enabled("Setup")
