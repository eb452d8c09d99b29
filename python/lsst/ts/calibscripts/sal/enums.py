"""Enumerations shared with Rubin's SAL interfaces (ts_xml / ts_idl).

Names and values are kept exactly as Rubin defines them so that code written
against this package reads like code written against ``lsst.ts.salobj`` and
``lsst.ts.xml.enums``.
"""

__all__ = [
    "Location",
    "LogLevel",
    "MetadataCoordSys",
    "MetadataDome",
    "MetadataRotSys",
    "SalIndex",
    "SalRetCode",
    "ScriptProcessState",
    "ScriptQueueLocation",
    "ScriptState",
    "State",
    "as_salRetCode",
    "as_state",
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
    """SAL return codes; ``CMD_*`` are the ``ack`` values of ``ackcmd`` (ts_xml ``sal_enums``)."""

    OK = 0
    ERR = -1
    ERROR = -1
    ILLEGAL_REVCODE = -2
    TOO_MANY_HANDLES = -3
    NOT_DEFINED = -4
    STATE_DISABLED = 1
    STATE_ENABLED = 2
    STATE_FAULT = 3
    STATE_OFFLINE = 4
    STATE_STANDBY = 5
    TIMEOUT = -5
    SIGNAL_INTERRUPT = -6
    WAIT_FOR_NEXT_UPDATE = -10000
    WAIT_FOR_CHANGE = -10001
    NO_UPDATES = -100
    WAITING_FOR_NEXT = 100
    GOT_UPDATE = 101
    SYNC_IN = 102
    SYNC_OUT = 103
    SYNC_SET = 104
    SYNC_CLEAR = 105
    SYNC_READ = 106
    EVENT_INFO = 200
    EVENT_WARN = -200
    EVENT_ERROR = -201
    EVENT_ABORT = -202
    CMD_ACK = 300
    CMD_INPROGRESS = 301
    CMD_STALLED = 302
    CMD_COMPLETE = 303
    CMD_NOPERM = -300
    CMD_NOACK = -301
    CMD_FAILED = -302
    CMD_ABORTED = -303
    CMD_TIMEOUT = -304
    DATA_AVAIL = 400
    DEADLINE_MISS = 401
    INCOMPAT_QOS = 402
    SAMPLE_REJ = 403
    LIVELINESS_CHG = 404
    SAMPLELOST = 405
    SUBSCR_MATCH = 406

    @property
    def is_final(self) -> bool:
        """Is this the last acknowledgement a command receives?

        As in salobj, ``CMD_STALLED`` is final (and a failure).
        """
        return self in _FINAL_ACKS

    @property
    def is_failure(self) -> bool:
        """Does this acknowledgement report that the command failed?"""
        return self in _FAILED_ACKS


#: Acknowledgements that end a command (salobj's ``done_ack_codes``).
_FINAL_ACKS = frozenset(
    {
        SalRetCode.CMD_ABORTED,
        SalRetCode.CMD_COMPLETE,
        SalRetCode.CMD_FAILED,
        SalRetCode.CMD_NOACK,
        SalRetCode.CMD_NOPERM,
        SalRetCode.CMD_STALLED,
        SalRetCode.CMD_TIMEOUT,
    }
)
#: Acknowledgements that end a command with a failure (``failed_ack_codes``).
_FAILED_ACKS = _FINAL_ACKS - {SalRetCode.CMD_COMPLETE}


def as_salRetCode(value: int) -> int:
    """Return ``value`` as a `SalRetCode` if it is one, else unchanged."""
    try:
        return SalRetCode(value)
    except ValueError:
        return value


def as_state(value: int) -> int:
    """Return ``value`` as a `State` if it is one, else unchanged."""
    try:
        return State(value)
    except ValueError:
        return value


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
    CONFIGUREFAILED = 6  # ts_xml's deprecated alias of CONFIGURE_FAILED


class MetadataCoordSys(enum.IntEnum):
    """The Script ``metadata`` event's ``coordinateSystem`` (ts_xml ``enums.Script``)."""

    NONE = 1
    ICRS = 2
    OBSERVED = 3
    MOUNT = 4


class MetadataRotSys(enum.IntEnum):
    """The Script ``metadata`` event's ``rotationSystem``."""

    NONE = 1
    SKY = 2
    HORIZON = 3
    MOUNT = 4


class MetadataDome(enum.IntEnum):
    """The Script ``metadata`` event's ``dome``."""

    CLOSED = 1
    OPEN = 2
    EITHER = 3


class SalIndex(enum.IntEnum):
    """SAL index of each ScriptQueue (ts_xml ``enums.ScriptQueue.SalIndex``)."""

    MAIN_TEL = 1
    AUX_TEL = 2
    OCS = 3


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
