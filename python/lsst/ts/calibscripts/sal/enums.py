"""Enumerations shared with Rubin's SAL interfaces (ts_xml / ts_idl).

Names and values are kept exactly as Rubin defines them so that code written
against this package reads like code written against ``lsst.ts.salobj`` and
``lsst.ts.xml.enums``.
"""

__all__ = [
    "Location",
    "LogLevel",
    "SalRetCode",
    "ScriptProcessState",
    "ScriptQueueLocation",
    "ScriptState",
    "State",
]

import enum
import logging


class State(enum.IntEnum):
    """Summary state of a Commandable SAL Component (CSC)."""

    DISABLED = 1
    ENABLED = 2
    FAULT = 3
    OFFLINE = 4
    STANDBY = 5


class SalRetCode(enum.IntEnum):
    """Command acknowledgement codes (the ``ack`` field of ``ackcmd``)."""

    CMD_ACK = 300
    CMD_INPROGRESS = 301
    CMD_STALLED = 302
    CMD_COMPLETE = 303
    CMD_NOPERM = -300
    CMD_NOACK = -301
    CMD_FAILED = -302
    CMD_ABORTED = -303
    CMD_TIMEOUT = -304

    @property
    def is_final(self) -> bool:
        """Is this the last acknowledgement a command receives?"""
        return self not in _NON_FINAL_ACKS

    @property
    def is_failure(self) -> bool:
        """Does this acknowledgement report that the command failed?"""
        return self < 0


_NON_FINAL_ACKS = frozenset({SalRetCode.CMD_ACK, SalRetCode.CMD_INPROGRESS, SalRetCode.CMD_STALLED})


class ScriptState(enum.IntEnum):
    """State of a SAL script (the ``state`` field of ``Script`` ``evt_state``)."""

    UNKNOWN = 0
    UNCONFIGURED = 1
    CONFIGURED = 2
    RUNNING = 3
    PAUSED = 4
    ENDING = 5
    STOPPING = 6
    FAILING = 7
    DONE = 8
    STOPPED = 9
    FAILED = 10
    CONFIGURE_FAILED = 11

    @property
    def is_terminal(self) -> bool:
        """Is this a final state, after which the script process exits?"""
        return self in _TERMINAL_SCRIPT_STATES


_TERMINAL_SCRIPT_STATES = frozenset(
    {ScriptState.DONE, ScriptState.STOPPED, ScriptState.FAILED, ScriptState.CONFIGURE_FAILED}
)


class ScriptProcessState(enum.IntEnum):
    """State of a script's process, as seen by the ScriptQueue."""

    UNKNOWN = 0
    LOADING = 1
    CONFIGURED = 2
    RUNNING = 3
    DONE = 4
    LOADFAILED = 5
    CONFIGURE_FAILED = 6
    TERMINATED = 7


class Location(enum.IntEnum):
    """Where the ScriptQueue ``add`` and ``move`` commands put a script."""

    FIRST = 1
    LAST = 2
    BEFORE = 3
    AFTER = 4


# ts_xml's name for the same enumeration.
ScriptQueueLocation = Location


class LogLevel(enum.IntEnum):
    """Python logging levels, as carried by ``logMessage`` and ``logLevel``."""

    TRACE = 5
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL
