"""SalInfo: one component's view of the messaging system."""

from __future__ import annotations

__all__ = ["SalInfo", "TopicReader"]

import asyncio
import itertools
import typing

from .domain import Domain
from .interface import ComponentInterface, TopicDefinition
from .messages import BaseMessage, message_model
from .transport import Subscription


class TopicReader(typing.Protocol):
    """What a `SalInfo` needs of the readers it subscribes (`ReadTopic`).

    The protocol keeps this module below `read_topic` (a reader needs its
    `SalInfo`, not the other way round).
    """

    definition: TopicDefinition
    max_history: int

    def _on_message(self, message: BaseMessage) -> None: ...

    def _close(self) -> None: ...


# Sequence numbers are unique within the process, so acknowledgements of
# commands from two Remotes of one component can never be confused.
_SEQ_NUMS = itertools.count(1)


class SalInfo:
    """Topics, identity and subscriptions of one component instance.

    Parameters
    ----------
    domain : `Domain`
        The process's domain.
    name : `str`
        Component name, e.g. ``"OCPS"``.
    index : `int`, optional
        SAL index. For a Remote of an indexed component, 0 (the default)
        means "every index".
    identity : `str`, optional
        Identity sent as ``private_identity``; defaults to the domain's
        ``user@host`` (controllers pass ``Component:index``).

    Raises
    ------
    ValueError
        If ``index`` is non-zero for a component that is not indexed.
    """

    def __init__(
        self, domain: Domain, name: str, index: int | None = 0, *, identity: str | None = None
    ) -> None:
        self.domain = domain
        self.interface = ComponentInterface.load(name)
        index = index or 0
        if index != 0 and not self.interface.indexed:
            raise ValueError(f"{name} is not indexed, but index={index} was given")
        self.index = index
        self.identity = identity or domain.default_identity
        self._readers: list[TopicReader] = []
        self._subscriptions: list[Subscription] = []
        self._started = False
        self.closed = False
        domain.salinfo_set.add(self)

    @property
    def name(self) -> str:
        """Component name."""
        return self.interface.name

    @property
    def name_index(self) -> str:
        """``Name:index`` for indexed components, else ``Name``."""
        return f"{self.name}:{self.index}" if self.interface.indexed else self.name

    @property
    def command_names(self) -> tuple[str, ...]:
        """Command names, in interface order (``cmdtype`` is the position)."""
        return tuple(self.interface.commands)

    def topic_name(self, topic: TopicDefinition) -> str:
        """Full transport name of a topic of this component."""
        return self.domain.topic_name(self.name, topic.sal_name)

    @staticmethod
    def next_seq_num() -> int:
        """Return a sequence number unique within this process."""
        return next(_SEQ_NUMS)

    def model(self, topic: TopicDefinition) -> type[BaseMessage]:
        """Message class of a topic."""
        return message_model(topic)

    def add_reader(self, reader: TopicReader) -> None:
        """Register a reader; it is subscribed by `start`.

        Raises
        ------
        RuntimeError
            If called after `start`.
        """
        if self._started:
            raise RuntimeError(f"Cannot add reader {reader.definition.attr_name} after start")
        self._readers.append(reader)

    async def subscribe(
        self, topic: TopicDefinition, callback: typing.Callable[[BaseMessage], None], *, history: bool
    ) -> None:
        """Subscribe a callback to a topic of this component until `close`."""
        await self.domain.start()
        subscription = await self.domain.transport.subscribe(
            self.topic_name(topic), self.model(topic), callback, history=history
        )
        self._subscriptions.append(subscription)

    async def start(self) -> None:
        """Subscribe every registered reader. Call once."""
        if self._started:
            raise RuntimeError("SalInfo already started")
        self._started = True
        await self.domain.start()
        for reader in self._readers:
            await self.subscribe(reader.definition, reader._on_message, history=reader.max_history > 0)

    async def publish(self, topic: TopicDefinition, message: BaseMessage) -> None:
        """Publish a message on a topic of this component."""
        await self.domain.transport.publish(self.topic_name(topic), message)

    async def close(self) -> None:
        """Stop all subscriptions and wake blocked readers. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.domain.salinfo_set.discard(self)
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
        for reader in self._readers:
            reader._close()
        await asyncio.sleep(0)
