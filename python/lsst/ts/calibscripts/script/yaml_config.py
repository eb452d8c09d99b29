"""Strict, bounded parsing of configuration YAML typed by operators.

PyYAML silently keeps the last of two duplicated keys and happily reads
``generate_calibrations=True`` as part of the previous value. Operators
paste configurations by hand (and the procedure documents contain exactly
these slips), so this parser refuses both, naming the line.

A configuration may also come from anyone who can reach the queue page, so
the parser is bounded: at most `MAX_CONFIG_LENGTH` characters and
`MAX_DEPTH` levels of nesting, and no anchors, aliases or explicit tags
(operators do not need them, and aliases make exponential "billion laughs"
documents possible). Every problem, whatever the parser's own exception,
becomes a `ConfigError` that names the line.

Dates are kept as text (``2021-07-15`` is the string ``"2021-07-15"``): the
scripts' date options are strings and check dates themselves, and PyYAML's
own date conversion raises bare errors for ``2050-13-45``. This is the one
place where we read YAML differently from ``yaml.safe_load``.
"""

from __future__ import annotations

__all__ = ["MAX_CONFIG_LENGTH", "MAX_DEPTH", "KeyLines", "parse_config_value", "parse_config_yaml"]

import re
from typing import Any

import yaml

from .config_errors import ConfigError, ConfigProblem

#: 1-based line of each key and list item, by path, e.g. ``("n_bias",): 3``, ``("times", "0"): 4``.
KeyLines = dict[tuple[str, ...], int]

MAX_CONFIG_LENGTH = 65536
"""Longest configuration text accepted (characters)."""

MAX_DEPTH = 16
"""Deepest nesting of mappings and sequences accepted."""

# "name=value" at the start of a line, outside quotes: a YAML slip for "name: value".
_KEY_EQUALS_VALUE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)?$")

_STR_TAG = "tag:yaml.org,2002:str"


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _error(message: str, line: int | None = None, option: str = "") -> ConfigError:
    where = f"line {line}: " if line is not None else ""
    return ConfigError(where + message, [ConfigProblem(where + message, line, option)])


def _check_key_equals_value(text: str) -> None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.split(" #", 1)[0]
        match = _KEY_EQUALS_VALUE.match(stripped)
        if match and ":" not in stripped.split("=", 1)[0]:
            key, value = match.group(1), (match.group(2) or "").strip()
            raise _error(
                f"{line.strip()!r} is not valid configuration YAML; "
                f"write {key}: {value} (a colon and a space, not '=')",
                lineno,
                key,
            )


def _check_events(text: str) -> None:
    """Refuse anchors, aliases, explicit tags and deep nesting, before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_ConfigLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            raise _error(
                f"alias *{event.anchor} is not accepted in configurations; write the value out in full", line
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _error(
                f"anchor &{anchor} is not accepted in configurations; write each value out in full", line
            )
        tag = getattr(event, "tag", None)
        if tag is not None and not (isinstance(event, yaml.ScalarEvent) and tag == "!"):
            raise _error(f"explicit YAML tag {tag!r} is not accepted in configurations", line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _error(f"nested more than {MAX_DEPTH} levels deep", line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _walk(node: yaml.Node, path: tuple[str, ...], lines: KeyLines) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                where = ".".join(path) or "the configuration"
                shown = (
                    repr(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "(a list or mapping)"
                )
                raise _error(f"key {shown} in {where} is not a name; option names are text", line)
            key = str(key_node.value)
            if key in seen:
                where = ".".join((*path, key))
                raise _error(
                    f"duplicated key {where!r} (first given on line {seen[key]}); remove one of them",
                    line,
                    where,
                )
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, str(i))] = item.start_mark.line + 1
            _walk(item, (*path, str(i)), lines)


def _load(text: str) -> tuple[Any, KeyLines]:
    """Check and load one YAML document; every parser error becomes a `ConfigError`."""
    if len(text) > MAX_CONFIG_LENGTH:
        raise _error(
            f"configuration is {len(text)} characters long; at most {MAX_CONFIG_LENGTH} are accepted"
        )
    lines: KeyLines = {}
    try:
        _check_events(text)
        loader = _ConfigLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, lines
            _walk(root, (), lines)
            return loader.construct_document(root), lines
        finally:
            loader.dispose()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        message = f"{where}configuration is not valid YAML: {e.problem or e}"
        raise ConfigError(message, [ConfigProblem(message, line)]) from None
    except Exception as e:
        # PyYAML's constructors raise plain ValueError, OverflowError...
        raise _error(f"configuration is not valid YAML: {type(e).__name__}: {e}") from None


def parse_config_yaml(text: str) -> tuple[dict[str, Any], KeyLines]:
    """Parse a configuration; refuse duplicated keys, ``key=value`` lines and unsafe YAML.

    Parameters
    ----------
    text : `str`
        YAML text; blank means an empty configuration.

    Returns
    -------
    config : `dict`
        The parsed mapping.
    lines : `KeyLines`
        1-based line of every key and list item, by path, for error messages.

    Raises
    ------
    ConfigError
        If the text is too long or too deep, is not valid YAML, is not a
        mapping, repeats a key, has a key that is not text, contains a
        ``key=value`` line or uses anchors, aliases or explicit tags. The
        message gives the line.
    """
    if not isinstance(text, str):
        raise _error(f"configuration must be YAML text, not {type(text).__name__}")
    if not text.strip():
        return {}, {}
    _check_key_equals_value(text[:MAX_CONFIG_LENGTH])
    config, lines = _load(text)
    if config is None:
        return {}, {}
    if not isinstance(config, dict):
        shown = text.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise _error(
            f"configuration must be a mapping of option: value, not a {type(config).__name__}: {shown!r}"
        )
    return config, lines


def parse_config_value(text: str, option: str) -> Any:
    """Parse the value of one option given on its own (``run_script -p option=value``).

    Parameters
    ----------
    text : `str`
        The value as YAML (``3`` is a number, ``[a, b]`` a list, blank an
        empty string).
    option : `str`
        The option, for messages.

    Raises
    ------
    ConfigError
        Naming the option, with the same limits as `parse_config_yaml`.
    """
    if not text.strip():
        return ""
    try:
        value, _ = _load(text)
    except ConfigError as e:
        message = f"-p {option}: {e}"
        raise ConfigError(message, [ConfigProblem(message, None, option)]) from None
    return value
