"""``run_script``: configure and run one script from the command line.

The equivalent of Rubin's run-one-script tool: load a script, configure it
from a YAML file and/or ``-p key=value`` options, set a group id, run it,
print its state changes, checkpoints and log messages as they arrive, and
exit with the script's status (0 for DONE or STOPPED, 1 otherwise).
"""

from __future__ import annotations

__all__ = [
    "ScriptPrinter",
    "amain",
    "build_config",
    "find_script",
    "load_script_class",
    "main",
    "run_one_script",
    "simulation_repo",
]

import argparse
import asyncio
import contextlib
import datetime
import importlib.util
import inspect
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import yaml

from ..resources import scripts_dir
from ..sal import BaseMessage, Domain, Remote, ScriptState
from ..sal.ack_errors import AckError
from ..sal.timestamps import TAI_MINUS_UTC
from .base_script import BaseScript
from .config_errors import ConfigError, ConfigProblem
from .yaml_config import parse_config_value, parse_config_yaml

#: Generous limit for a command the script must answer quickly.
_COMMAND_TIMEOUT = 60.0


def find_script(spec: str) -> Path:
    """Find a script executable.

    Parameters
    ----------
    spec : `str`
        A path relative to the package's scripts directory
        (``examples/sleep.py``), or a path to a file.

    Raises
    ------
    FileNotFoundError
        If neither exists; the message lists the available scripts.
    """
    for candidate in (scripts_dir() / spec, Path(spec)):
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(str(p.relative_to(scripts_dir())) for p in scripts_dir().rglob("*.py"))
    raise FileNotFoundError(f"No script {spec!r}; available scripts: {', '.join(available)}")


def load_script_class(path: Path) -> type[BaseScript]:
    """Return the script class an executable runs.

    The executable is imported as a module (its ``__main__`` block does not
    run); it must define or import exactly one concrete `BaseScript`
    subclass.

    Raises
    ------
    TypeError
        If the file has no script class, or more than one.
    """
    spec = importlib.util.spec_from_file_location(f"_calibscripts_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise TypeError(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = {
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseScript) and not inspect.isabstract(obj)
    }
    if len(classes) != 1:
        names = sorted(c.__name__ for c in classes)
        raise TypeError(f"{path} must provide exactly one script class; found {names or 'none'}")
    return classes.pop()


def build_config(config_file: Path | None, params: Sequence[str]) -> str:
    """Make the configuration YAML from a file and ``key=value`` options.

    With only a file, its text is used unchanged, so error messages point
    at its lines. ``-p`` values are parsed as YAML (``3`` is a number,
    ``[a, b]`` a list) and override the file's top-level keys.

    Raises
    ------
    ConfigError
        If a ``-p`` option is not ``key=value`` or a key is repeated.
    """
    text = config_file.read_text() if config_file is not None else ""
    if not params:
        return text
    overrides: dict[str, object] = {}
    for param in params:
        key, sep, value = param.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-p {param!r}: expected key=value")
        if key in overrides:
            raise ConfigError(f"-p {key} given twice")
        overrides[key] = parse_config_value(value, key)
    base, _ = parse_config_yaml(text)
    base.update(overrides)
    return yaml.safe_dump(base, sort_keys=False)


def _tai_iso_now() -> str:
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=TAI_MINUS_UTC)
    return now.replace(tzinfo=None).isoformat(timespec="milliseconds")


