"""SalInfo and Domain as salobj's: names, acknowledgements, start and close."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import SalRetCode


async def test_topic_names_are_sorted(domain: sal.Domain) -> None:
    async with sal.SalInfo(domain, "Test", 1) as salinfo:
        assert salinfo.command_names == tuple(sorted(salinfo.command_names))
        assert {"setScalars", "setArrays", "fault", "wait", "start", "setLogLevel"} <= set(
            salinfo.command_names
        )
        assert "scalars" in salinfo.event_names and salinfo.telemetry_names == ("arrays", "scalars")
        assert salinfo.sal_topic_names == sorted(salinfo.sal_topic_names)
        assert "ackcmd" in salinfo.sal_topic_names
        assert (salinfo.name_index, salinfo.indexed, repr(salinfo)) == ("Test:1", True, "SalInfo(Test, 1)")


async def test_make_ackcmd(domain: sal.Domain) -> None:
    salinfo = sal.SalInfo(domain, "Test", 1)
    ackcmd = salinfo.make_ackcmd(private_seqNum=5, ack=SalRetCode.CMD_INPROGRESS, result="later", timeout=3)
    assert isinstance(ackcmd, salinfo.AckCmdType)
    assert (ackcmd.private_seqNum, ackcmd.ack, ackcmd.error, ackcmd.result, ackcmd.timeout) == (
        5,
        301,
        0,
        "later",
        3.0,
    )
    await salinfo.close()


async def test_start_and_close(domain: sal.Domain) -> None:
    salinfo = sal.SalInfo(domain, "Test", 1)
    assert not salinfo.start_called and not salinfo.started
    with pytest.raises(RuntimeError, match="Not started"):
        salinfo.assert_running()
    await salinfo.start()
    assert salinfo.started and salinfo.running and salinfo.start_task.done()
    with pytest.raises(RuntimeError, match="Cannot add topics after start"):
        sal.topics.RemoteEvent(salinfo, "scalars")
    assert salinfo in domain.salinfo_set
    await salinfo.close()
    assert not salinfo.isopen and salinfo.done_task.done()
    assert salinfo not in domain.salinfo_set
    with pytest.raises(RuntimeError, match="Start already called"):
        await salinfo.start()
    closed = sal.SalInfo(domain, "Test", 2)
    await closed.close()
    with pytest.raises(RuntimeError, match="Already closing or closed"):
        await closed.start()


async def test_argument_checks(domain: sal.Domain) -> None:
    with pytest.raises(ValueError, match="not an indexed SAL component"):
        sal.SalInfo(domain, "ATCamera", 1)
    with pytest.raises(TypeError, match="must be a Domain"):
        sal.SalInfo("not a domain", "Test", 1)  # type: ignore[arg-type]
    write_only = sal.SalInfo(domain, "Test", 1, write_only=True)
    with pytest.raises(RuntimeError, match="write-only"):
        sal.topics.RemoteEvent(write_only, "scalars")


async def test_domain_closes_its_salinfos() -> None:
    domain = sal.Domain()
    remote = sal.Remote(domain, "Test", 1)
    await remote.start_task
    await domain.close()
    assert not remote.salinfo.isopen and not domain.isopen
    await domain.close()  # again: no error
    assert domain.done_task.done()
