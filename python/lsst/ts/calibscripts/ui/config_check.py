"""Check a configuration as the script will, for the page's live CONFIG editor.

The page never reimplements validation: it sends the text here, and this
module applies exactly what `~lsst.ts.calibscripts.script.BaseScript`
applies when it is configured (strict YAML, the top-level ``metadata`` key
dropped, the schema with defaults), so that a configuration the editor
accepts passes the same checks in the script. The script's own
``configure`` may still refuse it for reasons beyond the schema (a
combination of options, say); ADD reports those.
"""

from __future__ import annotations

__all__ = ["ConfigCheck", "EffectiveOption", "check_config", "parse_schema"]

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import jsonschema.exceptions
import yaml

from ..script.config_errors import ConfigError, ConfigProblem
from ..script.validator import DefaultingValidator
from ..script.yaml_config import collect_config_yaml, collect_problems


@dataclasses.dataclass(frozen=True)
class EffectiveOption:
    """One top-level option of a valid configuration, as the script will see it.

    Attributes
    ----------
    option : `str`
        Option name.
    value : `typing.Any`
        Its value (JSON-compatible), defaults filled in at every depth.
    source : ``"config"`` or ``"default"``
        Was it given in the configuration, or filled in from the schema?
    """

    option: str
    value: Any
    source: Literal["config", "default"]


@dataclasses.dataclass(frozen=True)
class ConfigCheck:
    """The outcome of `check_config`.

    Attributes
    ----------
    problems : `list` [`ConfigProblem`]
        What is wrong, each located (line and option) where possible;
        empty if the configuration is valid.
    options : `list` [`EffectiveOption`]
        If valid: every top-level option the script will receive, in schema
        order, then any the schema does not list; empty otherwise.
    """

    problems: list[ConfigProblem]
    options: list[EffectiveOption]

    @property
    def valid(self) -> bool:
        """Is the configuration valid?"""
        return not self.problems


def parse_schema(text: str) -> dict[str, Any] | None:
    """Parse a script's configuration schema, as ``configSchema`` carries it.

    Parameters
    ----------
    text : `str`
        The schema as YAML; blank if the script takes no configuration.

    Returns
    -------
    schema : `dict` or None
        The JSON schema, or None if the script takes no configuration.

    Raises
    ------
    ValueError
        If the text is not a valid Draft 7 JSON schema.
    """
    if not text.strip():
        return None
    try:
        schema = yaml.safe_load(text)
        if not isinstance(schema, dict):
            raise ValueError(f"the schema is a {type(schema).__name__}, not a mapping")
        jsonschema.Draft7Validator.check_schema(schema)
    except (yaml.YAMLError, jsonschema.exceptions.SchemaError, ValueError) as e:
        raise ValueError(f"The script's configuration schema is not valid: {e}") from e
    return schema


def check_config(schema: Mapping[str, Any] | None, text: str) -> ConfigCheck:
    """Check a configuration YAML text against a script's schema.

    Parameters
    ----------
    schema : `dict` or None
        The script's JSON schema (see `parse_schema`); None if the script
        takes no configuration.
    text : `str`
        The configuration as the operator typed it.

    Returns
    -------
    check : `ConfigCheck`
        The problems, or the effective options.
    """
    try:
        # Every slip and schema problem at once, each with its line.
        config, lines, slips = collect_config_yaml(text)
        # BaseScript drops it too: a scheduler's annotations, not an option.
        config.pop("metadata", None)
        with collect_problems(slips, lines):
            if schema is None:
                if config:
                    raise ConfigError(
                        f"this script takes no configuration; remove {', '.join(map(repr, config))}"
                    )
                return ConfigCheck(problems=[], options=[])
            effective = DefaultingValidator(schema).validate(config, lines)
    except ConfigError as e:
        return ConfigCheck(problems=list(e.problems), options=[])
    order = list(schema.get("properties", {}))
    names = sorted(effective, key=lambda name: (order.index(name) if name in order else len(order), name))
    options = [
        EffectiveOption(name, effective[name], "config" if name in config else "default") for name in names
    ]
    return ConfigCheck(problems=[], options=options)
