"""The exception raised for a configuration an operator must fix, and its located problems."""

from __future__ import annotations

__all__ = ["ConfigError", "ConfigProblem"]

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One problem of a configuration, located for an editor.

    Attributes
    ----------
    message : `str`
        What is wrong, in the words of `ConfigError` (it starts with
        ``line N:`` when the line is known).
    line : `int` or None
        1-based line of the YAML text, if known.
    option : `str`
        Dotted path of the option (``report.level``); blank for the
        configuration as a whole.
    """

    message: str
    line: int | None = None
    option: str = ""


class ConfigError(ValueError):
    """A script configuration is invalid.

    The message names the offending option (and line, where known) and
    what is wrong, in words an operator can act on.

    Parameters
    ----------
    message : `str`
        The whole message (every problem).
    problems : sequence of `ConfigProblem`, optional
        The problems one by one, located; if not given, one problem with
        ``message`` and no location.

    Attributes
    ----------
    problems : `tuple` [`ConfigProblem`, ...]
        The problems one by one (never empty), so that an editor can mark
        each where it is.
    """

    def __init__(self, message: str, problems: Sequence[ConfigProblem] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[ConfigProblem, ...] = tuple(problems) or (ConfigProblem(message),)
