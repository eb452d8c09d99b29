"""ScriptView: what the page shows of one script, merged from the events that describe it."""

from __future__ import annotations

__all__ = ["ScriptView"]

import dataclasses
from typing import Any

from ..queue.script_info import TIMESTAMP_EVENT_FIELDS
from ..sal import BaseMessage, ScriptProcessState, ScriptState


@dataclasses.dataclass
class ScriptView:
    """One script as the page shows it.

    The ScriptQueue's ``script`` event says where the script is in its life
    (process state, timestamps); the script's own ``state``, ``metadata``
    and ``description`` events say what it is doing (last checkpoint,
    reason), how long it should take and what it is. Each ``update_from_*``
    method merges one of them; the most recent news wins.

    Attributes
    ----------
    salIndex : `int`
        SAL index of the script.
    path : `str`
        Path relative to its scripts directory (blank until the queue says).
    isStandard : `bool`
        Standard (else external) script?
    processState : `ScriptProcessState`
        The queue's view of the script's process.
    scriptState : `ScriptState`
        The script's own state.
    timestampProcessStart, timestampConfigureStart, timestampConfigureEnd, \
timestampRunStart, timestampProcessEnd : `float`
        TAI times (unix seconds) of the script's milestones; 0 until reached.
    lastCheckpoint : `str`
        The most recent checkpoint passed.
    numCheckpoints : `int`
        Checkpoints passed.
    totalCheckpoints : `int`
        Checkpoints expected (metadata), 0 if unknown.
    reason : `str`
        Why the script is in its state (e.g. why it failed).
    duration : `float`
        Estimated run duration (s) from the script's metadata; 0 if unknown.
    classname, description, remotes : `str`
        What the script is (its ``description`` event).
    """

    salIndex: int
    path: str = ""
    isStandard: bool = True
    processState: ScriptProcessState = ScriptProcessState.UNKNOWN
    scriptState: ScriptState = ScriptState.UNKNOWN
    timestampProcessStart: float = 0.0
    timestampConfigureStart: float = 0.0
    timestampConfigureEnd: float = 0.0
    timestampRunStart: float = 0.0
    timestampProcessEnd: float = 0.0
    lastCheckpoint: str = ""
    numCheckpoints: int = 0
    totalCheckpoints: int = 0
    reason: str = ""
    duration: float = 0.0
    classname: str = ""
    description: str = ""
    remotes: str = ""

    def update_from_queue(self, data: BaseMessage) -> None:
        """Merge a ScriptQueue ``script`` event."""
        self.path = data.path
        self.isStandard = data.isStandard
        self.processState = _enum_or_unknown(ScriptProcessState, data.processState)
        self.scriptState = _enum_or_unknown(ScriptState, data.scriptState)
        # Named as in the event, so that the page reads the queue's own names.
        for name in TIMESTAMP_EVENT_FIELDS:
            setattr(self, name, getattr(data, name))

    def update_from_state(self, data: BaseMessage) -> None:
        """Merge a Script ``state`` event."""
        self.scriptState = _enum_or_unknown(ScriptState, data.state)
        self.lastCheckpoint = data.lastCheckpoint
        self.numCheckpoints = data.numCheckpoints
        if data.reason or self.scriptState.is_terminal:
            self.reason = data.reason

    def update_from_metadata(self, data: BaseMessage) -> None:
        """Merge a Script ``metadata`` event."""
        self.duration = data.duration
        self.totalCheckpoints = data.totalCheckpoints

    def update_from_description(self, data: BaseMessage) -> None:
        """Merge a Script ``description`` event."""
        self.classname = data.classname
        self.description = data.description
        self.remotes = data.remotes

    def to_json(self) -> dict[str, Any]:
        """Return the view as JSON-compatible data (states by name)."""
        result = dataclasses.asdict(self)
        result["processState"] = self.processState.name
        result["scriptState"] = self.scriptState.name
        return result


def _enum_or_unknown[E: (ScriptProcessState, ScriptState)](enum_type: type[E], value: int) -> E:
    """Return ``enum_type(value)``, or its UNKNOWN member for a value it does not define."""
    try:
        return enum_type(value)
    except ValueError:
        return enum_type(0)
