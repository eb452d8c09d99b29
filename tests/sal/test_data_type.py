"""Topic data as salobj's: ``DataType`` instances are mutable, with defaults, checked when written or sent."""

from __future__ import annotations

import copy
import math
from collections.abc import AsyncIterator

import numpy as np
import pydantic
import pytest

from lsst.ts.calibscripts import sal


@pytest.fixture
async def controller() -> AsyncIterator[sal.Controller]:
    async with sal.Controller("Test", 5) as controller:
        yield controller


@pytest.fixture
async def remote(controller: sal.Controller) -> AsyncIterator[sal.Remote]:
    async with sal.Remote(controller.domain, "Test", 5) as remote:
        yield remote


async def test_data_type_defaults_and_mutation(controller: sal.Controller) -> None:
    data = controller.evt_scalars.DataType()
    assert (data.boolean0, data.int0, data.double0, data.string0) == (False, 0, 0.0, "")
    assert controller.evt_arrays.DataType().int0 == [0] * 5
    data.int0 = 3
    data.string0 = "three"
    copied = copy.copy(data)
    copied.int0 = 4
    assert (data.int0, copied.int0) == (3, 4)
    assert vars(data)["string0"] == "three"
    assert set(vars(data)) >= {"salIndex", "private_sndStamp", "private_efdStamp", "private_revCode", "int0"}
    with pytest.raises(ValueError, match="no field"):
        data.int1 = 1


async def test_assigned_data_is_validated_when_written(
    controller: sal.Controller, remote: sal.Remote
) -> None:
    data = controller.evt_scalars.DataType()
    data.int0 = 7
    controller.evt_scalars.data = data
    assert controller.evt_scalars.has_data
    written = await controller.evt_scalars.write()
    assert written.int0 == 7 and written is not controller.evt_scalars.data
    assert written.private_revCode == controller.evt_scalars.rev_code != ""
    assert written.private_efdStamp == pytest.approx(written.private_sndStamp - 37)
    received = await remote.evt_scalars.next(flush=False, timeout=2)
    assert received.int0 == 7
    controller.evt_scalars.data.int0 = "seven"
    with pytest.raises(pydantic.ValidationError, match="int0"):
        await controller.evt_scalars.write()
    assert remote.evt_scalars.nqueued == 0
    with pytest.raises(TypeError, match="must be an instance"):
        controller.evt_scalars.data = remote.evt_arrays.DataType()


async def test_set_semantics(controller: sal.Controller) -> None:
    topic = controller.evt_scalars
    assert topic.set(int0=1)  # the first set is a change
    assert not topic.set(int0=1)
    assert not topic.set(int0=None)  # None keeps the value
    assert topic.data.int0 == 1
    assert topic.set(double0=math.nan)
    assert not topic.set(double0=math.nan)  # NaN equals NaN
    with pytest.raises(AttributeError, match=r"no fields \['nope'\]"):
        topic.set(nope=1)
    with pytest.raises(pydantic.ValidationError):
        topic.set(int0="x", string0="kept?")
    assert (topic.data.int0, topic.data.string0) == (1, "")  # nothing changed
    # numpy values become Python values.
    topic.set(int0=np.int32(4), double0=np.float64(0.5))
    assert type(topic.data.int0) is int and topic.data.int0 == 4
    controller.evt_arrays.set(double0=np.arange(5.0), int0=(1, 2, 3, 4, 5))
    assert controller.evt_arrays.data.double0 == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert controller.evt_arrays.data.int0 == [1, 2, 3, 4, 5]


async def test_events_written_when_changed_telemetry_always(controller: sal.Controller) -> None:
    first = await controller.evt_scalars.set_write(int0=1)
    again = await controller.evt_scalars.set_write(int0=1)
    forced = await controller.evt_scalars.set_write(int0=1, force_output=True)
    assert (first.was_written, again.was_written, forced.was_written) == (True, False, True)
    assert (first.did_change, again.did_change) == (True, False)
    assert (await controller.tel_scalars.set_write(int0=1)).was_written
    assert (await controller.tel_scalars.set_write(int0=1)).was_written


async def test_command_data_validated_when_sent(controller: sal.Controller, remote: sal.Remote) -> None:
    data = remote.cmd_setScalars.DataType()
    data.float0 = "not a float"
    with pytest.raises(pydantic.ValidationError, match="float0"):
        await remote.cmd_setScalars.start(data, timeout=1)
    assert controller.cmd_setScalars.nqueued == 0
    with pytest.raises(TypeError, match="must be an instance"):
        await remote.cmd_setScalars.start(remote.cmd_setArrays.DataType(), timeout=1)


async def test_each_reader_gets_its_own_copy(controller: sal.Controller, remote: sal.Remote) -> None:
    async with sal.Remote(controller.domain, "Test", 5) as other:
        await controller.evt_arrays.set_write(int0=[1, 2, 3, 4, 5])
        mine = await remote.evt_arrays.next(flush=False, timeout=2)
        mine.int0[0] = 99
        theirs = await other.evt_arrays.next(flush=False, timeout=2)
        assert theirs.int0 == [1, 2, 3, 4, 5]
        async with sal.Remote(controller.domain, "Test", 5) as late:
            assert late.evt_arrays.get().int0 == [1, 2, 3, 4, 5]
