"""Strict parsing of configuration YAML typed by operators.

PyYAML silently keeps the last of two duplicated keys and happily reads
``generate_calibrations=True`` as part of the previous value. Operators
paste configurations by hand (and the procedure documents contain exactly
these slips), so this parser refuses both, naming the line.
"""

from __future__ import annotations

__all__ = ["KeyLines", "parse_config_yaml"]

import re
from typing import Any

import yaml

from .config_errors import ConfigError, ConfigProblem

#: Position (1-based line) of each key path, e.g. ``("n_bias",): 3``.
KeyLines = dict[tuple[str, ...], int]

# "name=value" at the start of a line, outside quotes: a YAML slip for "name: value".
_KEY_EQUALS_VALUE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)?$")


def _check_key_equals_value(text: str) -> None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.split(" #", 1)[0]
        match = _KEY_EQUALS_VALUE.match(stripped)
        if match and ":" not in stripped.split("=", 1)[0]:
            key, value = match.group(1), (match.group(2) or "").strip()
            message = (
                f"line {lineno}: {line.strip()!r} is not valid configuration YAML; "
                f"write {key}: {value} (a colon and a space, not '=')"
            )
            raise ConfigError(message, [ConfigProblem(message, lineno, key)])


def _walk(node: yaml.Node, path: tuple[str, ...], lines: KeyLines) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = ".".join((*path, key))
                message = (
                    f"line {line}: duplicated key {where!r} (first given on line {seen[key]}); "
                    "remove one of them"
                )
                raise ConfigError(message, [ConfigProblem(message, line, where)])
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, str(i)), lines)


def parse_config_yaml(text: str) -> tuple[dict[str, Any], KeyLines]:
    """Parse a configuration; refuse duplicated keys and ``key=value`` lines.

    Parameters
    ----------
    text : `str`
        YAML text; blank means an empty configuration.

    Returns
    -------
    config : `dict`
        The parsed mapping.
    lines : `KeyLines`
        1-based line of every key, by key path, for error messages.

    Raises
    ------
    ConfigError
        If the text is not valid YAML, is not a mapping, repeats a key or
        contains a ``key=value`` line. The message gives the line.
    """
    if not text.strip():
        return {}, {}
    _check_key_equals_value(text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        message = f"{where}configuration is not valid YAML: {e.problem or e}"
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(message, [ConfigProblem(message, line)]) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"configuration is not valid YAML: {e}") from e
    lines: KeyLines = {}
    if root is not None:
        _walk(root, (), lines)
    config = yaml.safe_load(text)
    if config is None:
        return {}, {}
    if not isinstance(config, dict):
        raise ConfigError(
            "configuration must be a mapping of option: value, "
            f"not a {type(config).__name__}: {text.strip()!r}"
        )
    return config, lines
