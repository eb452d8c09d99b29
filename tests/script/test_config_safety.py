"""Hostile or careless configuration text: refused quickly, with the line or option named."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from lsst.ts.calibscripts.script import (
    MAX_CONFIG_LENGTH,
    MAX_DEPTH,
    ConfigError,
    DefaultingValidator,
    parse_config_value,
    parse_config_yaml,
)
from lsst.ts.calibscripts.script.run_script import amain

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "n_bias": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
        "times": {"type": "array", "items": {"type": "number"}, "default": []},
        "note": {"type": ["string", "null"], "default": None},
        "date": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description": "A day, e.g. 2021-07-15.",
            "default": "2050-01-01",
        },
    },
}


def alias_bomb(levels: int) -> str:
    """Return the classic exponential-expansion YAML ('billion laughs')."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def check(text: str) -> dict[str, object]:
    config, lines = parse_config_yaml(text)
    return DefaultingValidator(SCHEMA).validate(config, lines)


def refused(text: str, message: str) -> ConfigError:
    with pytest.raises(ConfigError, match=message) as info:
        check(text)
    return info.value


@pytest.mark.parametrize("levels", [8, 9, 12])
def test_alias_bomb_refused_at_once(levels: int) -> None:
    text = alias_bomb(levels)
    tracemalloc.start()
    start = time.monotonic()
    error = refused(text, "line 1: anchor &a0 is not accepted")
    elapsed = time.monotonic() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert error.problems[0].line == 1
    # Expanded, these documents hold 9**levels strings; refused, almost nothing happens.
    assert elapsed < 1.0
    assert peak < 10_000_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("note: &x [*x]", "line 1: anchor &x"),
        ("n_bias: 3\nnote: *x", "line 2: alias \\*x"),
        ("note: !!python/object/apply:os.system [ls]", "line 1: explicit YAML tag"),
        ("note: !!binary aGVsbG8=", "line 1: explicit YAML tag"),
        ("note: !custom x", "line 1: explicit YAML tag"),
        ("1: 2", "line 1: key '1' in the configuration is not a name"),
        ("? [a, b]\n: 3", "line 1: key \\(a list or mapping\\)"),
        ("null: 3", "line 1: key 'null'"),
        ("n_bias: 3\n---\nn_bias: 4", "line 2, column 1: configuration is not valid YAML"),
        ("n_bias: 1" + "0" * 5000, "not valid YAML: ValueError"),
        ("n_bias: .nan", "line 1: config option 'n_bias' = nan: NaN and infinity are not accepted"),
        ("times: [1, .inf]", "line 1: config option 'times.1' = inf: NaN and infinity"),
        ("times:\n  - 1\n  - -.inf", "line 3: config option 'times.1' = -inf"),
        ("n_bias: 1000000000", "line 1: config option 'n_bias' = 1000000000: .*maximum of 1000"),
        ("date: 2030-01-01 garbage", "line 1: config option 'date' .*not of the expected form. A day, e.g."),
        ("[1, 2]", "configuration must be a mapping"),
        ("note: [" * 20 + "]" * 20, f"nested more than {MAX_DEPTH} levels"),
    ],
)
def test_unsafe_or_careless_text_refused(text: str, message: str) -> None:
    refused(text, message)


def test_size_limit() -> None:
    refused("note: " + "x" * MAX_CONFIG_LENGTH, f"at most {MAX_CONFIG_LENGTH}")


def test_dates_stay_text() -> None:
    # PyYAML would build a date (and fail with a bare error on 2050-13-45).
    config, _ = parse_config_yaml("date: 2021-07-15\nnote: 2050-13-45\n")
    assert config == {"date": "2021-07-15", "note": "2050-13-45"}


def test_huge_values_are_shortened_in_messages() -> None:
    error = refused("n_bias: [" + ", ".join(["1"] * 5000) + "]", "characters\\)")
    assert len(str(error)) < 600


def test_parse_config_value() -> None:
    assert parse_config_value("[1, 2]", "times") == [1, 2]
    assert parse_config_value("2021-07-15", "date") == "2021-07-15"
    assert parse_config_value("", "note") == ""
    with pytest.raises(ConfigError, match="-p note: line 1: anchor &x") as info:
        parse_config_value("&x [*x]", "note")
    assert info.value.problems[0].option == "note"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["note=&x [*x]"], "-p note: line 1: anchor &x"),
        (["sleep_time=.nan"], "config option 'sleep_time' = nan: NaN and infinity"),
        (["sleep_time=1e400"], "sleep_time"),
        (["checkpoints=[1, [2]]"], "checkpoints.1"),
    ],
)
async def test_run_script_params_fail_without_traceback(
    params: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["examples/sleep.py"]
    for param in params:
        argv += ["-p", param]
    code = await amain(argv)
    out, err = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in out + err
    assert message.split(":")[0] in out + err
