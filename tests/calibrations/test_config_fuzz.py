"""Property-based fuzzing of configure: every input is accepted or refused with its line or option.

Inputs are built from the scripts' own option names with values of every
YAML type (NaN, infinity, huge numbers, injection strings, bad dates, nested
lists and mappings), plus raw text with YAML syntax fragments. For each, the
script must end CONFIGURED, or CONFIGURE_FAILED with a `ConfigError` (never
a bare exception) whose message names a line, an option, or the
configuration as a whole. The page's live check (`check_config`) must agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsst.ts.calibscripts.calibrations import MakeComCamBias, MakeLatissCalibrations
from lsst.ts.calibscripts.sal import ExpectedError, ScriptState
from lsst.ts.calibscripts.sal.messages import message_model
from lsst.ts.calibscripts.script import ConfigError
from lsst.ts.calibscripts.ui.config_check import check_config

ScriptClass = type[MakeLatissCalibrations] | type[MakeComCamBias]
SCRIPTS: list[ScriptClass] = [MakeLatissCalibrations, MakeComCamBias]

NASTY_STRINGS = [
    "-c isr:doDefect=False --summary /repo/gen3.sqlite3",
    "-C isr:/tmp/evil.py",
    "-ou/ocps/0 --replace-run --prune-replaced=purge",
    "-o=X",
    "-bX",
    "-c 'isr:doDefect=False",
    "2050-13-45",
    "2030-01-01 garbage",
    "2021-07-15",
    "2021-07-15T12:00:00",
    "../../etc/passwd",
    "LATISS/calib",
    "a b, c",
    "\x00",
    "BIAS",
    "",
    "x" * 5000,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


def plausible(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of roughly the type an option expects, around and past its bounds."""
    if "anyOf" in schema:
        return st.one_of([plausible(sub) for sub in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.sampled_from(NASTY_STRINGS)
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(min_value=-3, max_value=2000)
    if kind == "number":
        return st.floats(min_value=-1, max_value=1e5) | st.sampled_from([float("nan"), float("inf"), 1e300])
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(plausible(schema.get("items", {})), max_size=25)
    if kind == "string":
        defaults = [schema["default"]] if isinstance(schema.get("default"), str) else []
        return st.sampled_from(NASTY_STRINGS + defaults)
    return values


def option_names(script: ScriptClass) -> list[str]:
    schema = script.get_schema()
    assert schema is not None
    return [*schema["properties"], "n_biass", "metadata", "calibration_collection"]


@st.composite
def config_texts(draw: st.DrawFn, script: ScriptClass) -> str:
    """A YAML mapping of (mostly) real options to arbitrary values, or raw text."""
    if draw(st.integers(0, 9)) == 0:
        fragments = st.sampled_from(
            [
                "n_bias: ",
                "&a ",
                "*a",
                "[",
                "]",
                "{",
                "}",
                ": ",
                "\n",
                "- ",
                "'",
                '"',
                "=",
                "!!str ",
                "#",
                "  ",
            ]
        )
        return "".join(draw(st.lists(fragments | st.text(max_size=5), max_size=30)))
    names = draw(st.lists(st.sampled_from(option_names(script)), unique=True, max_size=6))
    properties = script.get_schema()["properties"]  # type: ignore[index]
    config = {
        name: draw(plausible(properties[name]) if name in properties and draw(st.integers(0, 4)) else values)
        for name in names
    }
    return yaml.safe_dump(config, allow_unicode=True) if config else ""


def names_its_problem(message: str, text: str, script: ScriptClass) -> bool:
    """Does the message name a line, an option, or the configuration as a whole?"""
    if re.search(r"\bline \d+", message) or "configuration" in message:
        return True
    names = [*option_names(script)]
    with contextlib.suppress(Exception):
        names += [str(key) for key in yaml.safe_load(text) or {}]
    return any(name and name in message for name in names)


async def configure(script_class: ScriptClass, text: str) -> tuple[ScriptState, BaseException | None]:
    script = script_class(index=1)
    await script.start_task
    topic = script.salinfo.interface.commands["configure"]
    data = message_model(topic)(salIndex=1, config=text)
    error: BaseException | None = None
    try:
        await script.do_configure(data)
    except ExpectedError as e:
        error = e.__cause__
    finally:
        state = script.state.state
        await script.close()
    return state, error


@settings(
    max_examples=150,
    deadline=datetime.timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_configure_accepts_or_names_the_problem(data: st.DataObject) -> None:
    script_class = data.draw(st.sampled_from(SCRIPTS))
    text = data.draw(config_texts(script_class))
    state, error = asyncio.run(configure(script_class, text))
    if state == ScriptState.CONFIGURED:
        assert error is None
    else:
        assert state == ScriptState.CONFIGURE_FAILED
        assert isinstance(error, ConfigError), f"{text!r} failed with a bare {error!r}"
        assert names_its_problem(str(error), text, script_class), f"{text!r}: {error}"
    # The page's check never contradicts a schema-level refusal.
    schema = script_class.get_schema()
    check = check_config(schema, text)
    if state == ScriptState.CONFIGURED:
        assert check.valid, f"{text!r}: page says {check.problems}"
    for problem in check.problems:
        assert problem.line is not None or problem.option or "configuration" in problem.message
