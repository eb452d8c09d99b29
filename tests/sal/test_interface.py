"""Interface definitions load, carry the generics and reject mistakes."""

from pathlib import Path

import pydantic
import pytest

from lsst.ts.calibscripts.sal import ComponentInterface, InterfaceDefinitionError, available_components
from lsst.ts.calibscripts.sal import interface as interface_module
from lsst.ts.calibscripts.sal.messages import message_model

REQUIRED = [
    "ATCamera",
    "ATHeaderService",
    "ATOODS",
    "ATSpectrograph",
    "CCCamera",
    "CCHeaderService",
    "CCOODS",
    "OCPS",
    "Script",
    "ScriptQueue",
    "Test",
]


def test_all_components_load() -> None:
    assert set(REQUIRED) <= set(available_components())
    for name in available_components():
        interface = ComponentInterface.load(name)
        assert interface.name == name
        for topic in (*interface.commands.values(), *interface.events.values()):
            message_model(topic)  # every topic makes a message class


@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "Script"])
def test_csc_generics(name: str) -> None:
    interface = ComponentInterface.load(name)
    for command in ("start", "enable", "disable", "standby", "exitControl", "setLogLevel"):
        assert command in interface.commands
    for event in ("summaryState", "heartbeat", "logLevel", "logMessage", "softwareVersions", "errorCode"):
        assert event in interface.events


def test_script_interface() -> None:
    script = ComponentInterface.load("Script")
    assert script.indexed
    assert set(script.commands) == {
        "configure",
        "run",
        "resume",
        "setCheckpoints",
        "setGroupId",
        "stop",
        "setLogLevel",
    }
    assert script.commands["configure"].field_names == (
        "config",
        "logLevel",
        "pauseCheckpoint",
        "stopCheckpoint",
        "blockId",
        "executionId",
    )
    assert "summaryState" not in script.events
    assert script.events["state"].sal_name == "logevent_state"
    assert script.ackcmd.field_names == ("ack", "error", "result", "identity", "origin", "cmdtype", "timeout")


def test_generics_as_in_ts_xml() -> None:
    test = ComponentInterface.load("Test")
    assert test.events["softwareVersions"].field_names == (
        "salVersion",
        "xmlVersion",
        "cscVersion",
        "subsystemVersions",
    )
    # ts_xml: "mandatory" always, plus the component's AddedGenerics.
    assert {"configurationApplied", "configurationsAvailable"} <= set(test.events)
    assert test.events["configurationApplied"].field_names == (
        "configurations",
        "version",
        "url",
        "schemaVersion",
        "otherInfo",
    )
    assert "largeFileObjectAvailable" not in test.events
    script = ComponentInterface.load("Script")
    assert {"largeFileObjectAvailable", "heartbeat", "logLevel", "logMessage", "softwareVersions"} <= set(
        script.events
    )
    assert "errorCode" not in script.events
    for camera in ("ATCamera", "CCCamera"):
        interface = ComponentInterface.load(camera)
        assert "enterControl" in interface.commands
        assert {"largeFileObjectAvailable", "configurationApplied"} <= set(interface.events)
    assert "configurationApplied" not in ComponentInterface.load("ScriptQueue").events
    lfoa = script.events["largeFileObjectAvailable"]
    assert lfoa.field_names == ("url", "generator", "version", "byteSize", "checkSum", "mimeType", "id")


def test_clock_offset_and_status_code_can_be_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: Added\nindexed: false\ngenerics: [csc, clockOffset, statusCode]\n"
    interface = load_from(tmp_path, monkeypatch, "Added", text)
    assert interface.events["clockOffset"].field_names == ("offset",)
    assert interface.events["statusCode"].field_names == ("mask",)
    assert "configurationApplied" not in interface.events


def test_script_state_fields() -> None:
    script = ComponentInterface.load("Script")
    assert script.events["state"].field_names == (
        "state",
        "reason",
        "groupId",
        "lastCheckpoint",
        "numCheckpoints",
        "blockId",
        "dayObs",
        "blockExecution",
        "executionId",
    )


def test_test_component() -> None:
    test = ComponentInterface.load("Test")
    assert test.indexed
    assert {"setScalars", "setArrays", "fault", "wait"} <= set(test.commands)
    assert set(test.telemetry) == {"scalars", "arrays"}
    scalars = test.commands["setScalars"].field_names
    assert scalars[0] == "boolean0" and scalars[-1] == "string0" and len(scalars) == 11
    arrays = {field.name: field.count for field in test.events["arrays"].fields}
    assert "string0" not in arrays and set(arrays.values()) == {5}


def test_topic_names_follow_rubin() -> None:
    ocps = ComponentInterface.load("OCPS")
    assert ocps.commands["execute"].sal_name == "command_execute"
    assert ocps.commands["execute"].attr_name == "cmd_execute"
    assert ocps.events["job_result"].attr_name == "evt_job_result"
    assert ocps.commands["execute"].field_names == (
        "pipeline",
        "version",
        "config",
        "data_query",
        "prereq_jobs",
        "output_dataset_types",
    )


def test_message_rejects_unknown_field_and_wrong_type() -> None:
    model = message_model(ComponentInterface.load("ATCamera").commands["takeImages"])
    assert model(numImages=1, expTime=0.0).numImages == 1
    with pytest.raises(pydantic.ValidationError, match="numimages"):
        model(numimages=1)
    with pytest.raises(pydantic.ValidationError, match="numImages"):
        model(numImages="one")


def test_unknown_component() -> None:
    with pytest.raises(ValueError, match="No interface definition for component 'NoSuch'"):
        ComponentInterface.load("NoSuch")


def load_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> ComponentInterface:
    """Load one interface file written in a temporary schemas directory."""
    (tmp_path / "interfaces").mkdir()
    source = interface_module.schemas_dir() / "interfaces" / "generics.yaml"
    (tmp_path / "interfaces" / "generics.yaml").write_text(source.read_text())
    (tmp_path / "interfaces" / f"{name}.yaml").write_text(text)
    monkeypatch.setattr(interface_module, "schemas_dir", lambda: tmp_path)
    interface_module._load_generics.cache_clear()
    try:
        return ComponentInterface.load.__wrapped__(ComponentInterface, name)  # type: ignore[no-any-return]
    finally:
        interface_module._load_generics.cache_clear()


def test_malformed_definition_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: Broken\nevents:\n  thing:\n    fields:\n      x: {type: integer}\n"
    with pytest.raises(InterfaceDefinitionError, match=r"Broken\.yaml"):
        load_from(tmp_path, monkeypatch, "Broken", text)


def test_private_field_names_are_reserved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: Clash\ncommands:\n  move:\n    fields:\n      salIndex: {type: int}\n"
    with pytest.raises(InterfaceDefinitionError, match=r"Clash\.move defines \['salIndex'\]"):
        load_from(tmp_path, monkeypatch, "Clash", text)
