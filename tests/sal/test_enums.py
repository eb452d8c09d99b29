"""The enumerations keep Rubin's names and values exactly."""

from lsst.ts.calibscripts.sal import (
    Location,
    MetadataCoordSys,
    MetadataDome,
    MetadataRotSys,
    SalIndex,
    SalRetCode,
    ScriptProcessState,
    ScriptState,
    State,
    as_salRetCode,
    as_state,
)


def test_state_values() -> None:
    assert {s.name: s.value for s in State} == {
        "DISABLED": 1,
        "ENABLED": 2,
        "FAULT": 3,
        "OFFLINE": 4,
        "STANDBY": 5,
    }


def test_sal_ret_code_values() -> None:
    commands = {c.name: c.value for c in SalRetCode if c.name.startswith("CMD_")}
    assert commands == {
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
    # ts_xml's other SAL return codes are there too.
    assert (SalRetCode.OK, SalRetCode.ERROR, SalRetCode.EVENT_ABORT) == (0, -1, -202)
    assert not SalRetCode.CMD_INPROGRESS.is_final
    assert SalRetCode.CMD_COMPLETE.is_final and not SalRetCode.CMD_COMPLETE.is_failure
    assert SalRetCode.CMD_TIMEOUT.is_final and SalRetCode.CMD_TIMEOUT.is_failure
    # As in salobj, a stalled command is over, and failed.
    assert SalRetCode.CMD_STALLED.is_final and SalRetCode.CMD_STALLED.is_failure


def test_as_enum_keeps_unknown_values() -> None:
    assert as_salRetCode(-302) is SalRetCode.CMD_FAILED
    assert as_salRetCode(12345) == 12345
    assert as_state(2) is State.ENABLED
    assert as_state(99) == 99


def test_script_metadata_and_queue_index_enums() -> None:
    assert (MetadataCoordSys.NONE, MetadataRotSys.NONE, MetadataDome.EITHER) == (1, 1, 3)
    assert [(s.name, s.value) for s in MetadataCoordSys] == [
        ("NONE", 1),
        ("ICRS", 2),
        ("OBSERVED", 3),
        ("MOUNT", 4),
    ]
    assert [(s.name, s.value) for s in MetadataRotSys] == [
        ("NONE", 1),
        ("SKY", 2),
        ("HORIZON", 3),
        ("MOUNT", 4),
    ]
    assert [(s.name, s.value) for s in MetadataDome] == [("CLOSED", 1), ("OPEN", 2), ("EITHER", 3)]
    assert [(s.name, s.value) for s in SalIndex] == [("MAIN_TEL", 1), ("AUX_TEL", 2), ("OCS", 3)]


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
