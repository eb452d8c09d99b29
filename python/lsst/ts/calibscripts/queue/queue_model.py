"""QueueModel: the ordered queue of scripts, and the policy that runs them.

Also what every follower of a queue reads the same way: `QueueState` (the
``queue`` event: waiting, current and finished scripts) and
`script_indices` (which SAL indices are a queue's scripts). The model writes
them; the queue page's bridge reads them back from the events.
"""

from __future__ import annotations

__all__ = [
    "MAX_HISTORY",
    "MAX_QUEUE_INDEX",
    "MAX_QUEUE_LENGTH",
    "SCRIPT_INDEX_MULT",
    "QueueModel",
    "QueueState",
    "find_scripts",
    "resolve_script",
    "script_indices",
]

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ..sal import AckError, BaseMessage, Domain, ExpectedError, Location, Remote
from ..sal.timestamps import TAI_MINUS_UTC
from .launcher import ScriptLauncher
from .script_info import ScriptInfo, ScriptRequest

#: Scripts launched by queue N get SAL indices N * SCRIPT_INDEX_MULT + k.
SCRIPT_INDEX_MULT = 100_000
#: Largest queue SAL index: its largest script index must fit a SAL ``int``
#: (32 bits).
MAX_QUEUE_INDEX = (2**31 - 1) // SCRIPT_INDEX_MULT - 1
#: Most scripts waiting in the queue: the size of the ``queue`` event's
#: ``salIndices`` array.
MAX_QUEUE_LENGTH = 400
#: Finished scripts remembered (for ``showScript``, ``requeue`` and the
#: ``queue`` event's ``pastSalIndices``), newest first.
MAX_HISTORY = 400


def script_indices(queue_index: int) -> range:
    """Return the SAL indices of the scripts of a queue, in the order given.

    Parameters
    ----------
    queue_index : `int`
        SAL index of the queue (1 MTQueue, 2 ATQueue).

    Returns
    -------
    indices : `range`
        ``queue_index * 100000 + 1`` ... ``queue_index * 100000 + 99999``.
    """
    first = queue_index * SCRIPT_INDEX_MULT + 1
    return range(first, first + SCRIPT_INDEX_MULT - 1)


@dataclasses.dataclass(frozen=True)
class QueueState:
    """The queue's flags and lists, as the ScriptQueue ``queue`` event carries them.

    `QueueModel.state` makes it, the CSC writes it with `event_fields`, and
    a follower in any process reads it back with `from_event`: one
    definition of what the event means on both sides.

    The defaults describe a queue nothing has been heard from: disabled,
    paused, empty.

    Attributes
    ----------
    enabled : `bool`
        May scripts be started (the CSC is ENABLED)?
    running : `bool`
        Is the queue running (not paused)?
    current : `int`
        SAL index of the running script; 0 if none.
    waiting : `tuple` [`int`, ...]
        SAL indices of the waiting scripts, in the order they will run.
    past : `tuple` [`int`, ...]
        SAL indices of finished scripts, newest first.
    """

    enabled: bool = False
    running: bool = False
    current: int = 0
    waiting: tuple[int, ...] = ()
    past: tuple[int, ...] = ()

    @classmethod
    def from_event(cls, data: BaseMessage) -> QueueState:
        """Return the state a ``queue`` event carries."""
        return cls(
            enabled=bool(data.enabled),
            running=bool(data.running),
            current=data.currentSalIndex,
            waiting=tuple(data.salIndices[: data.length]),
            past=tuple(data.pastSalIndices[: data.pastLength]),
        )

    def event_fields(self) -> dict[str, Any]:
        """Return the fields of the ``queue`` event (SAL arrays padded with zeros)."""
        return dict(
            enabled=self.enabled,
            running=self.running,
            currentSalIndex=self.current,
            length=len(self.waiting),
            salIndices=_padded(self.waiting, MAX_QUEUE_LENGTH),
            pastLength=len(self.past),
            pastSalIndices=_padded(self.past, MAX_HISTORY),
        )

    @property
    def listed(self) -> set[int]:
        """SAL indices of every script the queue lists: waiting, current and past."""
        return {*self.waiting, self.current, *self.past} - {0}


