"""QueueBridge: follow one ScriptQueue and its scripts over the kernel, and command it.

This is the page's only contact with the observatory: a `Remote` of
``ScriptQueue:<index>`` (its ``queue``, ``script``, ``availableScripts``,
``configSchema``, summary state, heartbeat and log) and one `Remote` of
``Script:0`` (every script's ``state``, ``metadata``, ``description`` and
``logMessage``), exactly the events LOVE follows. It keeps what the page
shows and hands every change to its subscribers as an `Update`.

What the queue's state is, and which scripts are the queue's, the bridge
reads with the queue's own definitions (`QueueState`, `script_indices`,
`ScriptRequest`): the queue model is their one source, whether the queue
runs in this process or another.
"""

from __future__ import annotations

__all__ = [
    "COMMAND_TIMEOUT",
    "HEARTBEAT_TIMEOUT",
    "MAX_LOG_MESSAGES",
    "QueueBridge",
    "QueueCommandError",
    "Subscription",
    "Update",
]

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal

from ..queue.queue_model import MAX_QUEUE_LENGTH, QueueState, script_indices
from ..queue.script_info import ScriptRequest
from ..queue.script_queue import SCHEMA_TIMEOUT
from ..sal import (
    AckCmd,
    AckError,
    AckTimeoutError,
    BaseMessage,
    Domain,
    Location,
    Remote,
    State,
)
from ..sal.timestamps import current_tai
from .script_view import ScriptView

#: A queue whose last heartbeat is older than this (s) is shown as not
#: running, and commands to it are refused at once instead of timing out.
HEARTBEAT_TIMEOUT = 10.0
#: Time for a command to be acknowledged (s); ``add`` and ``requeue`` are
#: extended by the queue's in-progress acknowledgement while the script loads.
COMMAND_TIMEOUT = 10.0
#: Log messages kept per script (and for the queue), oldest dropped first.
MAX_LOG_MESSAGES = 5000
#: Updates a subscriber may have pending; one that falls further behind is
#: ended, and starts again from a snapshot (the page reconnects by itself).
MAX_PENDING_UPDATES = 10_000
#: Scripts remembered; beyond it, scripts the queue no longer lists are forgotten.
MAX_SCRIPTS = 1000

UpdateKind = Literal["queue", "script", "log", "available", "results"]

_log = logging.getLogger(__name__)


class QueueCommandError(Exception):
    """A command to the queue did not succeed; the message says why.

    Parameters
    ----------
    message : `str`
        What happened, for the operator (the queue's own reason if it
        refused the command).
    reason : ``"refused"``, ``"timeout"`` or ``"unavailable"``
        The queue refused the command, did not answer in time, or is not
        running (so the command was not sent).
    """

    def __init__(self, message: str, reason: Literal["refused", "timeout", "unavailable"]) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Update:
    """One change, as the page receives it.

    Attributes
    ----------
    kind : `str`
        ``queue`` (the queue's state and lists), ``script`` (one
        `ScriptView`), ``log`` (one log message), ``available`` (the
        available scripts) or ``results`` (one script's verification
        results and report, from `~lsst.ts.calibscripts.ui.reports.ReportService`).
    data : `dict`
        JSON-compatible content.
    """

    kind: UpdateKind
    data: dict[str, Any]


class Subscription:
    """The updates of one follower (a page), in order.

    Parameters
    ----------
    max_pending : `int`
        Updates that may wait; past that the subscription ends (see
        `overflowed`) rather than holding memory for a stalled follower.
    """

    def __init__(self, max_pending: int = MAX_PENDING_UPDATES) -> None:
        self._updates: asyncio.Queue[Update | None] = asyncio.Queue()
        self._max_pending = max_pending
        self.overflowed = False
        self.closed = False

    def put(self, update: Update) -> None:
        """Queue an update (never blocks)."""
        if self.closed:
            return
        if self._updates.qsize() >= self._max_pending:
            self.overflowed = True
            self.close()
            return
        self._updates.put_nowait(update)

    async def get(self) -> Update | None:
        """Return the next update; None once the subscription has ended."""
        if self.closed and self._updates.empty():
            return None
        return await self._updates.get()

    def close(self) -> None:
        """End the subscription; `get` returns what is queued, then None."""
        if not self.closed:
            self.closed = True
            self._updates.put_nowait(None)


