"""How the ``calibscripts`` commands start: sub-commands, logging, one-line errors, stop signals.

The commands that run a service until stopped, ``calibscripts queue`` and
``calibscripts ui`` (each also a ``python -m`` entry point), and the
top-level ``calibscripts`` command (`lsst.ts.calibscripts.cli`) start the
same way:

- each sub-command is a parser whose ``handler`` default runs it
  (`add_command`);
- ``--log-level`` sets the logging of the whole process
  (`add_log_level_argument`, `configure_logging`);
- a service runs in `asyncio` until SIGINT or SIGTERM (`stop_signals`), and
  the errors a user can fix are printed as one line, never a traceback
  (`ServiceCommand`).

It lives in ``queue``, the lower of the two service packages, so that
``ui`` (which may import ``queue``) and the top-level command (which may
import anything) both reach it; it imports no other module of the package.
"""

from __future__ import annotations

__all__ = [
    "LOG_LEVELS",
    "ServiceCommand",
    "add_command",
    "add_log_level_argument",
    "configure_logging",
    "stop_signals",
]

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

#: Choices of ``--log-level``; the default is WARNING.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# The signals that stop a service: Ctrl-C, and what service managers send.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Exit code of a command interrupted by Ctrl-C (128 + SIGINT), as shells report it.
_INTERRUPTED = 130


def add_command(
    subparsers: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add a sub-command whose ``handler`` default runs it.

    Parameters
    ----------
    subparsers
        The object `argparse.ArgumentParser.add_subparsers` returned.
    name : `str`
        The sub-command.
    handler : callable
        ``handler(args)`` runs the command and returns its exit code.
    help : `str`
        One line for the parent's ``--help``.
    description : `str`, optional
        What the command does, for its own ``--help``.

    Returns
    -------
    parser : `argparse.ArgumentParser`
        The sub-command's parser, to add its arguments to.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


def add_log_level_argument(parser: argparse.ArgumentParser, *, help: str = "default WARNING") -> None:
    """Add ``--log-level`` (one of `LOG_LEVELS`, default WARNING) to ``parser``."""
    parser.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS, help=help)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (a ``--log-level`` value), one line a message."""
    logging.basicConfig(level=level, format=_LOG_FORMAT)


@contextlib.contextmanager
def stop_signals(stop: Callable[[], object]) -> Iterator[None]:
    """Call ``stop`` on SIGINT or SIGTERM while the block runs in the event loop.

    Parameters
    ----------
    stop : callable
        Called, in the event loop, once per signal received; it must not
        block (schedule a coroutine with `asyncio.ensure_future`).

    Notes
    -----
    Where the loop cannot handle signals (an event loop outside the main
    thread, or Windows) the block runs without: the service then stops
    only by itself, as a task that is cancelled, or at Ctrl-C through
    `asyncio.run`.
    """
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in _STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


@dataclasses.dataclass(frozen=True)
class ServiceCommand:
    """A command that runs a service until stopped: ``calibscripts NAME`` and ``python -m MODULE``.

    Attributes
    ----------
    name : `str`
        The ``calibscripts`` sub-command (``queue``); error messages start
        with ``calibscripts NAME: error:`` whichever way it was run.
    module : `str`
        The package ``python -m`` runs (its ``__main__`` calls `main`).
    help : `str`
        One line for ``calibscripts --help``.
    description : `str`
        What the command does, for ``calibscripts NAME --help``.
    summary : `str`
        What the command does, for ``python -m MODULE --help``.
    add_arguments : callable
        ``add_arguments(parser)`` adds the command's own arguments.
    run : callable
        ``await run(args)`` runs the service with the parsed arguments and
        returns the exit code.
    errors : `tuple` [`type`, ...]
        Exceptions of ``run`` that the user can fix (bad options, a port
        in use, no transport): printed as one line, exit code 1.
    """

    name: str
    module: str
    help: str
    description: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
    errors: tuple[type[Exception], ...] = (ConnectionError, ValueError)

    def add_to(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add the command to the ``calibscripts`` sub-command parsers.

        Parameters
        ----------
        subparsers
            The object `argparse.ArgumentParser.add_subparsers` returned.

        Returns
        -------
        parser : `argparse.ArgumentParser`
            The command's parser; its ``handler`` default (`handle`) runs
            the service and returns the exit code.
        """
        parser = add_command(subparsers, self.name, self.handle, help=self.help, description=self.description)
        self.add_arguments(parser)
        return parser

    def handle(self, args: argparse.Namespace) -> int:
        """Run the service with parsed arguments until it stops; return the exit code.

        Returns
        -------
        exit_code : `int`
            What the service returned; 1 after one of `errors` (printed as
            one line on stderr); 130 if interrupted by Ctrl-C while
            starting, before `stop_signals` handles it.
        """
        try:
            return asyncio.run(self.run(args))
        except self.errors as e:
            print(f"calibscripts {self.name}: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return _INTERRUPTED

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the command as ``python -m MODULE``, with ``--log-level``; return the exit code.

        Parameters
        ----------
        argv : sequence of `str`, optional
            Arguments without the program name; `sys.argv` if None.
        """
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.summary)
        self.add_arguments(parser)
        # Here and not in add_to: under ``calibscripts`` the top-level parser has it.
        add_log_level_argument(parser)
        args = parser.parse_args(argv)
        configure_logging(args.log_level)
        return self.handle(args)
