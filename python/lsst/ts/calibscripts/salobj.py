"""The ``lsst.ts.salobj`` names that scripts, CSCs and their tests use.

Port code written for Rubin's ts_salobj by changing ``from lsst.ts import
salobj`` to ``from lsst.ts.calibscripts import salobj`` (and ``from
lsst.ts import utils`` to ``from lsst.ts.calibscripts import utils``); the
names below then behave as salobj's. ``doc/sal-kernel.rst`` lists the
differences that remain, each with its reason.
"""

from __future__ import annotations

__all__ = [
    "LOCAL_HOST",
    "MAX_SAL_INDEX",
    "AckCmdDataType",
    "AckError",
    "AckTimeoutError",
    "BaseCsc",
    "BaseCscTestCase",
    "BaseMsgType",
    "BaseScript",
    "Controller",
    "DefaultingValidator",
    "Domain",
    "ExpectedError",
    "Remote",
    "SalInfo",
    "SalLogHandler",
    "SalRetCode",
    "SetWriteResult",
    "State",
    "TestScript",
    "WildcardIndexError",
    "as_salRetCode",
    "as_state",
    "assertRaisesAckError",
    "assertRaisesAckTimeoutError",
    "get_expected_summary_states",
    "get_user_host",
    "make_mock_write_topics",
    "make_state_transition_dict",
    "name_to_name_index",
    "set_random_lsst_dds_partition_prefix",
    "set_summary_state",
    "set_test_topic_subname",
    "topics",
]

from .sal import (
    LOCAL_HOST,
    MAX_SAL_INDEX,
    AckCmdDataType,
    AckError,
    AckTimeoutError,
    BaseCsc,
    BaseCscTestCase,
    BaseMsgType,
    Controller,
    Domain,
    ExpectedError,
    Remote,
    SalInfo,
    SalLogHandler,
    SalRetCode,
    SetWriteResult,
    State,
    WildcardIndexError,
    as_salRetCode,
    as_state,
    assertRaisesAckError,
    assertRaisesAckTimeoutError,
    get_expected_summary_states,
    get_user_host,
    make_mock_write_topics,
    make_state_transition_dict,
    name_to_name_index,
    set_random_lsst_dds_partition_prefix,
    set_summary_state,
    set_test_topic_subname,
    topics,
)
from .script import BaseScript, DefaultingValidator, TestScript
