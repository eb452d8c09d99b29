"""check_config and parse_schema: the page's CONFIG editor checked as the script checks it."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.calibrations import MakeLatissCalibrations
from lsst.ts.calibscripts.script.config_errors import ConfigProblem
from lsst.ts.calibscripts.script.sleep_script import SleepScript
from lsst.ts.calibscripts.ui.config_check import EffectiveOption, check_config, parse_schema
from lsst.ts.calibscripts.ui.queue_bridge import Subscription, Update

from ..calibrations import procedure_examples as examples


def test_a_script_without_schema_takes_no_configuration() -> None:
    assert parse_schema("  \n") is None
    assert check_config(None, "").valid
    assert check_config(None, "metadata: {note: x}\n").valid
    check = check_config(None, "n_bias: 3\n")
    assert check.problems == [ConfigProblem("this script takes no configuration; remove 'n_bias'")]


def test_every_problem_of_a_procedure_example_at_once() -> None:
    schema = MakeLatissCalibrations.get_schema()
    check = check_config(schema, examples.INTERNAL_VERIFICATION)
    assert [(p.line, p.option) for p in check.problems] == [
        (4, "certify_calib_begin_date"),
        (2, "calibration_collection"),
    ]
    # The rest of the PTC example is still read: only its '=' line is wrong for the schema
    # (its placeholders are refused by the script's configure, with this slip).
    check = check_config(schema, examples.PTC + "n_flatt: 3\n")
    assert [(p.line, p.option) for p in check.problems] == [(6, "generate_calibrations"), (12, "n_flatt")]
    assert "'generate_calibrations=True' is not valid configuration YAML" in check.problems[0].message


def test_an_unusable_schema_is_named() -> None:
    with pytest.raises(ValueError, match="configuration schema is not valid"):
        parse_schema("type: objekt\n")
    with pytest.raises(ValueError, match="not a mapping"):
        parse_schema("- a\n")


def test_options_follow_the_schema_order_with_their_source() -> None:
    check = check_config(SleepScript.get_schema(), "report:\n  level: ERROR\nsleep_time: 2\n")
    assert [option.option for option in check.options] == [
        "checkpoints",
        "sleep_time",
        "fail_run",
        "fail_cleanup",
        "report",
    ]
    assert check.options[1] == EffectiveOption("sleep_time", 2, "config")
    assert check.options[4] == EffectiveOption(
        "report", {"level": "ERROR", "prefix": "Reached checkpoint"}, "config"
    )


async def test_a_follower_that_falls_behind_is_ended_not_buffered_forever() -> None:
    subscription = Subscription(max_pending=2)
    for n in range(3):
        subscription.put(Update("log", {"seq": n}))
    assert subscription.overflowed and subscription.closed
    assert [await subscription.get() for _ in range(3)] == [
        Update("log", {"seq": 0}),
        Update("log", {"seq": 1}),
        None,
    ]
    assert await subscription.get() is None
