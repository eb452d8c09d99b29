"""``calibscripts ui``: serve the queue page, with the queue and the observatory if asked.

Also runnable as ``python -m lsst.ts.calibscripts.ui``. Everything runs in
one event loop: the web server, the `QueueBridge`, and (``--with-queue``,
``--simulate``) the ScriptQueue CSC and the simulated observatory.

The web server and the observatory are imported when the command runs,
not when its parser is built, so that ``calibscripts --help`` stays fast.
The start-up it shares with ``calibscripts queue`` (`ServiceCommand`) and
the queue names come from the queue package, which that parser loads
anyway.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PORT", "UI_COMMAND", "UiOptions", "add_ui_arguments", "add_ui_command", "main", "run_ui"]

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import os
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..queue.cli import QUEUE_NAMES
from ..queue.service_cli import ServiceCommand, stop_signals
from ..simulator.executors.settings import (
    ExecutorSettings,
    add_executor_arguments,
    executor_settings_from_args,
)

if TYPE_CHECKING:
    from aiohttp import web

    from ..sal import Domain
    from .access import AccessPolicy

#: Port the page is served on unless ``--port`` says otherwise.
DEFAULT_PORT = 8765

# The queues the page can follow: those the queue command runs.
_QUEUES = tuple(sorted(QUEUE_NAMES))
_INSTRUMENTS = ("LATISS", "LSSTComCam")


@dataclasses.dataclass
class UiOptions:
    """What ``calibscripts ui`` runs.

    Attributes
    ----------
    queue : `str`
        ``ATQueue`` or ``MTQueue``.
    host : `str`
        Address to serve on; the loopback address by default, so that only
        this machine can command the queue. On any other address a token is
        required (see ``token``).
    port : `int`
        Port to serve on; 0 picks a free one.
    with_queue : `bool`
        Run the ScriptQueue in this process too.
    simulate : `str` or None
        Also run the simulated observatory of this instrument.
    geometry : `str`
        Detector geometry of the simulated camera.
    time_scale : `float`
        Wall-clock seconds per simulated observatory second.
    ocps_executor : `~lsst.ts.calibscripts.simulator.executors.settings.ExecutorSettings`
        How the simulated OCPS runs jobs (pipetask by default, or bps).
    var_dir : `pathlib.Path` or None
        Where the simulated observatory keeps its data; None for its
        default (``$CALIBSCRIPTS_VAR_DIR``, else ``var/`` of the checkout).
    standard_dir, external_dir : `pathlib.Path` or None
        Scripts directories of the queue run here.
    open_browser : `bool`
        Open the page in a browser, if this machine has a display.
    allow_hosts : `tuple` [`str`, ...]
        More ``Host`` names the page accepts (``NAME`` with the served
        port, or ``NAME:PORT``), besides the address it serves.
    token : `str` or None
        The token every request must carry. None: a new random one when
        ``host`` is not the loopback interface, none on loopback.
    """

    queue: str = "ATQueue"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    with_queue: bool = False
    simulate: str | None = None
    geometry: str = "full"
    time_scale: float = 1.0
    ocps_executor: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)
    var_dir: Path | None = None
    standard_dir: Path | None = None
    external_dir: Path | None = None
    open_browser: bool = True
    allow_hosts: tuple[str, ...] = ()
    token: str | None = None

    def check(self, domain: Domain) -> None:
        """Refuse combinations that cannot work, saying what to do instead.

        Raises
        ------
        ValueError
            If an option is invalid, or no queue could be reached.
        """
        if self.queue not in _QUEUES:
            raise ValueError(f"Unknown queue {self.queue!r}; use one of {', '.join(_QUEUES)}")
        if self.simulate is not None and self.simulate not in _INSTRUMENTS:
            raise ValueError(f"Cannot simulate {self.simulate!r}; use one of {', '.join(_INSTRUMENTS)}")
        if not self.with_queue and (self.standard_dir or self.external_dir):
            raise ValueError("--standard and --external set up the queue of --with-queue; add --with-queue")
        if not self.with_queue and domain.transport.child_environment() is None:
            raise ValueError(
                "With the in-process transport (the default) only a queue in this process can be "
                "followed: add --with-queue, or set CALIBSCRIPTS_TRANSPORT=redis to follow a queue "
                f"started by 'calibscripts queue {self.queue}' with the same setting"
            )
        self.access_policy()  # raises if --allow-host or --token is unusable

    def access_policy(self) -> AccessPolicy:
        """Return who may use the page: the accepted ``Host`` names and the token.

        Returns
        -------
        policy : `AccessPolicy`
            The policy; with a new random token each call if ``host`` is
            not the loopback interface and no ``token`` is given.

        Raises
        ------
        ValueError
            If an ``allow_hosts`` value or the token is unusable.
        """
        from .access import AccessPolicy

        return AccessPolicy.for_address(self.host, allow_hosts=self.allow_hosts, token=self.token)


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of the ui command to ``parser``."""
    parser.add_argument(
        "--queue", choices=_QUEUES, default="ATQueue", help="queue to follow (default: ATQueue)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1: this machine only; on any other address, 0.0.0.0 "
        "included, every request must carry the token printed at start)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also accept requests for this Host name (a DNS alias, a proxy, an SSH tunnel); without "
        "PORT, with the served port; repeatable. Requests for any other Host are refused",
    )
    parser.add_argument(
        "--token",
        help="the token every request must carry (at least 16 letters, digits, '-', '_', '.' or '~'); "
        "default: a new random one at each start when not on loopback, none on loopback",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)"
    )
    parser.add_argument(
        "--with-queue",
        action="store_true",
        help="run the ScriptQueue in this process too (needed with the default in-process transport)",
    )
    parser.add_argument(
        "--simulate",
        choices=_INSTRUMENTS,
        help="also run the simulated observatory of this instrument, for the calibration scripts",
    )
    parser.add_argument(
        "--geometry", default="full", help="with --simulate: detector geometry: full, reduced (fast) or NXxNY"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="with --simulate: wall-clock seconds per observatory second (default 1)",
    )
    add_executor_arguments(parser, prefix="with --simulate: ")
    parser.add_argument("--standard", type=Path, metavar="DIR", help="with --with-queue: standard scripts")
    parser.add_argument("--external", type=Path, metavar="DIR", help="with --with-queue: external scripts")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")


