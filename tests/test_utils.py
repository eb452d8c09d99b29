"""The utils namespace: ts_utils' names and behaviour."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from lsst.ts.calibscripts import utils


def test_index_generator() -> None:
    generator = utils.index_generator(imin=3, imax=5, i0=4)
    assert [next(generator) for _ in range(5)] == [4, 5, 3, 4, 5]
    assert next(utils.index_generator()) == 1
    with pytest.raises(ValueError, match="must be less than"):
        utils.index_generator(imin=5, imax=5)
    with pytest.raises(ValueError, match="i0=9"):
        utils.index_generator(imin=1, imax=5, i0=9)  # raised at once, not at next()


async def test_make_done_future() -> None:
    future = utils.make_done_future()
    assert future.done() and future.result() is None
    await asyncio.wait_for(future, 0.1)


def test_tai() -> None:
    assert utils.current_tai() - time.time() == pytest.approx(37, abs=0.1)
    assert utils.tai_from_utc(1_700_000_000.0) == 1_700_000_037.0
    assert utils.tai_from_utc("2020-01-01T00:00:00", format="isot") == pytest.approx(1577836837.0)
    assert utils.utc_from_tai_unix(1_700_000_037.0) == 1_700_000_000.0
    # Before the 2017 leap second TAI - UTC was 36 s.
    assert utils.tai_from_utc_unix(1_400_000_000.0) == pytest.approx(1_400_000_035.0)
    assert utils.utc_from_tai_unix(1_400_000_035.0) == pytest.approx(1_400_000_000.0)
    assert utils.astropy_time_from_tai_unix(1_700_000_037.0).utc.unix == pytest.approx(1_700_000_000.0)


def test_angles() -> None:
    assert utils.angle_diff(10, 350).deg == pytest.approx(20)
    assert utils.angle_wrap_center(190).deg == pytest.approx(-170)
    assert utils.angle_wrap_nonnegative(-10).deg == pytest.approx(350)
    utils.assert_angles_almost_equal(359.999999, -0.000001)
    with pytest.raises(AssertionError, match="differ"):
        utils.assert_angles_almost_equal(1, 2)


def test_modify_environ() -> None:
    os.environ["CALIBSCRIPTS_TEST_A"] = "a"
    try:
        with utils.modify_environ(CALIBSCRIPTS_TEST_A=None, CALIBSCRIPTS_TEST_B="b"):
            assert "CALIBSCRIPTS_TEST_A" not in os.environ
            assert os.environ["CALIBSCRIPTS_TEST_B"] == "b"
        assert os.environ["CALIBSCRIPTS_TEST_A"] == "a"
        assert "CALIBSCRIPTS_TEST_B" not in os.environ
        with pytest.raises(RuntimeError, match="str or None"), utils.modify_environ(CALIBSCRIPTS_TEST_A=1):  # type: ignore[arg-type]
            pass
    finally:
        del os.environ["CALIBSCRIPTS_TEST_A"]
