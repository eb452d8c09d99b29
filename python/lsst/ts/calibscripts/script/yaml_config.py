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

__all__ = [
    "MAX_CONFIG_LENGTH",
    "MAX_DEPTH",
    "KeyLines",
    "collect_config_yaml",
    "collect_problems",
    "parse_config_value",
    "parse_config_yaml",
]

import contextlib
import re
from collections.abc import Iterator, Sequence
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


def _problem(message: str, line: int | None = None, option: str = "") -> ConfigProblem:
    where = f"line {line}: " if line is not None else ""
    return ConfigProblem(where + message, line, option)


def _raise_all(problems: Sequence[ConfigProblem]) -> None:
    if problems:
        raise ConfigError("; ".join(p.message for p in problems), problems)


def _check_key_equals_value(text: str, problems: list[ConfigProblem]) -> str:
    """Record every ``key=value`` line; return the text with those lines blanked.

    Blanking keeps the line numbers, so the rest of the configuration is
    still read and checked and every problem reported at once.
    """
    kept = []
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.rstrip("\r\n").split(" #", 1)[0]
        match = _KEY_EQUALS_VALUE.match(stripped)
        if match and ":" not in stripped.split("=", 1)[0]:
            key, value = match.group(1), (match.group(2) or "").strip()
            problems.append(
                _problem(
                    f"{line.strip()!r} is not valid configuration YAML; "
                    f"write {key}: {value} (a colon and a space, not '=')",
                    lineno,
                    key,
                )
            )
            kept.append("\n" if line.endswith(("\n", "\r")) else "")
        else:
            kept.append(line)
    return "".join(kept)


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


def _walk(node: yaml.Node, path: tuple[str, ...], lines: KeyLines, problems: list[ConfigProblem]) -> None:
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
                problems.append(
                    _problem(
                        f"duplicated key {where!r} (first given on line {seen[key]}); remove one of them",
                        line,
                        where,
                    )
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, str(i))] = item.start_mark.line + 1
            _walk(item, (*path, str(i)), lines, problems)


def _load(text: str, problems: list[ConfigProblem] | None = None) -> tuple[Any, KeyLines]:
    """Check and load one YAML document; every parser error becomes a `ConfigError`.

    Duplicated keys are appended to ``problems`` (the value kept is the
    last one, as PyYAML does) when it is given, raised otherwise.
    """
    collect = problems is not None
    problems = [] if problems is None else problems
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
            _walk(root, (), lines, problems)
            if not collect:
                _raise_all(problems)
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


def collect_config_yaml(text: str) -> tuple[dict[str, Any], KeyLines, list[ConfigProblem]]:
    """Parse a configuration, collecting every slip an operator can make.

    Duplicated keys and ``key=value`` lines do not stop the parse: they are
    returned as problems, each with its line, and the rest of the
    configuration is still read (a ``key=value`` line is left out, a
    duplicated key keeps its last value) so that the schema and the
    script's own checks can report their problems in the same report
    (see `collect_problems`).

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
    problems : `list` [`ConfigProblem`]
        The slips found, in line order; empty if none.

    Raises
    ------
    ConfigError
        If the text cannot be read at all: too long or too deep, not valid
        YAML, not a mapping, a key that is not text, anchors, aliases or
        explicit tags. The slips found so far are in the same error.
    """
    if not isinstance(text, str):
        raise _error(f"configuration must be YAML text, not {type(text).__name__}")
    if not text.strip():
        return {}, {}, []
    problems: list[ConfigProblem] = []
    cleaned = _check_key_equals_value(text[:MAX_CONFIG_LENGTH], problems)
    if len(text) > MAX_CONFIG_LENGTH:
        cleaned = text
    try:
        config, lines = _load(cleaned, problems)
    except ConfigError as e:
        _raise_all(sorted([*problems, *e.problems], key=_line_order))
        raise  # pragma: no cover (_raise_all raised)
    problems.sort(key=_line_order)
    if config is None:
        return {}, {}, problems
    if not isinstance(config, dict):
        shown = text.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        problems.append(
            _problem(
                f"configuration must be a mapping of option: value, not a {type(config).__name__}: {shown!r}"
            )
        )
        _raise_all(problems)
    return config, lines, problems


def _line_order(problem: ConfigProblem) -> int:
    return problem.line if problem.line is not None else 1 << 30


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
        ``key=value`` line or uses anchors, aliases or explicit tags. Every
        duplicated key and ``key=value`` line is in the one error, each
        with its line.
    """
    config, lines, problems = collect_config_yaml(text)
    _raise_all(problems)
    return config, lines


@contextlib.contextmanager
def collect_problems(problems: Sequence[ConfigProblem], lines: KeyLines | None = None) -> Iterator[None]:
    """Report the parser's slips together with what the block raises.

    Use around the schema validation and the script's own checks of a
    configuration read by `collect_config_yaml`: a `ConfigError` raised in
    the block is raised again with ``problems`` first, and if the block
    succeeds but ``problems`` is not empty, those are raised. A problem
    naming a top-level option but no line gets the option's line.

    Parameters
    ----------
    problems : sequence of `ConfigProblem`
        The parser's slips.
    lines : `KeyLines`, optional
        Lines of the options, to locate the block's problems.

    Raises
    ------
    ConfigError
        With every problem, each with its line where known.
    """
    try:
        yield
    except ConfigError as e:
        found = [_locate(p, lines or {}) for p in e.problems]
        if not problems:
            if found == list(e.problems):
                raise
            _raise_all(found)
        _raise_all([*problems, *found])
        raise  # pragma: no cover
    _raise_all(problems)


def _locate(problem: ConfigProblem, lines: KeyLines) -> ConfigProblem:
    if problem.line is not None or not problem.option:
        return problem
    line = lines.get(tuple(problem.option.split(".")))
    if line is None:
        return problem
    return ConfigProblem(f"line {line}: {problem.message}", line, problem.option)


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
