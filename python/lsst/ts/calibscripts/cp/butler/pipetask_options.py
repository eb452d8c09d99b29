"""The pipetask options a calibration job may carry, and nothing else.

An operator's ``config_options_*`` and the ``config`` field of an OCPS
``execute`` command end up on a ``pipetask run`` command line. pipetask has
options that overwrite files (``--summary``), run arbitrary Python
(``-C`` with any file), write elsewhere than the job's own run (``-o``,
``--output-run``, ``--replace-run --prune-replaced=purge``) or read another
repository (``-b``). So these strings are never passed through: they are
parsed here, the way pipetask's command line reads them (attached short
forms ``-cVALUE``, long forms ``--config=VALUE``), against an allow-list,
and rebuilt from what was recognised.

What an operator may set (`parse_config_options`):

- ``-c/--config LABEL:FIELD=VALUE``: a task configuration override;
- ``-C/--config-file LABEL:FILE``: a configuration file, only from the
  pipelines' own configuration directories (`config_file_directories`:
  ``$CP_PIPE_DIR/config`` and ``$CP_VERIFY_DIR/config``).

What a job request may also carry, because the calibration script sets it
(`parse_job_config`): ``-i/--input`` collections, ``-j/--processes`` and
``--register-dataset-types``.
"""

from __future__ import annotations

__all__ = [
    "MAX_OPTIONS_LENGTH",
    "PipetaskOptionError",
    "PipetaskOptions",
    "check_collection_name",
    "check_data_query",
    "check_pipeline",
    "config_file_directories",
    "parse_config_options",
    "parse_job_config",
]

import dataclasses
import re
import shlex
import string
from collections.abc import Iterator
from pathlib import Path

from .pipeline_locations import CP_PIPE_DIR_VARIABLE, CP_VERIFY_DIR_VARIABLE, cp_pipe_dir, cp_verify_dir

MAX_OPTIONS_LENGTH = 4096
"""Longest option string accepted (characters)."""

_MAX_COLLECTION_LENGTH = 256
_MAX_QUERY_LENGTH = 65536
_MAX_PROCESSES = 256

# Long name -> (short name, takes a value, operators may set it).
_ALLOWED = {
    "--config": ("-c", True, True),
    "--config-file": ("-C", True, True),
    "--input": ("-i", True, False),
    "--processes": ("-j", True, False),
    "--register-dataset-types": ("", False, False),
}
_BY_SHORT = {short: name for name, (short, _, _) in _ALLOWED.items() if short}

# Options the OCPS sets itself: named in the refusal so that it is clear why.
_SET_BY_OCPS = {
    "-b": "the repository",
    "--butler-config": "the repository",
    "-o": "the output collection",
    "--output": "the output collection",
    "--output-run": "the output run",
    "-p": "the pipeline",
    "--pipeline": "the pipeline",
    "-d": "the data query",
    "--data-query": "the data query",
}

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_CONFIG_OVERRIDE = re.compile(
    rf"^(?P<label>{_IDENTIFIER}):(?P<field>{_IDENTIFIER}(?:\.{_IDENTIFIER})*)=(?P<value>.+)$"
)
_CONFIG_FILE = re.compile(rf"^(?P<label>{_IDENTIFIER}):(?P<path>.+)$")
_COLLECTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+\-/]*$")
_PIPELINE = re.compile(r"^(?P<path>[^#]+?)(?:#(?P<subset>[A-Za-z0-9_,\-]+))?$")


class PipetaskOptionError(ValueError):
    """An option string holds something a calibration job may not pass to pipetask.

    The message names the offending option and says what is allowed.
    """


@dataclasses.dataclass(frozen=True)
class PipetaskOptions:
    """Recognised pipetask options, ready to be put back on a command line.

    Attributes
    ----------
    overrides : `tuple` [`tuple` [`str`, `str`], ...]
        Task configuration overrides in the order given (later ones win in
        pipetask): ``("-c", "LABEL:FIELD=VALUE")`` or ``("-C",
        "LABEL:/absolute/resolved/file.py")``.
    inputs : `tuple` [`str`, ...]
        Input collections, duplicates dropped, in order.
    processes : `int` or None
        ``-j`` value, if given.
    register_dataset_types : `bool`
        Was ``--register-dataset-types`` given?
    """

    overrides: tuple[tuple[str, str], ...] = ()
    inputs: tuple[str, ...] = ()
    processes: int | None = None
    register_dataset_types: bool = False

    def arguments(self) -> list[str]:
        """Return the pipetask arguments, except the inputs (the OCPS merges those)."""
        arguments: list[str] = []
        if self.processes is not None:
            arguments += ["-j", str(self.processes)]
        if self.register_dataset_types:
            arguments.append("--register-dataset-types")
        for flag, value in self.overrides:
            arguments += [flag, value]
        return arguments

    def as_text(self) -> str:
        """Return the options as one shell-quoted string, inputs included."""
        inputs = ["-i", ",".join(self.inputs)] if self.inputs else []
        return shlex.join(inputs + self.arguments())


