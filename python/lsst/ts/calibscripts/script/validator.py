"""DefaultingValidator: JSON Schema Draft 7 validation that fills in defaults."""

from __future__ import annotations

__all__ = ["DefaultingValidator"]

import copy
import difflib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from .config_errors import ConfigError, ConfigProblem
from .yaml_config import KeyLines


def _fill_defaults(
    validator: jsonschema.protocols.Validator,
    properties: Mapping[str, Any],
    instance: Any,
    schema: Mapping[str, Any],
) -> Iterator[jsonschema.exceptions.ValidationError]:
    """Insert missing property defaults, then validate the properties.

    Objects without a default whose own properties have defaults are
    created empty, so defaults are filled at every depth.
    """
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if name in instance or not isinstance(subschema, dict):
                continue
            if "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
            elif subschema.get("type") == "object" and _has_nested_defaults(subschema):
                instance[name] = {}
    yield from _draft7_properties(validator, properties, instance, schema)


def _has_nested_defaults(schema: Mapping[str, Any]) -> bool:
    return any(
        isinstance(sub, dict) and ("default" in sub or _has_nested_defaults(sub))
        for sub in schema.get("properties", {}).values()
    )


_draft7_properties = jsonschema.Draft7Validator.VALIDATORS["properties"]
_Draft7Defaulting = jsonschema.validators.extend(jsonschema.Draft7Validator, {"properties": _fill_defaults})


def _non_finite(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], float]]:
    """Yield the path and value of every NaN or infinity in a configuration."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, (*path, str(i)))


def _shorten(text: str, limit: int = 200) -> str:
    """Cut a long value or message, so that one huge value cannot flood a reply."""
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


class DefaultingValidator:
    """Validate configurations against a Draft 7 JSON schema, filling defaults.

    Parameters
    ----------
    schema : `dict`
        The JSON schema (Draft 7). It is checked when the validator is made.

    Raises
    ------
    jsonschema.exceptions.SchemaError
        If ``schema`` is not a valid Draft 7 schema.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        jsonschema.Draft7Validator.check_schema(schema)
        self.schema = schema
        self._validator = _Draft7Defaulting(schema)

    def validate(self, config: Mapping[str, Any] | None, lines: KeyLines | None = None) -> dict[str, Any]:
        """Return a validated copy of ``config`` with defaults filled in.

        Parameters
        ----------
        config : `dict` or None
            The configuration; None means empty.
        lines : `KeyLines`, optional
            Line of each key in the YAML text, to point at the problem.

        Raises
        ------
        ConfigError
            Listing every problem: the option path, the value and what is
            wrong; unknown options get a "did you mean" suggestion. Its
            ``problems`` has them one by one, with line and option.
        """
        result: dict[str, Any] = copy.deepcopy(dict(config or {}))
        non_finite = [
            self._located(
                path,
                f"config option {'.'.join(path)!r} = {value!r}: NaN and infinity are not accepted",
                lines or {},
            )
            for path, value in _non_finite(result, ())
        ]
        if non_finite:
            raise ConfigError("; ".join(problem.message for problem in non_finite), non_finite)
        errors = sorted(self._validator.iter_errors(result), key=lambda e: list(e.absolute_path))
        if errors:
            problems = [problem for error in errors for problem in self._describe(error, lines or {})]
            raise ConfigError("; ".join(problem.message for problem in problems), problems)
        return result

    def _describe(self, error: jsonschema.exceptions.ValidationError, lines: KeyLines) -> list[ConfigProblem]:
        path = tuple(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            schema = error.schema if isinstance(error.schema, Mapping) else {}
            allowed = list(schema.get("properties", {}))
            unknown = [k for k in error.instance if k not in allowed]
            return [self._describe_unknown((*path, key), allowed, lines) for key in unknown]
        if not path:
            line = self._line(path, lines)
            where = f"line {line}: " if line is not None else ""
            return [ConfigProblem(f"{where}configuration: {_shorten(error.message)}", line)]
        what = _shorten(error.message)
        if (
            error.validator == "pattern"
            and isinstance(error.schema, Mapping)
            and "description" in error.schema
        ):
            # The regular expression means little to an operator; the description has an example.
            what = f"not of the expected form. {error.schema['description']}"
        message = f"config option {'.'.join(path)!r} = {_shorten(repr(error.instance))}: {what}"
        return [self._located(path, message, lines)]

    def _located(self, path: tuple[str, ...], message: str, lines: KeyLines) -> ConfigProblem:
        """Return a problem of the option at ``path``, prefixed with its line."""
        line = self._line(path, lines)
        where = f"line {line}: " if line is not None else ""
        return ConfigProblem(where + message, line, ".".join(path))

    def _describe_unknown(self, path: tuple[str, ...], allowed: list[str], lines: KeyLines) -> ConfigProblem:
        key = str(path[-1])
        line = self._line(path, lines)
        where = f"line {line}: " if line is not None else ""
        message = f"{where}unknown config option {'.'.join(path)!r}"
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if not close:
            # Also catch extensions and truncations (calibration_collection -> calib_collection).
            close = [a for a in allowed if a.startswith(key.split("_")[0]) and len(key.split("_")) > 1][:1]
        if close:
            message += f"; did you mean {close[0]!r}?"
        return ConfigProblem(message, line, ".".join(path))

    @staticmethod
    def _line(path: tuple[str, ...], lines: KeyLines) -> int | None:
        """Return the line of the option, or of its nearest parent that has one."""
        for n in range(len(path), 0, -1):
            line = lines.get(path[:n])
            if line is not None:
                return line
        return None
