"""Image types, observation ids and exposure ids, shared by control and cp."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.observations import (
    IMAGE_TYPES,
    SHUTTER_CLOSED_IMAGE_TYPES,
    exposure_id,
    exposure_id_from_obs_id,
    obs_id,
)


def test_exposure_id_from_obs_id() -> None:
    assert exposure_id_from_obs_id("AT_O_20220929_000001") == 2022092900001
    assert exposure_id_from_obs_id("CC_O_20241020_000123") == 2024102000123
    with pytest.raises(ValueError, match="not of the form"):
        exposure_id_from_obs_id("AT-O-20220929-1")
    with pytest.raises(ValueError, match="max 99999"):
        exposure_id_from_obs_id("AT_O_20220929_100000")


@pytest.mark.parametrize(("day_obs", "seq_num"), [(20220929, 1), (20261204, 99999), (20000101, 12345)])
def test_obs_id_and_exposure_id_agree(day_obs: int, seq_num: int) -> None:
    name = obs_id("AT", day_obs, seq_num)
    assert name == f"AT_O_{day_obs}_{seq_num:06d}"
    assert exposure_id_from_obs_id(name) == exposure_id(day_obs, seq_num) == day_obs * 100_000 + seq_num


@pytest.mark.parametrize("seq_num", [0, 100_000, -1])
def test_exposure_id_needs_a_five_digit_sequence_number(seq_num: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.99999"):
        exposure_id(20220929, seq_num)


def test_image_types() -> None:
    assert {"BIAS", "DARK", "FLAT"} <= set(IMAGE_TYPES)
    assert {"BIAS", "DARK"} == SHUTTER_CLOSED_IMAGE_TYPES