def config_file_directories() -> tuple[Path, ...]:
    """Return the directories ``-C`` files may come from.

    ``$CP_PIPE_DIR/config`` and ``$CP_VERIFY_DIR/config`` of this package
    (see `~lsst.ts.calibscripts.cp.butler.pipeline_locations`), resolved.
    """
    return (cp_pipe_dir().resolve() / "config", cp_verify_dir().resolve() / "config")


def _allowed_text(operator: bool) -> str:
    directories = " or ".join(f"${v}/config" for v in (CP_PIPE_DIR_VARIABLE, CP_VERIFY_DIR_VARIABLE))
    text = f"-c/--config LABEL:FIELD=VALUE and -C/--config-file LABEL:FILE (a .py file in {directories})"
    if not operator:
        text += ", -i/--input COLLECTIONS, -j/--processes N and --register-dataset-types"
    return text


def _tokens(text: str, where: str) -> list[str]:
    if len(text) > MAX_OPTIONS_LENGTH:
        raise PipetaskOptionError(
            f"{where}: {len(text)} characters; at most {MAX_OPTIONS_LENGTH} are accepted"
        )
    if "\x00" in text:
        raise PipetaskOptionError(f"{where}: contains a NUL character")
    try:
        return shlex.split(text)
    except ValueError as e:
        raise PipetaskOptionError(
            f"{where}: cannot be read as command-line options ({e}) in {text!r}"
        ) from None


