"""Configuration parsing and validation: operators' slips fail with a clear message."""

from __future__ import annotations

import pytest

from lsst.ts.calibscripts.script import ConfigError, DefaultingValidator, parse_config_yaml
from lsst.ts.calibscripts.script.yaml_config import collect_config_yaml, collect_problems

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "calib_collection": {"type": "string", "default": "LATISS/calib/daily"},
        "n_bias": {"type": "integer", "minimum": 1, "default": 20},
        "exp_times_dark": {"type": ["number", "array"], "items": {"type": "number"}, "default": 5},
        "options": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "level": {"type": "string", "default": "INFO"},
                "inner": {
                    "type": "object",
                    "properties": {"depth": {"type": "integer", "default": 3}},
                },
            },
        },
    },
}


def validate(text: str) -> dict[str, object]:
    config, lines = parse_config_yaml(text)
    return DefaultingValidator(SCHEMA).validate(config, lines)


def test_defaults_filled_at_every_level() -> None:
    assert validate("") == {
        "calib_collection": "LATISS/calib/daily",
        "n_bias": 20,
        "exp_times_dark": 5,
        "options": {"level": "INFO", "inner": {"depth": 3}},
    }
    config = validate("options:\n  inner: {depth: 7}\n")
    assert config["options"] == {"level": "INFO", "inner": {"depth": 7}}


def test_given_values_kept_and_input_not_modified() -> None:
    given = {"n_bias": 3}
    result = DefaultingValidator(SCHEMA).validate(given)
    assert result["n_bias"] == 3
    assert given == {"n_bias": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n_bias: 3\nn_bias: 4\n", r"line 2: duplicated key 'n_bias' \(first given on line 1\)"),
        (
            "n_bias: 3\ncalibration_collection: x\n",
            r"line 2: unknown config option 'calibration_collection'; did you mean 'calib_collection'\?",
        ),
        ("n_bias: twenty\n", r"line 1: config option 'n_bias' = 'twenty': 'twenty' is not of type 'integer'"),
        ("n_bias: 0\n", r"line 1: config option 'n_bias' = 0: 0 is less than the minimum of 1"),
        (
            "calib_collection: x\ngenerate_calibrations=True\n",
            r"line 2: 'generate_calibrations=True' is not valid configuration YAML; "
            r"write generate_calibrations: True",
        ),
        ("n_bias: [1, 2\n", r"line 2, column 1: configuration is not valid YAML"),
        ("- n_bias\n", r"configuration must be a mapping"),
        (
            "options:\n  levl: DEBUG\n",
            r"line 2: unknown config option 'options.levl'; did you mean 'level'\?",
        ),
        (
            "options:\n  inner:\n    depth: deep\n",
            r"line 3: config option 'options.inner.depth' = 'deep'",
        ),
    ],
)
def test_errors_name_line_and_option(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(text)


def test_every_problem_reported() -> None:
    with pytest.raises(ConfigError) as info:
        validate("n_bias: x\nbogus: 1\n")
    assert "n_bias" in str(info.value)
    assert "bogus" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n_bias: 3\nn_bias: 4\n", [(2, "n_bias")]),
        (
            "n_bias: x\noptions:\n  levl: DEBUG\nbogus: 1\n",
            [(4, "bogus"), (1, "n_bias"), (3, "options.levl")],
        ),
        ("calib_collection: x\ngenerate_calibrations=True\n", [(2, "generate_calibrations")]),
        ("n_bias: [1, 2\n", [(2, "")]),
        ("- n_bias\n", [(None, "")]),
    ],
)
def test_problems_located_one_by_one(text: str, expected: list[tuple[int | None, str]]) -> None:
    with pytest.raises(ConfigError) as info:
        validate(text)
    problems = info.value.problems
    assert [(p.line, p.option) for p in problems] == expected
    assert "; ".join(p.message for p in problems) == str(info.value)


def test_procedure_example_with_slip_is_refused() -> None:
    # From the LATISS procedure's PTC example: "generate_calibrations=True".
    text = (
        "script_mode: BIAS_DARK_FLAT\n"
        "n_flat: 14\n"
        "grating: ${GRATING_NAME_OR_ID}\n"
        "generate_calibrations=True\n"
        'calib_collection: "LATISS/calib/daily/calibs.2022NOV04.1"\n'
    )
    with pytest.raises(ConfigError, match="line 4"):
        parse_config_yaml(text)


def test_equals_inside_values_is_fine() -> None:
    config, _ = parse_config_yaml('config_options_bias: "-c isr:doDefect=False"\nnote: a=b\n')
    assert config == {"config_options_bias": "-c isr:doDefect=False", "note": "a=b"}


def test_invalid_schema_is_caught() -> None:
    import jsonschema

    with pytest.raises(jsonschema.exceptions.SchemaError):
        DefaultingValidator({"type": "objekt"})


def test_every_slip_in_one_report_each_with_its_line() -> None:
    text = "n_bias=3\ncalib_collection: a\ncalib_collection: b\nexp_times_dark = 5\nn_bias: 4\n"
    with pytest.raises(ConfigError) as info:
        parse_config_yaml(text)
    lines = [(p.line, p.option) for p in info.value.problems]
    assert lines == [(1, "n_bias"), (3, "calib_collection"), (4, "exp_times_dark")]
    assert "line 1: 'n_bias=3'" in str(info.value)
    assert "line 3: duplicated key 'calib_collection' (first given on line 2)" in str(info.value)


def test_slips_reported_with_schema_problems() -> None:
    text = "calib_collection: a\ncalib_colection: b\ncalib_collection: c\nn_bias=2\n"
    config, lines, slips = collect_config_yaml(text)
    assert config == {"calib_collection": "c", "calib_colection": "b"}  # the last value, as PyYAML
    with pytest.raises(ConfigError) as info, collect_problems(slips, lines):
        DefaultingValidator(SCHEMA).validate(config, lines)
    assert [p.line for p in info.value.problems] == [3, 4, 2]
    assert "unknown config option 'calib_colection'" in info.value.problems[2].message


def test_slips_alone_are_still_raised_after_a_valid_block() -> None:
    config, lines, slips = collect_config_yaml("n_bias: 1\nn_bias: 2\n")
    with pytest.raises(ConfigError, match="line 2: duplicated key 'n_bias'"), collect_problems(slips, lines):
        DefaultingValidator(SCHEMA).validate(config, lines)


def test_unreadable_yaml_keeps_the_slips_found() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_yaml("n_bias=3\nexp_times_dark: [1, 2\n")
    assert info.value.problems[0].line == 1
    assert "not valid YAML" in str(info.value)