def _options(args: argparse.Namespace) -> UiOptions:
    return UiOptions(
        queue=args.queue,
        host=args.host,
        port=args.port,
        with_queue=args.with_queue,
        simulate=args.simulate,
        geometry=args.geometry,
        time_scale=args.time_scale,
        ocps_executor=executor_settings_from_args(args),
        standard_dir=args.standard,
        external_dir=args.external,
        open_browser=not args.no_browser,
        allow_hosts=tuple(args.allow_host),
        token=args.token,
    )


async def _run(args: argparse.Namespace) -> int:
    return await run_ui(_options(args))


async def run_ui(
    options: UiOptions, *, stream: TextIO | None = None, stop: asyncio.Event | None = None
) -> int:
    """Serve the queue page until SIGINT or SIGTERM (or ``stop`` is set).

    With ``with_queue``, the page also stops when the queue exits
    (``exitControl``); stopping terminates the queue's scripts.

    Parameters
    ----------
    options : `UiOptions`
        What to run.
    stream : `typing.TextIO`, optional
        Where to print the page's address and what runs; default stdout.
    stop : `asyncio.Event`, optional
        Set it to stop (for callers that run this as a task).

    Returns
    -------
    exit_code : `int`
        0, once the page (and what ran with it) has stopped.

    Raises
    ------
    ValueError
        If the options cannot work together (see `UiOptions.check`).
    RuntimeError
        If the port is in use.
    ConnectionError
        If the transport cannot connect.
    """
    from aiohttp import web

    from ..sal import Domain, State
    from .queue_bridge import QueueBridge
    from .server import make_app

    stream = stream or sys.stdout
    stop = stop or asyncio.Event()
    domain = Domain()
    options.check(domain)
    access = options.access_policy()
    index = int(QUEUE_NAMES[options.queue])
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(domain.close)
        await domain.start()
        suggested_options: dict[str, Any] = {}
        if options.simulate is not None:
            repo = await _start_observatory(options, domain, stack, stream)
            # The scripts' default repo is the summit's; here it must be the simulator's.
            suggested_options["repo"] = str(repo)
        queue_done: asyncio.Future[Any] | None = None
        if options.with_queue:
            from ..queue import ScriptQueue

            queue = ScriptQueue(
                index,
                standard_dir=options.standard_dir,
                external_dir=options.external_dir,
                domain=domain,
                initial_state=State.ENABLED,
            )
            stack.push_async_callback(queue.close)
            await queue.start_task
            queue_done = queue.done_task
        bridge = QueueBridge(domain, index, name=options.queue)
        stack.push_async_callback(bridge.close)
        await bridge.start()
        runner = web.AppRunner(
            make_app(bridge, suggested_options=suggested_options, access=access), access_log=None
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        # Closed before the runner (callbacks run in reverse): open event streams end first.
        stack.callback(bridge.end_subscriptions)
        url = await _serve(runner, options.host, options.port)
        if access.token is not None:
            url += f"?token={access.token}"
        print(_describe(options, index, url, domain, access), file=stream, flush=True)
        if options.open_browser:
            _open_browser(url)
        await _wait_until_stopped(stop, queue_done)
    return 0


async def _start_observatory(
    options: UiOptions, domain: Domain, stack: contextlib.AsyncExitStack, stream: TextIO
) -> Path:
    """Start the simulated observatory (closed by ``stack``); return its repository."""
    # Imported here: the observatory pulls in the Butler.
    from ..simulator.observatory import DEFAULT_VAR_DIR, ObservatoryConfig, SimulatedObservatory

    assert options.simulate is not None
    config = ObservatoryConfig(
        instrument=options.simulate,
        geometry=options.geometry,
        time_scale=options.time_scale,
        var_dir=options.var_dir or DEFAULT_VAR_DIR,
        ocps_executor=options.ocps_executor,
    )
    print(
        f"Starting the simulated {options.simulate} observatory (repository {config.repo_path}; "
        "created on first use)...",
        file=stream,
        flush=True,
    )
    observatory = SimulatedObservatory(config, domain=domain)
    stack.push_async_callback(observatory.close)
    await observatory.start()
    components = ", ".join(c.salinfo.name_index for c in observatory.components.values())
    print(f"Simulated {options.simulate} observatory running: {components}", file=stream, flush=True)
    print(
        f"Calibration scripts must use its repository: the page fills in repo: {config.repo_path}",
        file=stream,
        flush=True,
    )
    return config.repo_path


async def _serve(runner: web.AppRunner, host: str, port: int) -> str:
    """Start serving; return the page's URL.

    Raises
    ------
    RuntimeError
        If the port is in use or the address cannot be used.
    """
    from aiohttp import web

    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RuntimeError(
                f"Port {port} on {host} is in use (another calibscripts ui?): choose another with "
                "--port (0 picks a free one)"
            ) from None
        raise RuntimeError(f"Cannot serve on {host}:{port}: {e.strerror or e}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    if host in ("", "0.0.0.0", "::"):
        shown = socket.gethostname()  # reachable from other machines, by name
    else:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}/"


def _describe(options: UiOptions, index: int, url: str, domain: Domain, access: AccessPolicy) -> str:
    where = "run here" if options.with_queue else "in another process"
    lines = [
        f"Queue page: {url}",
        f"Following {options.queue} (ScriptQueue:{index}, {where}) over the {domain.transport.name} "
        f"transport, topic sub-name {domain.subname}.",
    ]
    if access.token is not None:
        lines.append(
            "Every request must carry the token of this address (keep it private: it commands the "
            "queue); the page keeps it in a cookie once opened."
        )
    stopped = ["the page"]
    if options.with_queue:
        stopped.append("the queue (terminating its scripts)")
    if options.simulate:
        stopped.append("the simulated observatory")
    listed = f"{', '.join(stopped[:-1])} and {stopped[-1]}" if len(stopped) > 1 else stopped[0]
    lines.append(f"Ctrl-C stops {listed}.")
    return "\n".join(lines)


def _open_browser(url: str) -> None:
    """Open ``url`` in a graphical browser if there is a display; never fail, never block.

    Without a display, Python's `webbrowser` falls back to text browsers
    that would take over this terminal: those are not wanted.
    """
    has_display = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not has_display:
        return

    def open_quietly() -> None:
        with contextlib.suppress(Exception):
            webbrowser.open(url, new=2)

    threading.Thread(target=open_quietly, name="open-browser", daemon=True).start()


async def _wait_until_stopped(stop: asyncio.Event, queue_done: asyncio.Future[Any] | None) -> None:
    with stop_signals(stop.set):
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if queue_done is not None:
            waits.append(queue_done)
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            if future is not queue_done:
                future.cancel()


#: ``calibscripts ui`` and ``python -m lsst.ts.calibscripts.ui``.
UI_COMMAND = ServiceCommand(
    name="ui",
    module="lsst.ts.calibscripts.ui",
    help="Serve the queue page (LOVE's ScriptQueue panel) on localhost.",
    description="Serve a LOVE-style ScriptQueue page: available scripts, schema and live-validated "
    "configuration, add, the current, waiting and finished scripts, the running script's log. "
    "Runs until Ctrl-C.",
    summary="Serve the queue page (LOVE's ScriptQueue panel).",
    add_arguments=add_ui_arguments,
    run=_run,
    # RuntimeError: the port is in use, or the address cannot be served.
    errors=(ConnectionError, ValueError, RuntimeError),
)
#: Add the ``ui`` command to the ``calibscripts`` sub-command parsers
#: (`ServiceCommand.add_to`).
add_ui_command = UI_COMMAND.add_to
#: Serve the queue page from the command line; return the exit code
#: (`ServiceCommand.main`).
main = UI_COMMAND.main
