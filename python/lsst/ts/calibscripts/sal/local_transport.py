"""The in-process transport: the embedded default."""

from __future__ import annotations

__all__ = ["LocalBus", "LocalTransport"]

import contextlib
import logging
from dataclasses import dataclass, field

from .messages import BaseMessage, copy_message
from .timestamps import current_tai
from .transport import MessageCallback, Subscription, Transport, register_transport

_log = logging.getLogger(__name__)


@dataclass
class _Channel:
    subscribers: list[MessageCallback] = field(default_factory=list)
    latest: dict[int, BaseMessage] = field(default_factory=dict)


class _LocalSubscription(Subscription):
    def __init__(self, channel: _Channel, callback: MessageCallback) -> None:
        self._channel = channel
        self._callback = callback

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self._channel.subscribers.remove(self._callback)


class LocalBus:
    """Topics of one process: subscribers and late-joiner data per topic.

    Every `LocalTransport` that shares a bus sees the same messages; by
    default all transports of a process share one bus, so any number of
    Domains in one process can talk to each other.
    """

    _default: LocalBus | None = None

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    @classmethod
    def default(cls) -> LocalBus:
        """Return the bus shared by the whole process."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def channel(self, topic_name: str) -> _Channel:
        """Return the channel of a topic, creating it if needed."""
        channel = self._channels.get(topic_name)
        if channel is None:
            channel = self._channels[topic_name] = _Channel()
        return channel


class LocalTransport(Transport):
    """Deliver messages within one process, synchronously and in order.

    ``publish`` calls every subscriber's callback before it returns, so
    ordering per topic is that of the ``publish`` calls.

    Parameters
    ----------
    bus : `LocalBus`, optional
        Bus to use; defaults to the process-wide bus.
    """

    name = "local"

    def __init__(self, bus: LocalBus | None = None) -> None:
        self.bus = bus if bus is not None else LocalBus.default()

    async def publish(self, topic_name: str, message: BaseMessage) -> None:
        """Deliver a message to every subscriber of the topic before returning."""
        # The kept copy is never handed out: each reader gets its own, which
        # it may change (messages are mutable, as in salobj).
        message = copy_message(message)
        message.private_rcvStamp = current_tai()
        channel = self.bus.channel(topic_name)
        channel.latest[message.salIndex] = message
        for callback in tuple(channel.subscribers):
            try:
                callback(copy_message(message))
            except Exception:
                _log.exception("Subscriber of %s failed on a message", topic_name)

    async def subscribe(
        self,
        topic_name: str,
        model: type[BaseMessage],
        callback: MessageCallback,
        *,
        history: bool,
    ) -> Subscription:
        """Subscribe; history is delivered before this returns."""
        channel = self.bus.channel(topic_name)
        if history:
            for message in tuple(channel.latest.values()):
                callback(copy_message(message))
        channel.subscribers.append(callback)
        return _LocalSubscription(channel, callback)


register_transport(LocalTransport.name, LocalTransport)
