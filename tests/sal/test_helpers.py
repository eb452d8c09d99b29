"""salobj's helpers: component names, state transitions, test assertions, mock write topics."""

from __future__ import annotations

import os

import pytest

from lsst.ts.calibscripts import sal
from lsst.ts.calibscripts.sal import SalRetCode, State


def test_name_to_name_index() -> None:
    assert sal.name_to_name_index("Script") == ("Script", 0)
    assert sal.name_to_name_index("Script:15") == ("Script", 15)
    for bad in (" Script:15", "Script:15 ", "Script:", "Script:zero"):
        with pytest.raises(ValueError, match="is not of the form"):
            sal.name_to_name_index(bad)
    with pytest.raises(sal.WildcardIndexError, match="wildcard"):
        sal.name_to_name_index("Script:*")
    assert sal.MAX_SAL_INDEX == 2**31 - 1
    assert "@" in sal.get_user_host()


def test_state_transitions() -> None:
    transitions = sal.make_state_transition_dict()
    assert transitions[State.STANDBY, State.ENABLED] == [("start", State.DISABLED), ("enable", State.ENABLED)]
    assert transitions[State.ENABLED, State.OFFLINE] == [
        ("disable", State.DISABLED),
        ("standby", State.STANDBY),
        ("exitControl", State.OFFLINE),
    ]
    assert transitions[State.FAULT, State.STANDBY] == [("standby", State.STANDBY)]
    assert transitions[State.OFFLINE, State.STANDBY] == [("enterControl", State.STANDBY)]
    assert transitions[State.DISABLED, State.DISABLED] == []
    assert sal.get_expected_summary_states(State.FAULT, State.DISABLED) == [
        State.FAULT,
        State.STANDBY,
        State.DISABLED,
    ]


def test_assert_raises_ack_error() -> None:
    model = sal.message_model(sal.ComponentInterface.load("Test").ackcmd)
    failed = model(ack=SalRetCode.CMD_FAILED, error=2, result="Failed: broken")
    with sal.assertRaisesAckError(ack=SalRetCode.CMD_FAILED, error=2, result_contains="broken"):
        raise sal.AckError("failed", failed)
    with (
        pytest.raises(AssertionError, match="instead of -303"),
        sal.assertRaisesAckError(ack=SalRetCode.CMD_ABORTED),
    ):
        raise sal.AckError("failed", failed)
    with pytest.raises(AssertionError, match="AckError not raised"), sal.assertRaisesAckError():
        pass
    with sal.assertRaisesAckTimeoutError(ack=SalRetCode.CMD_NOACK):
        raise sal.AckTimeoutError("timed out", model(ack=SalRetCode.CMD_NOACK))
    with pytest.raises(sal.AckError), sal.assertRaisesAckTimeoutError():
        raise sal.AckError("not a timeout", failed)
    assert str(sal.AckError("msg", failed)).startswith(
        "msg='msg', ackcmd=(ackcmd private_seqNum=0, ack=<SalRetCode"
    )


def test_set_test_topic_subname(monkeypatch: pytest.MonkeyPatch) -> None:
    sal.set_test_topic_subname()
    first = os.environ["LSST_TOPIC_SUBNAME"]
    sal.set_test_topic_subname()
    assert os.environ["LSST_TOPIC_SUBNAME"] == first  # from the process id
    sal.set_test_topic_subname(randomize=True)
    assert os.environ["LSST_TOPIC_SUBNAME"] != first
    assert "-" not in first and "=" not in first


async def test_make_mock_write_topics() -> None:
    async with sal.make_mock_write_topics("Test", ["evt_scalars", "tel_arrays"]) as topics:
        await topics.evt_scalars.set_write(int0=3)
        await topics.evt_scalars.set_write(int0=3)  # unchanged event: not written
        await topics.tel_arrays.set_write(int0=[1, 2, 3, 4, 5])
        assert [data.int0 for data in topics.evt_scalars.data_list] == [3]
        assert topics.evt_scalars.data_list[0].salIndex == 1  # indexed: index 1
        assert topics.tel_arrays.data_list[0].int0 == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="one or more"):
        async with sal.make_mock_write_topics("Test", []):
            pass
