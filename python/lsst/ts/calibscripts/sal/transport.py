"""The transport interface: how messages travel between components.

A transport moves messages by topic name
(``lsst.<subname>.<Component>.<sal_name>``) and remembers the most recent
message of each topic per SAL index, for late joiners. The in-process
transport (`LocalTransport`) is the default; a networked transport
implements the same interface and is selected by name (see
`make_transport`).
"""

from __future__ import annotations

__all__ = [
    "TRANSPORT_ENV_VAR",
    "MessageCallback",
    "Subscription",
    "Transport",
    "make_transport",
    "register_transport",
]

import abc
import importlib
import os
from collections.abc import Callable

from .messages import BaseMessage

#: Signature of the function a subscription calls for each message, in
#: publication order. It must not block and should not raise.
MessageCallback = Callable[[BaseMessage], None]

#: Environment variable naming the transport `make_transport` creates.
TRANSPORT_ENV_VAR = "CALIBSCRIPTS_TRANSPORT"


class Subscription(abc.ABC):
    """A handle on one subscription; close it to stop receiving."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop delivering messages to the callback. Idempotent."""


class Transport(abc.ABC):
    """Moves messages between publishers and subscribers.

    Guarantees every implementation gives:

    - messages of one topic reach each subscriber in publication order;
    - a subscriber that asks for history first receives the most recent
      message of the topic for each SAL index, then live messages;
    - ``private_rcvStamp`` is set on delivery.
    """

    #: Name under which the transport is registered.
    name: str = ""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; called once before the first publish or subscribe."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect and release resources."""

    def child_environment(self) -> dict[str, str] | None:
        """Return the environment a child process needs to reach the same components.

        With these variables set, `make_transport` in a child process (e.g.
        a script the ScriptQueue starts) connects to the same message bus.

        Returns
        -------
        environment : `dict` [`str`, `str`] or None
            Variables to set; None if other processes cannot reach this
            transport (the in-process transport).
        """
        return None

    @abc.abstractmethod
    async def publish(self, topic_name: str, message: BaseMessage) -> None:
        """Send one message on a topic.

        Parameters
        ----------
        topic_name : `str`
            Full topic name.
        message : `BaseMessage`
            The message; never modified afterwards by the caller.
        """

    @abc.abstractmethod
    async def subscribe(
        self,
        topic_name: str,
        model: type[BaseMessage],
        callback: MessageCallback,
        *,
        history: bool,
    ) -> Subscription:
        """Receive the messages of a topic.

        Parameters
        ----------
        topic_name : `str`
            Full topic name.
        model : `type` [`BaseMessage`]
            Message class, to decode messages that crossed a process boundary.
        callback : `MessageCallback`
            Called with each message.
        history : `bool`
            Deliver the most recent message per SAL index first?

        Returns
        -------
        subscription : `Subscription`
            Close it to stop receiving.
        """


_TRANSPORTS: dict[str, Callable[[], Transport]] = {}

# Transports whose module registers them when imported, imported only when
# selected: callers need not import them, and their dependencies (the redis
# client) are loaded only by processes that use them.
_LAZY_TRANSPORT_MODULES: dict[str, str] = {"redis": ".redis_transport"}


def register_transport(name: str, factory: Callable[[], Transport]) -> None:
    """Make a transport available to `make_transport` under ``name``."""
    _TRANSPORTS[name] = factory


def make_transport(name: str | None = None) -> Transport:
    """Create a transport by name.

    Parameters
    ----------
    name : `str`, optional
        Registered transport name; defaults to ``$CALIBSCRIPTS_TRANSPORT``,
        else ``"local"`` (in-process).

    Raises
    ------
    ValueError
        If no transport of that name is registered.
    """
    if name is None:
        name = os.environ.get(TRANSPORT_ENV_VAR, "") or "local"
    if name not in _TRANSPORTS and name in _LAZY_TRANSPORT_MODULES:
        importlib.import_module(_LAZY_TRANSPORT_MODULES[name], __package__)
    try:
        factory = _TRANSPORTS[name]
    except KeyError:
        known = ", ".join(sorted({*_TRANSPORTS, *_LAZY_TRANSPORT_MODULES}))
        raise ValueError(f"Unknown transport {name!r} (from {TRANSPORT_ENV_VAR}?); known: {known}") from None
    return factory()