class ScriptPrinter:
    """Print a script's state changes, checkpoints and log messages.

    Parameters
    ----------
    remote : `Remote`
        Remote of the ``Script`` component being watched.
    stream : `typing.TextIO`, optional
        Where to print; default stdout.
    """

    def __init__(self, remote: Remote, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._state: ScriptState | None = None
        self._checkpoint = ""
        self._t0 = time.monotonic()
        remote.evt_state.callback = self._on_state
        remote.evt_logMessage.callback = self._on_log
        remote.evt_metadata.callback = self._on_metadata
        self._duration = 0.0
        self._total_checkpoints = 0

    def _print(self, text: str) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {text}", file=self.stream, flush=True)

    def _on_metadata(self, data: BaseMessage) -> None:
        self._duration = data.duration
        self._total_checkpoints = data.totalCheckpoints
        self._print(f"Estimated duration: {data.duration:.0f} s")

    def _on_state(self, data: BaseMessage) -> None:
        state = ScriptState(data.state)
        if state != self._state:
            self._state = state
            if state == ScriptState.RUNNING and self._checkpoint == "":
                self._t0 = time.monotonic()
            reason = f" ({data.reason})" if data.reason and state not in (ScriptState.RUNNING,) else ""
            self._print(f"State: {state.name}{reason}")
        if data.lastCheckpoint and data.numCheckpoints and data.lastCheckpoint != self._checkpoint:
            self._checkpoint = data.lastCheckpoint
            self._print(f"Checkpoint {self._progress(data.numCheckpoints)}: {data.lastCheckpoint}")

    def _progress(self, num: int) -> str:
        of = f"/{self._total_checkpoints}" if self._total_checkpoints else ""
        elapsed = time.monotonic() - self._t0
        estimate = f" of ~{self._duration:.0f} s" if self._duration else ""
        return f"{num}{of} [{elapsed:.0f} s{estimate}]"

    def _on_log(self, data: BaseMessage) -> None:
        level = logging.getLevelName(data.level)
        text = f"{level:<7} {data.message}"
        if data.traceback and data.level >= logging.ERROR:
            text += "\n" + data.traceback.rstrip()
        self._print(text)


async def run_one_script(
    script_class: type[BaseScript],
    *,
    index: int,
    config: str,
    log_level: int = 0,
    domain: Domain | None = None,
    stream: TextIO | None = None,
) -> ScriptState:
    """Configure and run one script in this process; return its final state.

    Commands go through the messaging system exactly as from a queue.
    SIGINT (Ctrl-C) sends ``stop``; a second one interrupts.

    Parameters
    ----------
    script_class : `type` [`BaseScript`]
        The script.
    index : `int`
        SAL index for the script.
    config : `str`
        Configuration YAML.
    log_level : `int`, optional
        Log level for the script; 0 leaves the default.
    domain : `Domain`, optional
        Domain (transport) to use.
    stream : `typing.TextIO`, optional
        Where to print progress; default stdout.
    """
    domain = domain if domain is not None else Domain()
    script = script_class(index=index, domain=domain)  # type: ignore[call-arg]
    remote = Remote(domain, "Script", index)
    ScriptPrinter(remote, stream)
    await asyncio.gather(script.start_task, remote.start_task)
    loop = asyncio.get_running_loop()
    stop_requested = False
    stop_tasks: list[asyncio.Future[BaseMessage]] = []

    def on_sigint() -> None:
        nonlocal stop_requested
        if stop_requested:
            script.done_task.cancel()
            return
        stop_requested = True
        print("Stopping the script (Ctrl-C again to interrupt)...", file=stream or sys.stdout, flush=True)
        stop_tasks.append(asyncio.ensure_future(remote.cmd_stop.start(timeout=_COMMAND_TIMEOUT)))

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        try:
            await remote.cmd_configure.set_start(config=config, logLevel=log_level, timeout=_COMMAND_TIMEOUT)
            await remote.cmd_setGroupId.set_start(groupId=_tai_iso_now(), timeout=_COMMAND_TIMEOUT)
            # Do not wait for the run command's ack: it comes when the script ends.
            run_task = asyncio.ensure_future(remote.cmd_run.start(timeout=365 * 86400))
        except AckError:
            pass  # the script reported why through its state and log; it exits by itself
        else:
            run_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        with contextlib.suppress(Exception):  # a failed cleanup: the state says FAILED
            await script.done_task
        await asyncio.sleep(0)  # let the last state and log messages print
        return ScriptState(script.state.state)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        await remote.close()
        await script.close()


def make_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``run_script``."""
    parser = argparse.ArgumentParser(
        prog="run_script",
        description="Configure and run one SAL script, printing its progress.",
    )
    parser.add_argument(
        "script", help="script path relative to the scripts directory (e.g. examples/sleep.py), or a file"
    )
    parser.add_argument("--index", type=int, default=1, help="SAL index of the script (default 1)")
    parser.add_argument("--config", type=Path, help="configuration YAML file")
    parser.add_argument(
        "-p", dest="params", action="append", default=[], metavar="KEY=VALUE", help="configuration option"
    )
    parser.add_argument(
        "--loglevel",
        default=None,
        help="script log level (name such as DEBUG, or a number); default INFO",
    )
    simulation = parser.add_argument_group("simulated observatory")
    simulation.add_argument(
        "--simulate",
        action="store_true",
        help="start the script's simulated observatory (camera, OODS, OCPS...) in this process",
    )
    simulation.add_argument(
        "--repo",
        type=Path,
        help="with --simulate: Butler repository (default: the config's repo if given, else the "
        "embedded one under var/repo/<instrument>); created on first use",
    )
    simulation.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="with --simulate: wall-clock seconds per observatory second (default 1)",
    )
    simulation.add_argument(
        "--geometry",
        default="full",
        help="with --simulate: detector geometry: full (default), reduced (small and fast), "
        "or NXxNY data pixels per amp",
    )
    simulation.add_argument(
        "--bootstrap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --simulate: make reference calibrations (a certified bias, dark and flat in "
        "<instrument>/calib, from simulated images and the cp pipelines) if the repository lacks them; "
        "--no-bootstrap: never. Default: only when the repository is created",
    )
    # How the simulated OCPS runs jobs: the options are defined once, with its settings.
    from ..simulator.executors.settings import add_executor_arguments

    add_executor_arguments(simulation, prefix="with --simulate: ")
    return parser


def simulation_repo(config: str, repo: Path | None, default: Path) -> tuple[str, Path]:
    """Choose the repository of a simulated run; make the config point at it.

    The script's ``repo`` option and the simulated OCPS must use the same
    repository: ``--repo`` if given, else the config's ``repo`` if given,
    else ``default``.

    Returns
    -------
    config, repo
        The configuration (with ``repo`` added if it had none) and the
        repository.

    Raises
    ------
    ConfigError
        If ``--repo`` and the config's ``repo`` disagree.
    """
    parsed, _ = parse_config_yaml(config)
    given = parsed.get("repo")
    if given is not None and not isinstance(given, str):
        raise ConfigError(
            f"repo = {given!r}: must be text (the repository path)",
            [ConfigProblem(f"repo = {given!r}: must be text (the repository path)", None, "repo")],
        )
    if given is not None and repo is not None and Path(given).resolve() != repo.resolve():
        raise ConfigError(f"--repo {repo} and the config's repo {given} differ; give one of them")
    chosen = (repo or (Path(given) if given is not None else default)).expanduser().resolve()
    if given is None:
        parsed["repo"] = str(chosen)
        # Appending keeps the user's lines (and error line numbers) unchanged.
        addition = yaml.safe_dump({"repo": str(chosen)})
        config = config.rstrip("\n") + "\n" + addition if config.strip() else addition
    return config, chosen


def _parse_log_level(value: str | None) -> int:
    if value is None:
        return 0
    if value.isdigit():
        return int(value)
    levels = logging.getLevelNamesMapping()
    if value.upper() not in levels:
        raise ConfigError(f"--loglevel {value!r}: use one of {', '.join(levels)} or a number")
    return levels[value.upper()]


async def amain(argv: Sequence[str] | None = None) -> int:
    """Run ``run_script`` with ``argv``; return the exit code."""
    args = make_parser().parse_args(argv)
    try:
        path = find_script(args.script)
        script_class = load_script_class(path)
        config = build_config(args.config, args.params)
        log_level = _parse_log_level(args.loglevel)
    except (OSError, ConfigError, TypeError) as e:
        print(f"run_script: error: {e}", file=sys.stderr)
        return 2
    if not args.simulate:
        print(f"Running {path.name} ({script_class.__name__}) as Script:{args.index}", flush=True)
        state = await run_one_script(script_class, index=args.index, config=config, log_level=log_level)
    else:
        instrument = getattr(script_class, "instrument_name", None)
        if instrument is None:
            print(f"run_script: error: --simulate needs a calibration script; {path.name} has no instrument")
            return 2
        # Imported here: plain runs need no observatory (nor the Butler).
        from ..simulator.executors.settings import executor_settings_from_args
        from ..simulator.observatory import (
            BootstrapError,
            ObservatoryConfig,
            SimulatedObservatory,
            bootstrap_collection,
        )

        try:
            ocps_executor = executor_settings_from_args(args)
        except ValueError as e:
            print(f"run_script: error: {e}", file=sys.stderr)
            return 2
        observatory_config = ObservatoryConfig(
            instrument=instrument,
            time_scale=args.time_scale,
            geometry=args.geometry,
            bootstrap=args.bootstrap,
            ocps_executor=ocps_executor,
        )
        try:
            config, repo = simulation_repo(config, args.repo, observatory_config.repo_path)
        except (ConfigError, ValueError, OSError) as e:
            print(f"run_script: error: {e}", file=sys.stderr)
            return 2
        observatory_config.repo = repo
        domain = Domain()
        print(
            f"Starting the simulated {instrument} observatory (time scale {args.time_scale})...", flush=True
        )
        observatory = SimulatedObservatory(observatory_config, domain=domain, progress=_print_stamped)
        try:
            await observatory.start()
        except BootstrapError as e:
            print(f"run_script: error: reference calibrations could not be made: {e}", file=sys.stderr)
            return 1
        try:
            components = ", ".join(c.salinfo.name_index for c in observatory.components.values())
            print(f"Components ENABLED: {components}", flush=True)
            print(f"Butler repository: {repo}", flush=True)
            print(
                f"Collections: raws {instrument}/raw/all; calibrations {instrument}/calib "
                f"(chain over {instrument}/calib/daily, {bootstrap_collection(instrument)}); "
                "OCPS job outputs u/ocps/<jobId>",
                flush=True,
            )
            print(f"OCPS job logs: {observatory_config.job_log_pattern()}", flush=True)
            print(f"Running {path.name} ({script_class.__name__}) as Script:{args.index}", flush=True)
            state = await run_one_script(
                script_class, index=args.index, config=config, log_level=log_level, domain=domain
            )
        finally:
            await observatory.close()
    print(f"Final state: {state.name}", flush=True)
    return BaseScript.exit_code(state)


def _print_stamped(line: str) -> None:
    """Print a line of the observatory's start-up (a bootstrap's progress) as the script's lines are."""
    print(f"{datetime.datetime.now().strftime('%H:%M:%S')} {line}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(asyncio.run(amain(argv)))