def find_scripts(root: Path) -> list[str]:
    """Return the scripts under ``root``, as the queue offers them.

    A script is an executable ``*.py`` file; files and directories whose
    names start with ``.`` or ``_`` are skipped.

    Returns
    -------
    paths : `list` [`str`]
        Paths relative to ``root`` (POSIX separators), sorted.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(".py") and not name.startswith((".", "_")) and os.access(path, os.X_OK):
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def resolve_script(root: Path, path: str) -> Path:
    """Return the executable for ``path`` relative to ``root``.

    Raises
    ------
    ExpectedError
        If ``path`` is absolute, leads outside ``root``, or is not an
        executable script file.
    """
    if not path or Path(path).is_absolute():
        raise ExpectedError(f"Script path {path!r} must be relative to the scripts directory {root}")
    full_path = (root / path).resolve()
    if not full_path.is_relative_to(root.resolve()):
        raise ExpectedError(f"Script path {path!r} leads outside the scripts directory {root}")
    if not full_path.is_file():
        raise ExpectedError(f"No script {path!r} in {root}")
    if not os.access(full_path, os.X_OK):
        raise ExpectedError(f"Script {path!r} in {root} is not executable")
    return full_path


def _tai_iso_now() -> str:
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=TAI_MINUS_UTC)
    return now.replace(tzinfo=None).isoformat(timespec="milliseconds")


class QueueModel:
    """Scripts waiting, running and finished, and the rules that move them.

    The queue runs its top script when it is enabled, running (not
    paused), no script is running and the top script is configured; one
    script at a time. A script that fails pauses the queue (``running``
    False) until `resume`. Scripts are loaded and configured as soon as
    they are added, so they are ready when their turn comes.

    Parameters
    ----------
    domain : `Domain`
        The queue's domain.
    launcher : `ScriptLauncher`
        Starts scripts.
    sal_indices : `range`
        SAL indices given to scripts, in order, never reused (see
        `script_indices`).
    standard_dir : `pathlib.Path`
        Directory of standard scripts.
    external_dir : `pathlib.Path` or None
        Directory of external scripts, if any.
    log : `logging.Logger`
        The queue's logger.
    queue_callback : callable
        ``await queue_callback()`` when the queue (order, current script,
        history, enabled or running) changes.
    script_callback : callable
        ``await script_callback(script_info)`` when a script changes.

    Attributes
    ----------
    queue : `list` [`ScriptInfo`]
        Scripts waiting, in the order they will run.
    current : `ScriptInfo` or None
        The script that is running.
    history : `list` [`ScriptInfo`]
        Finished scripts, newest first.
    enabled : `bool`
        May scripts be started (the CSC is ENABLED)?
    running : `bool`
        Is the queue running (not paused)?
    load_timeout : `float`
        Time for a new script to report that it is ready (s).
    configure_timeout : `float`
        Time for a script to be configured (s).
    stop_timeout : `float`
        Time for a stopped script to end before it is terminated (s).
    """

    def __init__(
        self,
        *,
        domain: Domain,
        launcher: ScriptLauncher,
        sal_indices: range,
        standard_dir: Path,
        external_dir: Path | None,
        log: logging.Logger,
        queue_callback: Callable[[], Awaitable[None]],
        script_callback: Callable[[ScriptInfo], Awaitable[None]],
    ) -> None:
        self.domain = domain
        self.launcher = launcher
        self.sal_indices = sal_indices
        self.standard_dir = standard_dir
        self.external_dir = external_dir
        self.log = log
        self.queue_callback = queue_callback
        self.script_callback = script_callback
        self.queue: list[ScriptInfo] = []
        self.current: ScriptInfo | None = None
        self.history: list[ScriptInfo] = []
        self.enabled = False
        self.running = True
        self.load_timeout = 60.0
        self.configure_timeout = 60.0
        self.stop_timeout = 5.0
        self._next_index = sal_indices.start
        # Every script the queue knows (waiting, current, loading or in history).
        self._scripts: dict[int, ScriptInfo] = {}
        self._watch_tasks: set[asyncio.Task[None]] = set()
        self._update_lock = asyncio.Lock()
        # Every script's state, from one Remote of index 0 ("all scripts").
        self._state_remote = Remote(
            domain, "Script", 0, readonly=True, include=["state"], evt_max_history=0, start=False
        )
        self._state_remote.evt_state.callback = self._on_script_state

    async def start(self) -> None:
        """Start following the scripts' states."""
        await self._state_remote.start()

    async def close(self) -> None:
        """Terminate every script that has not ended, and stop following states."""
        self.enabled = False
        await self.terminate_all()
        await self._state_remote.close()

    # --- queries -------------------------------------------------------------

    def available_scripts(self) -> tuple[list[str], list[str]]:
        """Return the standard and external scripts (relative paths)."""
        external = find_scripts(self.external_dir) if self.external_dir is not None else []
        return find_scripts(self.standard_dir), external

    def full_path(self, is_standard: bool, path: str) -> Path:
        """Return the executable of a standard or external script.

        Raises
        ------
        ExpectedError
            If there is no such script.
        """
        if is_standard:
            return resolve_script(self.standard_dir, path)
        if self.external_dir is None:
            raise ExpectedError(f"No external scripts directory: cannot find external script {path!r}")
        return resolve_script(self.external_dir, path)

    def get_script_info(self, sal_index: int, *, search_history: bool = True) -> ScriptInfo:
        """Return a script of the queue by SAL index.

        Raises
        ------
        ExpectedError
            If the queue has no such script (waiting, loading or running,
            or finished if ``search_history``).
        """
        info = self._scripts.get(sal_index)
        if info is None or (not search_history and info in self.history):
            where = "in this queue" if search_history else "waiting or running"
            raise ExpectedError(f"No script with SAL index {sal_index} {where}")
        return info

    def state(self) -> QueueState:
        """Return the queue's flags and lists now (what the ``queue`` event says)."""
        return QueueState(
            enabled=self.enabled,
            running=self.running,
            current=self.current.index if self.current is not None else 0,
            waiting=tuple(info.index for info in self.queue),
            past=tuple(info.index for info in self.history),
        )

    # --- commands ------------------------------------------------------------

    async def add(
        self, request: ScriptRequest, *, location: int = Location.LAST, location_sal_index: int = 0
    ) -> ScriptInfo:
        """Add a script, start it and configure it; return it once configured.

        The script enters the queue at once (so it shows while it loads)
        and runs when its turn comes.

        Parameters
        ----------
        request : `ScriptRequest`
            The script, its configuration and how it is run.
        location : `int`, optional
            Where it goes: a `Location` (LAST by default).
        location_sal_index : `int`, optional
            The waiting script it goes BEFORE or AFTER.

        Raises
        ------
        ExpectedError
            If the script or location is invalid, the queue is full, or the
            script could not be loaded or configured (it then leaves the
            queue for the history).
        """
        full_path = self.full_path(request.is_standard, request.path)
        if len(self.queue) >= MAX_QUEUE_LENGTH:
            raise ExpectedError(f"The queue is full ({MAX_QUEUE_LENGTH} scripts waiting)")
        position = self._insert_position(location, location_sal_index)
        if self._next_index not in self.sal_indices:
            raise ExpectedError(
                f"No SAL index left for scripts (all of {self.sal_indices.start}..{self.sal_indices[-1]} "
                "used); restart the queue"
            )
        info = ScriptInfo(
            index=self._next_index,
            request=request,
            full_path=full_path,
            on_change=self.script_callback,
            log=self.log,
        )
        self._next_index += 1
        self._scripts[info.index] = info
        self.queue.insert(position, info)
        self.log.info("Adding %s", info.name)
        await self.queue_callback()
        watch = asyncio.create_task(self._watch(info))
        self._watch_tasks.add(watch)
        watch.add_done_callback(self._watch_tasks.discard)
        try:
            await info.load(self.domain, self.launcher, self.load_timeout)
            await info.configure(self.configure_timeout)
        except ExpectedError:
            # The command fails with the reason (and the CSC logs it).
            # A script that failed to configure exits by itself; make sure.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(info.done_task), self.stop_timeout)
            await info.terminate()
            await self._script_ended(info)
            raise
        await self._update()
        return info

    async def requeue(self, sal_index: int, location: int, location_sal_index: int) -> ScriptInfo:
        """Add a copy of a script (waiting, running or finished), same configuration.

        Raises
        ------
        ExpectedError
            As for `add`, or if there is no such script.
        """
        original = self.get_script_info(sal_index)
        self.log.info("Requeueing %s", original.name)
        return await self.add(original.request, location=location, location_sal_index=location_sal_index)

    async def move(self, sal_index: int, location: int, location_sal_index: int) -> None:
        """Move a waiting script.

        Raises
        ------
        ExpectedError
            If the script is not waiting, or the location is invalid.
        """
        info = self.get_script_info(sal_index)
        if info not in self.queue:
            state = "running" if info is self.current else "finished"
            raise ExpectedError(f"Cannot move {info.name}: it is {state}; only waiting scripts can be moved")
        if location in (Location.BEFORE, Location.AFTER) and location_sal_index == sal_index:
            return  # before or after itself: where it is
        old_position = self.queue.index(info)
        self.queue.remove(info)
        try:
            position = self._insert_position(location, location_sal_index)
        except ExpectedError:
            self.queue.insert(old_position, info)
            raise
        self.queue.insert(position, info)
        await self.queue_callback()
        await self._update()

    async def stop_scripts(self, sal_indices: Iterable[int], *, terminate: bool) -> None:
        """Stop (or terminate) waiting or running scripts.

        Waiting scripts leave the queue at once. ``terminate`` ends the
        scripts without their cooperation; otherwise each is sent ``stop``
        and terminated if it has not ended within `stop_timeout`.

        Raises
        ------
        ExpectedError
            If an index is not a script of this queue (none is stopped).
        """
        infos = [self.get_script_info(index) for index in sal_indices]
        infos = [info for info in infos if not info.process_done]
        for info in infos:
            if info in self.queue:
                self.queue.remove(info)
        await self.queue_callback()
        await asyncio.gather(
            *(info.terminate() if terminate else info.stop(self.stop_timeout) for info in infos)
        )

    async def terminate_all(self) -> None:
        """Terminate the running script and every waiting one."""
        infos = [info for info in self._scripts.values() if not info.process_done]
        if infos:
            self.log.info("Terminating %d script(s)", len(infos))
            self.queue.clear()
            await self.queue_callback()
            await asyncio.gather(*(info.terminate() for info in infos))

    async def pause(self) -> None:
        """Pause: the running script goes on; no new script starts."""
        self.running = False
        await self.queue_callback()

    async def resume(self) -> None:
        """Resume: run the next script when ready."""
        self.running = True
        await self.queue_callback()
        await self._update()

    async def set_enabled(self, enabled: bool) -> None:
        """Allow or forbid starting scripts (follows the CSC's summary state)."""
        self.enabled = enabled
        await self.queue_callback()
        await self._update()

    # --- running -------------------------------------------------------------

    async def _update(self) -> None:
        """Start the top script if its turn has come."""
        async with self._update_lock:
            if not (self.enabled and self.running and self.current is None and self.queue):
                return
            info = self.queue[0]
            if not info.runnable:
                return  # still loading; _update runs again once it is configured
            self.queue.pop(0)
            self.current = info
            await self.queue_callback()
            self.log.info("Running %s", info.name)
            try:
                await info.run(_tai_iso_now())
            except AckError as e:
                self.log.error("Could not start %s (%s); the queue is paused", info.name, e)
                self.running = False
                await info.terminate()
                await self.queue_callback()

    async def _watch(self, info: ScriptInfo) -> None:
        await info.done_task
        await self._script_ended(info)

    async def _script_ended(self, info: ScriptInfo) -> None:
        """File a script that has ended; pause the queue if it was current and failed."""
        if info in self.history or not info.process_done:
            return
        if info is self.current:
            self.current = None
            if info.failed:
                self.running = False
                self.log.warning(
                    "%s ended %s (%s); the queue is paused: resume it to go on",
                    info.name,
                    info.script_state.name,
                    info.reason or "no reason given",
                )
            else:
                self.log.info("%s ended %s", info.name, info.script_state.name)
        if info in self.queue:
            self.queue.remove(info)
        self.history.insert(0, info)
        for old in self.history[MAX_HISTORY:]:
            del self._scripts[old.index]
        del self.history[MAX_HISTORY:]
        await self.queue_callback()
        await self._update()

    async def _on_script_state(self, data: BaseMessage) -> None:
        info = self._scripts.get(data.salIndex)
        if info is None or not info.on_state(data):  # another queue's script, or no change
            return
        await self.script_callback(info)
        if info.runnable:
            # The state may arrive after the configure acknowledgement.
            await self._update()

    def _insert_position(self, location: int, location_sal_index: int) -> int:
        """Return where in `queue` a script goes.

        Raises
        ------
        ExpectedError
            If ``location`` is not a `Location`, or the reference script
            of BEFORE/AFTER is not waiting.
        """
        try:
            where = Location(location)
        except ValueError:
            names = ", ".join(f"{loc.name}={loc.value}" for loc in Location)
            raise ExpectedError(f"Unknown location {location}; use one of {names}") from None
        if where == Location.FIRST:
            return 0
        if where == Location.LAST:
            return len(self.queue)
        for position, info in enumerate(self.queue):
            if info.index == location_sal_index:
                return position if where == Location.BEFORE else position + 1
        raise ExpectedError(
            f"Cannot put a script {where.name} script {location_sal_index}: no such script is waiting"
        )


def _padded(values: tuple[int, ...], size: int) -> list[int]:
    """Return the first ``size`` values, padded with zeros to ``size`` (a SAL array)."""
    return [*values, *[0] * size][:size]