class QueueBridge:
    """Follow a ScriptQueue and its scripts; send it commands.

    Parameters
    ----------
    domain : `Domain`
        Domain to use; its transport must reach the queue.
    index : `int`
        SAL index of the queue (1 MTQueue, 2 ATQueue).
    name : `str`, optional
        Name to show, e.g. ``ATQueue``; default ``ScriptQueue:<index>``.

    Notes
    -----
    Scripts of queue N have SAL indices N*100000+1 ... N*100000+99999;
    messages of other scripts are ignored. Log messages written before the
    bridge started are lost, except the last of each script (late joiner).
    """

    def __init__(self, domain: Domain, index: int, *, name: str | None = None) -> None:
        self.domain = domain
        self.index = index
        self.name = name or f"ScriptQueue:{index}"
        self._script_indices = script_indices(index)
        self._queue_remote = Remote(
            domain,
            "ScriptQueue",
            index,
            include=[
                "availableScripts",
                "configSchema",
                "queue",
                "script",
                "summaryState",
                "heartbeat",
                "logMessage",
            ],
            start=False,
        )
        self._script_remote = Remote(
            domain,
            "Script",
            0,
            readonly=True,
            include=["state", "metadata", "description", "logMessage"],
            start=False,
        )
        self._summary_state: State | None = None
        self._last_heartbeat = 0.0  # TAI send time of the last heartbeat
        self._alive = False
        # As the queue's last ``queue`` event said (nothing heard yet: empty).
        self._queue_state = QueueState()
        self._available: tuple[list[str], list[str]] | None = None
        self._views: dict[int, ScriptView] = {}
        # The configuration of each script added (or requeued) from this bridge.
        self._configs: dict[int, str] = {}
        self._logs: dict[int, collections.deque[dict[str, Any]]] = {}
        self._log_seq = 0
        self._available_waiters: list[asyncio.Future[dict[str, list[str]]]] = []
        self._schemas: dict[tuple[bool, str], str] = {}
        self._schema_waiters: dict[tuple[bool, str], list[asyncio.Future[str]]] = {}
        # Done once the scripts listed when the bridge started are known (see _catch_up).
        self._caught_up = False
        self._catch_up_task: asyncio.Task[None] | None = None
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = False

    # --- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start following the queue and its scripts."""
        queue = self._queue_remote
        queue.evt_queue.callback = self._on_queue
        queue.evt_script.callback = self._script_follower(ScriptView.update_from_queue, "scriptSalIndex")
        queue.evt_availableScripts.callback = self._on_available_scripts
        queue.evt_configSchema.callback = self._on_config_schema
        queue.evt_summaryState.callback = self._on_summary_state
        queue.evt_heartbeat.callback = self._on_heartbeat
        queue.evt_logMessage.callback = self._on_log_message
        scripts = self._script_remote
        scripts.evt_state.callback = self._script_follower(ScriptView.update_from_state)
        scripts.evt_metadata.callback = self._script_follower(ScriptView.update_from_metadata)
        scripts.evt_description.callback = self._script_follower(ScriptView.update_from_description)
        scripts.evt_logMessage.callback = self._on_log_message
        await self._script_remote.start()
        await self._queue_remote.start()
        self._watchdog = asyncio.create_task(self._watch_heartbeat())

    async def close(self) -> None:
        """Stop following; end every subscription. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.end_subscriptions()
        tasks = [*self._tasks, *([self._watchdog] if self._watchdog is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._queue_remote.close()
        await self._script_remote.close()

    async def __aenter__(self) -> QueueBridge:
        await self.start()
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- what the page shows -------------------------------------------------

    @property
    def alive(self) -> bool:
        """Has the queue sent a heartbeat within `HEARTBEAT_TIMEOUT`?"""
        return current_tai() - self._last_heartbeat < HEARTBEAT_TIMEOUT

    def queue_json(self) -> dict[str, Any]:
        """Return the queue's state: summary state, liveness, running, the lists."""
        state = self._queue_state
        return {
            "name": self.name,
            "salIndex": self.index,
            "summaryState": self._summary_state.name if self._summary_state is not None else "UNKNOWN",
            "alive": self.alive,
            "enabled": state.enabled,
            "running": state.running,
            "currentSalIndex": state.current,
            "waiting": list(state.waiting),
            "past": list(state.past),
        }

    def available_json(self) -> dict[str, list[str]] | None:
        """Return the available scripts, or None if the queue has not said yet."""
        if self._available is None:
            return None
        standard, external = self._available
        return {"standard": standard, "external": external}

    def snapshot(self) -> dict[str, Any]:
        """Return everything the page shows, but the logs (see `log_messages`).

        ``serverTai`` is the bridge's current TAI time, so that a page can
        show elapsed times whatever its own clock says.
        """
        return {
            "serverTai": current_tai(),
            "queue": self.queue_json(),
            "available": self.available_json(),
            "scripts": [view.to_json() for view in self._views.values()],
        }

    def script_view(self, sal_index: int) -> ScriptView | None:
        """Return what is known of a script, or None."""
        return self._views.get(sal_index)

    def script_config(self, sal_index: int) -> str | None:
        """Return the configuration a script was added with from this bridge, or None."""
        return self._configs.get(sal_index)

    def publish(self, kind: UpdateKind, data: dict[str, Any]) -> None:
        """Hand an update to every subscriber (the report service's ``results``).

        Parameters
        ----------
        kind : `str`
            What changed (see `Update`).
        data : `dict`
            JSON-compatible content.
        """
        self._publish(kind, data)

    def log_messages(self, sal_index: int) -> list[dict[str, Any]]:
        """Return the log messages kept for a script (or the queue: its own index), oldest first.

        Each has ``seq`` (increasing across all messages, to merge with
        live updates), ``salIndex``, ``level``, ``levelName``, ``name``,
        ``message``, ``traceback`` and ``timestamp`` (TAI).
        """
        return list(self._logs.get(sal_index, ()))

    def subscribe(self) -> Subscription:
        """Return a new subscription to every update."""
        subscription = Subscription()
        if self._closed:
            subscription.close()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """End a subscription."""
        subscription.close()
        self._subscriptions.discard(subscription)

    def end_subscriptions(self) -> None:
        """End every subscription (the server is shutting down); new ones may follow."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()

    # --- commands ------------------------------------------------------------

    async def show_available_scripts(self) -> dict[str, list[str]]:
        """Ask the queue for its scripts; return them.

        Raises
        ------
        QueueCommandError
            If the command fails.
        """
        return await self._ask(self._available_waiters, "showAvailableScripts", "availableScripts")

    async def show_schema(self, is_standard: bool, path: str, *, refresh: bool = False) -> str:
        """Return a script's configuration schema (YAML; blank if it takes none).

        Parameters
        ----------
        is_standard : `bool`
            Standard (else external) script?
        path : `str`
            Path relative to its scripts directory.
        refresh : `bool`, optional
            Ask the queue even if the schema is known.

        Raises
        ------
        QueueCommandError
            If there is no such script, or it cannot print its schema.
        """
        key = (is_standard, path)
        if not refresh and key in self._schemas:
            return self._schemas[key]
        return await self._ask(
            self._schema_waiters.setdefault(key, []),
            "showSchema",
            "configSchema",
            about=f" for {path}",
            timeout=SCHEMA_TIMEOUT + COMMAND_TIMEOUT,
            isStandard=is_standard,
            path=path,
        )

    async def add(
        self, request: ScriptRequest, *, location: Location = Location.LAST, location_sal_index: int = 0
    ) -> int:
        """Add a script to the queue; return its SAL index once it is configured.

        Parameters
        ----------
        request : `ScriptRequest`
            The script, its configuration and how it is run.
        location : `Location`, optional
            Where it goes (LAST by default).
        location_sal_index : `int`, optional
            The waiting script it goes BEFORE or AFTER.

        Raises
        ------
        QueueCommandError
            If the queue refuses the script (the message has the queue's
            reason, e.g. the script's own configuration error).
        """
        ack = await self._command(
            "add", **request.command_fields(), location=int(location), locationSalIndex=location_sal_index
        )
        self._configs[int(ack.result)] = request.config
        return int(ack.result)

    async def requeue(
        self, sal_index: int, *, location: Location = Location.LAST, location_sal_index: int = 0
    ) -> int:
        """Add a copy of a script (same configuration); return the copy's SAL index.

        Raises
        ------
        QueueCommandError
            If the command fails.
        """
        ack = await self._command(
            "requeue",
            scriptSalIndex=sal_index,
            location=int(location),
            locationSalIndex=location_sal_index,
        )
        if sal_index in self._configs:
            self._configs[int(ack.result)] = self._configs[sal_index]
        return int(ack.result)

    async def move(self, sal_index: int, *, location: Location, location_sal_index: int = 0) -> None:
        """Move a waiting script.

        Raises
        ------
        QueueCommandError
            If the command fails.
        """
        await self._command(
            "move", scriptSalIndex=sal_index, location=int(location), locationSalIndex=location_sal_index
        )

    async def stop_scripts(self, sal_indices: Sequence[int], *, terminate: bool = False) -> None:
        """Stop (or terminate) scripts; waiting ones just leave the queue.

        Raises
        ------
        ValueError
            If there are no indices, or more than the command can carry.
        QueueCommandError
            If the command fails.
        """
        if not 1 <= len(sal_indices) <= MAX_QUEUE_LENGTH:
            raise ValueError(f"Give 1 to {MAX_QUEUE_LENGTH} scripts to stop, not {len(sal_indices)}")
        await self._command(
            "stopScripts", length=len(sal_indices), salIndices=list(sal_indices), terminate=terminate
        )

    async def pause(self) -> None:
        """Pause the queue: the running script goes on, no new one starts.

        Raises
        ------
        QueueCommandError
            If the command fails.
        """
        await self._command("pause")

    async def resume(self) -> None:
        """Resume the queue: it runs its next script once that one is configured.

        This is also how an operator goes on after a failed script, which
        pauses the queue.

        Raises
        ------
        QueueCommandError
            If the command fails.
        """
        await self._command("resume")

    async def _ask[T](
        self,
        waiters: list[asyncio.Future[T]],
        name: str,
        answer: str,
        *,
        about: str = "",
        timeout: float = COMMAND_TIMEOUT,
        **fields: Any,
    ) -> T:
        """Send a command that the queue answers with an event; return what the event brings.

        Parameters
        ----------
        waiters : `list` [`asyncio.Future`]
            Where the event's callback finds the futures to set.
        name : `str`
            The command.
        answer : `str`
            The event that answers it.
        about : `str`, optional
            What the command asks about, for the error message: a leading
            space and words (``" for examples/sleep.py"``).
        timeout : `float`, optional
            Time for the command to be acknowledged (s).
        **fields
            The command's fields.

        Raises
        ------
        QueueCommandError
            If the command fails, or the event does not follow within
            `COMMAND_TIMEOUT` of the acknowledgement.
        """
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await self._command(name, timeout=timeout, **fields)
            # The queue writes the event before it acknowledges, but the two
            # travel separately: the event may still be on its way.
            async with asyncio.timeout(COMMAND_TIMEOUT):
                return await waiter
        except TimeoutError:
            raise QueueCommandError(
                f"{self.name} acknowledged {name}{about} but sent no {answer}", "timeout"
            ) from None
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    async def _command(self, name: str, *, timeout: float = COMMAND_TIMEOUT, **fields: Any) -> AckCmd:
        if not self.alive:
            raise QueueCommandError(
                f"{self.name} ({self._queue_remote.salinfo.name_index}) is not running: "
                f"{self._heartbeat_news()}; is it started, on the same transport "
                f"({self.domain.transport.name}) and topic sub-name ({self.domain.subname})?",
                "unavailable",
            )
        command = getattr(self._queue_remote, f"cmd_{name}")
        try:
            return await command.set_start(timeout=timeout, **fields)
        except AckTimeoutError:
            message = f"{self.name} did not answer {name} within {timeout:g} s"
            raise QueueCommandError(message, "timeout") from None
        except AckError as e:
            result = e.ackcmd.result.removeprefix("Failed: ")
            raise QueueCommandError(result or f"{self.name} refused {name}", "refused") from None

    def _heartbeat_news(self) -> str:
        if self._last_heartbeat == 0:
            return "no heartbeat seen"
        return f"no heartbeat for {current_tai() - self._last_heartbeat:.0f} s"

    # --- following -----------------------------------------------------------

    def _publish(self, kind: UpdateKind, data: dict[str, Any]) -> None:
        update = Update(kind, data)
        for subscription in list(self._subscriptions):
            subscription.put(update)
            if subscription.closed:
                self._subscriptions.discard(subscription)

    def _is_ours(self, sal_index: int) -> bool:
        return sal_index in self._script_indices

    def _view(self, sal_index: int) -> ScriptView:
        view = self._views.get(sal_index)
        if view is None:
            view = self._views[sal_index] = ScriptView(sal_index)
        return view

    def _on_queue(self, data: BaseMessage) -> None:
        self._queue_state = QueueState.from_event(data)
        self._publish("queue", self.queue_json())
        listed = self._queue_state.listed
        self._forget_unlisted(listed)
        if not self._caught_up:
            self._catch_up(listed)

    def _script_follower(
        self, merge: Callable[[ScriptView, BaseMessage], None], index_field: str = "salIndex"
    ) -> Callable[[BaseMessage], None]:
        """Return the callback of an event that describes one script.

        Parameters
        ----------
        merge : callable
            ``merge(view, data)`` merges the event into the script's view
            (one of the ``ScriptView.update_from_*`` methods).
        index_field : `str`, optional
            The event's field with the script's SAL index: the queue's
            ``script`` event names it ``scriptSalIndex``, the script's own
            events ``salIndex``.
        """

        def follow(data: BaseMessage) -> None:
            sal_index = getattr(data, index_field)
            if self._is_ours(sal_index):
                view = self._view(sal_index)
                merge(view, data)
                self._publish("script", view.to_json())

        return follow

    def _on_log_message(self, data: BaseMessage) -> None:
        # The queue's own messages carry its index, scripts' theirs: one namespace.
        if data.salIndex != self.index and not self._is_ours(data.salIndex):
            return
        self._log_seq += 1
        entry = {
            "seq": self._log_seq,
            "salIndex": data.salIndex,
            "level": data.level,
            "levelName": logging.getLevelName(data.level),
            "name": data.name,
            "message": data.message,
            "traceback": data.traceback,
            "timestamp": data.timestamp or data.private_sndStamp,
        }
        log = self._logs.get(data.salIndex)
        if log is None:
            log = self._logs[data.salIndex] = collections.deque(maxlen=MAX_LOG_MESSAGES)
        log.append(entry)
        self._publish("log", entry)

    def _on_available_scripts(self, data: BaseMessage) -> None:
        self._available = (_split_paths(data.standard), _split_paths(data.external))
        available = self.available_json()
        assert available is not None
        self._publish("available", available)
        for waiter in self._available_waiters:
            if not waiter.done():
                waiter.set_result(available)
        self._available_waiters.clear()

    def _on_config_schema(self, data: BaseMessage) -> None:
        key = (data.isStandard, data.path)
        self._schemas[key] = data.configSchema
        for waiter in self._schema_waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(data.configSchema)

    def _on_summary_state(self, data: BaseMessage) -> None:
        try:
            self._summary_state = State(data.summaryState)
        except ValueError:
            self._summary_state = None
        self._publish("queue", self.queue_json())

    def _on_heartbeat(self, data: BaseMessage) -> None:
        self._last_heartbeat = max(self._last_heartbeat, data.private_sndStamp)
        self._check_alive()

    def _check_alive(self) -> None:
        alive = self.alive
        if alive != self._alive:
            self._alive = alive
            self._publish("queue", self.queue_json())

    async def _watch_heartbeat(self) -> None:
        """Notice a queue that stops sending heartbeats."""
        while True:
            self._check_alive()
            await asyncio.sleep(1)

    def _forget_unlisted(self, listed: set[int]) -> None:
        """Keep memory bounded: forget scripts the queue no longer lists, beyond `MAX_SCRIPTS`."""
        if len(self._views) <= MAX_SCRIPTS:
            return
        for sal_index in sorted(self._views):
            if len(self._views) <= MAX_SCRIPTS:
                break
            if sal_index not in listed:
                del self._views[sal_index]
                self._logs.pop(sal_index, None)
                self._configs.pop(sal_index, None)

    def _catch_up(self, listed: Iterable[int]) -> None:
        """Ask for the ``script`` event of the listed scripts the bridge has not heard of.

        Those are the scripts added before the bridge started: a late
        joiner receives only the latest ``script`` event. Scripts added
        later announce themselves, so this is done until it has succeeded
        once (a queue that does not answer is asked again at its next
        ``queue`` event).
        """
        if self._closed or (self._catch_up_task is not None and not self._catch_up_task.done()):
            return
        unknown = sorted(index for index in listed if not (index in self._views and self._views[index].path))
        if not unknown:
            self._caught_up = True
            return
        self._catch_up_task = asyncio.create_task(self._show_scripts(unknown))
        self._tasks.add(self._catch_up_task)
        self._catch_up_task.add_done_callback(self._tasks.discard)

    async def _show_scripts(self, sal_indices: list[int]) -> None:
        # One at a time, newest first: the page lists those first.
        for sal_index in reversed(sal_indices):
            try:
                await self._command("showScript", scriptSalIndex=sal_index)
            except QueueCommandError as e:
                if e.reason != "refused":
                    _log.debug("%s did not show its scripts (%s); asking again later", self.name, e)
                    return
                _log.debug("%s has no script %s: %s", self.name, sal_index, e)
        self._caught_up = True


def _split_paths(text: str) -> list[str]:
    return [path for path in text.split(":") if path]
