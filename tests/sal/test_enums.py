"""The enumerations keep Rubin's names and values exactly."""

from lsst.ts.calibscripts.sal import Location, SalRetCode, ScriptProcessState, ScriptState, State


def test_state_values() -> None:
    assert {s.name: s.value for s in State} == {
        "DISABLED": 1,
        "ENABLED": 2,
        "FAULT": 3,
        "OFFLINE": 4,
        "STANDBY": 5,
    }


def test_sal_ret_code_values() -> None:
    assert {c.name: c.value for c in SalRetCode} == {
        "CMD_ACK": 300,
        "CMD_INPROGRESS": 301,
        "CMD_STALLED": 302,
        "CMD_COMPLETE": 303,
        "CMD_NOPERM": -300,
        "CMD_NOACK": -301,
        "CMD_FAILED": -302,
        "CMD_ABORTED": -303,
        "CMD_TIMEOUT": -304,
    }
    assert not SalRetCode.CMD_INPROGRESS.is_final
    assert SalRetCode.CMD_COMPLETE.is_final and not SalRetCode.CMD_COMPLETE.is_failure
    assert SalRetCode.CMD_TIMEOUT.is_final and SalRetCode.CMD_TIMEOUT.is_failure


def test_script_state_values() -> None:
    names = [
        "UNKNOWN",
        "UNCONFIGURED",
        "CONFIGURED",
        "RUNNING",
        "PAUSED",
        "ENDING",
        "STOPPING",
        "FAILING",
        "DONE",
        "STOPPED",
        "FAILED",
        "CONFIGURE_FAILED",
    ]
    assert [s.name for s in ScriptState] == names
    assert [s.value for s in ScriptState] == list(range(12))


def test_script_process_state_and_location() -> None:
    assert [(s.name, s.value) for s in ScriptProcessState] == [
        ("UNKNOWN", 0),
        ("LOADING", 1),
        ("CONFIGURED", 2),
        ("RUNNING", 3),
        ("DONE", 4),
        ("LOADFAILED", 5),
        ("CONFIGURE_FAILED", 6),
        ("TERMINATED", 7),
    ]
    assert [(s.name, s.value) for s in Location] == [("FIRST", 1), ("LAST", 2), ("BEFORE", 3), ("AFTER", 4)]