def _options(tokens: list[str], where: str, operator: bool) -> Iterator[tuple[str, str | None]]:
    """Yield ``(long name, value)`` for each option, as pipetask's parser reads them."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.startswith("--"):
            name, has_value, value = token.partition("=")
            given: str | None = value if has_value else None
        elif token.startswith("-") and len(token) > 1:
            # A short option takes the rest of the token as its value (-cVALUE).
            name, given = token[:2], (token[2:] or None)
        else:
            raise PipetaskOptionError(
                f"{where}: unexpected argument {token!r}; every value must follow its option. "
                f"Allowed: {_allowed_text(operator)}"
            )
        long_name = _BY_SHORT.get(name, name)
        spec = _ALLOWED.get(long_name)
        if spec is None or (operator and not spec[2]):
            why = f" (the OCPS sets {_SET_BY_OCPS[name]} itself)" if name in _SET_BY_OCPS else ""
            raise PipetaskOptionError(
                f"{where}: option {name!r} is not allowed{why}. Allowed: {_allowed_text(operator)}"
            )
        takes_value = spec[1]
        if not takes_value:
            if given is not None:
                raise PipetaskOptionError(f"{where}: option {name!r} takes no value, got {token!r}")
            yield long_name, None
            continue
        if given is None:
            if i >= len(tokens):
                raise PipetaskOptionError(f"{where}: option {name!r} needs a value")
            given = tokens[i]
            i += 1
        yield long_name, given


def _config_override(value: str, where: str) -> str:
    if "\n" in value or "\r" in value:
        raise PipetaskOptionError(f"{where}: -c {value!r} spans several lines")
    if not _CONFIG_OVERRIDE.match(value):
        hint = " (write -c VALUE or --config=VALUE, not -c=VALUE)" if value.startswith("=") else ""
        raise PipetaskOptionError(
            f"{where}: -c {value!r} is not LABEL:FIELD=VALUE (e.g. isr:doDefect=False){hint}"
        )
    return value


def _config_file(value: str, where: str) -> str:
    match = _CONFIG_FILE.match(value)
    if not match:
        raise PipetaskOptionError(f"{where}: -C {value!r} is not LABEL:FILE")
    variables = {CP_PIPE_DIR_VARIABLE: str(cp_pipe_dir()), CP_VERIFY_DIR_VARIABLE: str(cp_verify_dir())}
    text = string.Template(match["path"]).safe_substitute(variables)
    directories = config_file_directories()
    allowed = " or ".join(str(d) for d in directories)
    path = Path(text)
    if not path.is_absolute():
        raise PipetaskOptionError(
            f"{where}: -C {value!r}: give the file as $CP_PIPE_DIR/config/... or $CP_VERIFY_DIR/config/... "
            f"(files in {allowed})"
        )
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise PipetaskOptionError(f"{where}: -C {value!r}: no such file {text}") from None
    if not any(resolved.is_relative_to(d) for d in directories) or resolved.suffix != ".py":
        raise PipetaskOptionError(
            f"{where}: -C {value!r}: configuration files may only come from {allowed} (.py files)"
        )
    if not resolved.is_file():
        raise PipetaskOptionError(f"{where}: -C {value!r}: {resolved} is not a file")
    return f"{match['label']}:{resolved}"


def check_collection_name(name: str, where: str = "collection") -> str:
    """Check that a collection name is plain: letters, digits and ``_.+-/``.

    Parameters
    ----------
    name : `str`
        The collection name.
    where : `str`, optional
        What it is, for the message (the option name).

    Returns
    -------
    name : `str`
        The name, unchanged.

    Raises
    ------
    PipetaskOptionError
        If the name is empty, too long, or has other characters, an empty
        or ``..`` path element.
    """
    if not _COLLECTION.match(name) or len(name) > _MAX_COLLECTION_LENGTH:
        raise PipetaskOptionError(
            f"{where}: {name!r} is not a valid collection name (letters, digits and _ . + - /, "
            f"at most {_MAX_COLLECTION_LENGTH} characters, starting with a letter, digit or _)"
        )
    if any(part in ("", "..", ".") for part in name.split("/")):
        raise PipetaskOptionError(f"{where}: {name!r} has an empty, '.' or '..' element")
    return name


def _processes(value: str, where: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= _MAX_PROCESSES:
        raise PipetaskOptionError(f"{where}: -j {value!r} must be a whole number from 1 to {_MAX_PROCESSES}")
    return int(value)


def _parse(text: str, where: str, operator: bool) -> PipetaskOptions:
    overrides: list[tuple[str, str]] = []
    inputs: list[str] = []
    processes: int | None = None
    register = False
    for name, value in _options(_tokens(text, where), where, operator):
        if name == "--config":
            assert value is not None
            overrides.append(("-c", _config_override(value, where)))
        elif name == "--config-file":
            assert value is not None
            overrides.append(("-C", _config_file(value, where)))
        elif name == "--input":
            assert value is not None
            inputs += [check_collection_name(c.strip(), where) for c in value.split(",") if c.strip()]
        elif name == "--processes":
            assert value is not None
            processes = _processes(value, where)
        else:
            register = True
    return PipetaskOptions(
        overrides=tuple(overrides),
        inputs=tuple(dict.fromkeys(inputs)),
        processes=processes,
        register_dataset_types=register,
    )


def parse_config_options(text: str, option: str = "config_options") -> PipetaskOptions:
    """Parse an operator's ``config_options_*``: only ``-c`` and ``-C``.

    Parameters
    ----------
    text : `str`
        The option string, as typed.
    option : `str`, optional
        Name of the configuration option, for messages.

    Returns
    -------
    options : `PipetaskOptions`
        The recognised overrides.

    Raises
    ------
    PipetaskOptionError
        Naming ``option`` and the offending pipetask option, and listing
        what is allowed.
    """
    return _parse(text, option, operator=True)


def parse_job_config(text: str) -> PipetaskOptions:
    """Parse the ``config`` of an OCPS ``execute`` command.

    Besides what `parse_config_options` accepts: ``-i/--input``,
    ``-j/--processes`` and ``--register-dataset-types``.

    Parameters
    ----------
    text : `str`
        The ``config`` field.

    Raises
    ------
    PipetaskOptionError
        Naming the offending option and listing what is allowed.
    """
    return _parse(text, "config", operator=False)


def check_pipeline(pipeline: str) -> str:
    """Resolve a pipeline and check that it is one of this package's.

    Parameters
    ----------
    pipeline : `str`
        ``$CP_PIPE_DIR/pipelines/...yaml`` or ``$CP_VERIFY_DIR/...``
        (braces optional), or the absolute path of such a file, with an
        optional ``#subset`` suffix.

    Returns
    -------
    pipeline : `str`
        The absolute, resolved file path with its ``#subset`` suffix.

    Raises
    ------
    PipetaskOptionError
        If the file is not a ``.yaml`` file under the ``pipelines``
        directory of ``$CP_PIPE_DIR`` or ``$CP_VERIFY_DIR``, or does not
        exist.
    """
    match = _PIPELINE.match(pipeline.strip())
    if not match:
        raise PipetaskOptionError(f"pipeline {pipeline!r} is not FILE or FILE#SUBSET")
    variables = {CP_PIPE_DIR_VARIABLE: str(cp_pipe_dir()), CP_VERIFY_DIR_VARIABLE: str(cp_verify_dir())}
    path = Path(string.Template(match["path"]).safe_substitute(variables))
    roots = (cp_pipe_dir().resolve() / "pipelines", cp_verify_dir().resolve() / "pipelines")
    try:
        resolved = path.resolve(strict=True) if path.is_absolute() else None
    except (OSError, RuntimeError):
        resolved = None
    if resolved is None or not resolved.is_file():
        raise PipetaskOptionError(f"pipeline {pipeline!r}: no such pipeline file")
    if resolved.suffix != ".yaml" or not any(resolved.is_relative_to(root) for root in roots):
        raise PipetaskOptionError(
            f"pipeline {pipeline!r}: only the pipelines in ${CP_PIPE_DIR_VARIABLE}/pipelines and "
            f"${CP_VERIFY_DIR_VARIABLE}/pipelines may run"
        )
    return f"{resolved}#{match['subset']}" if match["subset"] else str(resolved)


def check_data_query(query: str) -> str:
    """Check that a data query is one line of bounded length.

    The query goes to pipetask as one argument, which parses it with the
    Butler's own query grammar; this only bounds its size.

    Raises
    ------
    PipetaskOptionError
        If it is too long or holds a NUL or line break.
    """
    if len(query) > _MAX_QUERY_LENGTH or any(c in query for c in "\x00\n\r"):
        raise PipetaskOptionError(
            f"data_query: at most {_MAX_QUERY_LENGTH} characters on one line, got {len(query)}"
        )
    return query
