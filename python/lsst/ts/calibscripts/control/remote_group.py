"""RemoteGroup: a set of components used together."""

from __future__ import annotations

__all__ = ["RemoteGroup"]

import asyncio
import logging
import typing
from types import TracebackType

from ..sal import Domain, Remote, State

#: Events a RemoteGroup does not subscribe to.
_UNREAD_EVENTS = ("heartbeat", "logMessage")


def _split(component: str) -> tuple[str, int]:
    name, _, index = component.partition(":")
    return name, int(index) if index else 0


class RemoteGroup:
    """Remotes of several components, with checks a script needs.

    Parameters
    ----------
    components : `list` [`str`]
        Components as ``"Name"`` or ``"Name:index"``.
    domain : `Domain`
        Domain to use.
    log : `logging.Logger`, optional
        Logger (the script's, so messages reach the operator).

    Attributes
    ----------
    rem : `types.SimpleNamespace`
        Remotes by attribute name: ``name.lower()`` plus ``_<index>`` for
        indexed components (``rem.atcamera``, ``rem.ocps_1``).
    fast_timeout, long_timeout, long_long_timeout : `float`
        Standard timeouts (5, 30, 120 s).
    """

    fast_timeout = 5.0
    long_timeout = 30.0
    long_long_timeout = 120.0

    def __init__(self, components: list[str], domain: Domain, log: logging.Logger | None = None) -> None:
        self.components = list(components)
        self.domain = domain
        self.log = log or logging.getLogger(type(self).__name__)
        self.remotes: dict[str, Remote] = {}
        for component in self.components:
            name, index = _split(component)
            # Heartbeats and component logs would only pile up unread in a script.
            self.remotes[component] = Remote(domain, name, index, exclude=_UNREAD_EVENTS)
        self.start_task: asyncio.Future[list[None]] = asyncio.gather(
            *(remote.start_task for remote in self.remotes.values())
        )

    def remote(self, component: str) -> Remote:
        """Return the Remote of a component given as ``Name`` or ``Name:index``."""
        return self.remotes[component]

    def get_state(self, component: str) -> State | None:
        """Return the last summary state seen of a component, or None."""
        data = self.remotes[component].evt_summaryState.get()
        return None if data is None else State(data.summaryState)

    async def assert_all_enabled(self, message: str = "") -> None:
        """Raise `RuntimeError` listing every component that is not ENABLED.

        Parameters
        ----------
        message : `str`, optional
            Start of the error message.
        """
        await self.start_task
        not_enabled = []
        for component in self.components:
            try:
                data = await self.remotes[component].evt_summaryState.aget(timeout=self.fast_timeout)
                state = State(data.summaryState)
            except TimeoutError:
                not_enabled.append(f"{component} (no summaryState: not running?)")
                continue
            if state != State.ENABLED:
                not_enabled.append(f"{component} ({state.name})")
        if not_enabled:
            prefix = f"{message}: " if message else ""
            raise RuntimeError(f"{prefix}components not ENABLED: {', '.join(not_enabled)}")

    async def close(self) -> None:
        """Close every Remote."""
        for remote in self.remotes.values():
            await remote.close()

    async def __aenter__(self) -> typing.Self:
        await self.start_task
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
