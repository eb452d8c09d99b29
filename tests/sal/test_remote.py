"""Remote and its read topics as salobj's: defaults, start, callbacks, get_oldest."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lsst.ts.calibscripts import sal


async def test_telemetry_has_no_history_events_do() -> None:
    async with sal.Controller("Test", 4, write_only=True) as controller:
        await controller.evt_scalars.set_write(int0=1)
        await controller.tel_scalars.set_write(int0=2)
        async with sal.Remote(controller.domain, "Test", 4) as remote:
            assert remote.evt_scalars.get().int0 == 1
            assert remote.tel_scalars.get() is None
            assert remote.tel_scalars.max_history == 0
        async with sal.Remote(controller.domain, "Test", 4, tel_max_history=1) as with_history:
            assert with_history.tel_scalars.get().int0 == 2


async def test_start_false_has_no_start_task(domain: sal.Domain) -> None:
    remote = sal.Remote(domain, "Test", 4, start=False)
    assert not hasattr(remote, "start_task")
    assert not remote.start_called
    await remote.start()
    async with remote:
        assert remote.salinfo.started
    with pytest.raises(RuntimeError, match="Start already called"):
        await remote.start()


async def test_repr_include_exclude(domain: sal.Domain, caplog: pytest.LogCaptureFixture) -> None:
    remote = sal.Remote(domain, "Test", 4, include=["scalars", "noSuchTopic"], readonly=True)
    assert repr(remote) == "Remote(name=Test, index=4)"
    assert hasattr(remote, "evt_scalars") and hasattr(remote, "tel_scalars")
    assert not hasattr(remote, "evt_arrays") and not hasattr(remote, "cmd_setScalars")
    assert "noSuchTopic" in caplog.text  # ignored, as salobj does, with a warning
    with pytest.raises(ValueError, match="both include and exclude"):
        sal.Remote(domain, "Test", 4, include=["scalars"], exclude=["arrays"])
    await remote.close()


async def test_set_starts_from_fresh_data(domain: sal.Domain) -> None:
    remote = sal.Remote(domain, "Test", 4, start=False)
    remote.cmd_setScalars.set(int0=1, string0="a")
    remote.cmd_setScalars.set(double0=2.0)
    data = remote.cmd_setScalars.data
    assert (data.int0, data.string0, data.double0) == (0, "", 2.0)
    with pytest.raises(NotImplementedError, match="set_start"):
        await remote.cmd_setScalars.set_write(int0=1)


async def test_get_oldest_and_callbacks() -> None:
    async with sal.Controller("Test", 4, write_only=True) as controller:
        remote = sal.Remote(controller.domain, "Test", 4, evt_max_history=0)
        await remote.start_task
        for i in range(3):
            await controller.evt_scalars.set_write(int0=i)
        assert [remote.evt_scalars.get_oldest().int0 for _ in range(3)] == [0, 1, 2]
        assert remote.evt_scalars.get_oldest() is None

        started: list[int] = []
        release = asyncio.Event()

        async def slow(data: sal.BaseMessage) -> None:
            started.append(data.int0)
            await release.wait()

        remote.evt_scalars.callback = slow
        assert remote.evt_scalars.has_callback
        for name in ("get_oldest", "flush"):
            with pytest.raises(RuntimeError, match="callback"):
                getattr(remote.evt_scalars, name)()
        await controller.evt_scalars.set_write(int0=10)
        await controller.evt_scalars.set_write(int0=11)
        await asyncio.sleep(0.01)
        assert started == [10]  # one at a time
        remote.evt_scalars.callback = None
        started.clear()
        remote.evt_scalars.allow_multiple_callbacks = True
        remote.evt_scalars.callback = slow
        await controller.evt_scalars.set_write(int0=20)
        await controller.evt_scalars.set_write(int0=21)
        await asyncio.sleep(0.01)
        assert started == [20, 21]  # concurrently
        release.set()
        await remote.close()


async def test_failing_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with (
        sal.Controller("Test", 4, write_only=True) as controller,
        sal.Remote(controller.domain, "Test", 4, evt_max_history=0) as remote,
    ):
        done = asyncio.Event()

        async def callback(data: sal.BaseMessage) -> None:
            done.set()
            raise sal.ExpectedError("understood")

        remote.evt_scalars.callback = callback
        with caplog.at_level(logging.ERROR):
            await controller.evt_scalars.set_write(int0=1)
            await asyncio.wait_for(done.wait(), 2)
            await asyncio.sleep(0)
        assert "understood" in caplog.text and "Traceback" not in caplog.text
