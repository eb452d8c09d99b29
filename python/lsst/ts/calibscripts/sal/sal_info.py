"""SalInfo: one component's view of the messaging system."""

from __future__ import annotations

__all__ = ["SalInfo", "TopicReader", "TopicWriter"]

import asyncio
import itertools
import logging
import typing
from types import TracebackType
from typing import Any

from .domain import Domain
from .enums import SalRetCode
from .interface import ComponentInterface, TopicDefinition, TopicKind
from .messages import BaseMessage, message_model
from .transport import Subscription


class TopicReader(typing.Protocol):
    """What a `SalInfo` needs of the readers it subscribes (`ReadTopic`).

    The protocol keeps this module below the topics (a topic needs its
    `SalInfo`, not the other way round).
    """

    definition: TopicDefinition
    max_history: int

    @property
    def attr_name(self) -> str:
        """Attribute name of the topic."""

    def _on_message(self, message: BaseMessage) -> None: ...

    def basic_close(self) -> None:
        """Stop reading."""


class TopicWriter(typing.Protocol):
    """What a `SalInfo` needs of its writers (`WriteTopic`)."""

    @property
    def attr_name(self) -> str:
        """Attribute name of the topic."""

    def basic_close(self) -> None:
        """Stop writing."""


# Sequence numbers of commands are unique within the process, so the
# acknowledgements of commands from two Remotes can never be confused.
_SEQ_NUMS = itertools.count(1)
_MAX_SEQ_NUM = (1 << 31) - 1


class SalInfo:
    """Topics, identity and subscriptions of one component instance.

    Construct the topics (readers and writers) with a `SalInfo`, then call
    `start`; `start_task` is done once every reader is subscribed (with its
    late-joiner data delivered).

    Parameters
    ----------
    domain : `Domain`
        The process's domain.
    name : `str`
        Component name, e.g. ``"OCPS"``.
    index : `int`, optional
        SAL index. For a reader of an indexed component, 0 (the default)
        means "every index".
    write_only : `bool`, optional
        Refuse readers (a controller that only writes)?
    identity : `str`, optional
        Identity sent as ``private_identity``; defaults to the domain's
        ``default_identity`` (controllers set their ``Name:index``).
    **kwargs
        Options of salobj's Kafka `SalInfo` (``num_messages``,
        ``consume_messages_timeout``, ``discard_out_of_order_telemetry``,
        ``discard_out_of_order_events``): accepted and ignored (the
        transports deliver each topic in order).

    Raises
    ------
    TypeError
        If ``domain`` is not a `Domain` or ``index`` not an integer.
    ValueError
        If ``index`` is non-zero for a component that is not indexed, or
        there is no such component.

    Attributes
    ----------
    start_task : `asyncio.Future`
        Done when `start` has subscribed every reader.
    done_task : `asyncio.Future`
        Done when `close` is done.
    start_called : `bool`
        Has `start` been called?
    isopen : `bool`
        False once `close` has been called.
    """

    def __init__(
        self,
        domain: Domain,
        name: str,
        index: int | None = 0,
        write_only: bool = False,
        *,
        identity: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(domain, Domain):
            raise TypeError(f"domain {domain!r} must be a Domain")
        if index is not None and not isinstance(index, int):
            raise TypeError(f"index {index!r} must be an integer or None")
        _check_kafka_options(kwargs)
        self.domain = domain
        self.interface = ComponentInterface.load(name)
        self.index = int(index or 0)
        if self.index != 0 and not self.interface.indexed:
            raise ValueError(f"Index={index!r} must be 0 or None; {name} is not an indexed SAL component")
        self.write_only = write_only
        self.identity = identity or domain.default_identity
        self.log = logging.getLogger(f"{__name__.rsplit('.', 1)[0]}.{self.name_index}")
        self.isopen = True
        self.start_called = False
        loop = asyncio.get_running_loop()
        self.start_task: asyncio.Future[None] = loop.create_future()
        self.done_task: asyncio.Future[None] = loop.create_future()
        self._readers: dict[str, TopicReader] = {}
        self._writers: dict[str, TopicWriter] = {}
        self._subscriptions: list[Subscription] = []
        #: Readers, writers and command bookkeeping shared by the topics of
        #: this component (set by the first command topic made).
        self._ackcmd_writer: Any = None
        self._ackcmd_reader: Any = None
        self._running_cmds: dict[int, Any] = {}
        names = {kind: sorted(self._topics(kind)) for kind in (TopicKind.COMMAND, TopicKind.EVENT)}
        self.command_names: tuple[str, ...] = tuple(names[TopicKind.COMMAND])
        self.event_names: tuple[str, ...] = tuple(names[TopicKind.EVENT])
        self.telemetry_names: tuple[str, ...] = tuple(sorted(self.interface.telemetry))
        sal_names = [t.sal_name for t in self.topic_definitions()]
        if self.command_names:
            sal_names.append("ackcmd")
        #: Every SAL topic name in alphabetical order; a command's ``cmdtype``
        #: is its position in this list, as in salobj.
        self.sal_topic_names: list[str] = sorted(sal_names)
        domain.add_salinfo(self)

    def _topics(self, kind: TopicKind) -> typing.Mapping[str, TopicDefinition]:
        return {
            TopicKind.COMMAND: self.interface.commands,
            TopicKind.EVENT: self.interface.events,
            TopicKind.TELEMETRY: self.interface.telemetry,
        }[kind]

    def topic_definitions(self) -> list[TopicDefinition]:
        """Return the definitions of every command, event and telemetry topic."""
        return [
            *self.interface.commands.values(),
            *self.interface.events.values(),
            *self.interface.telemetry.values(),
        ]

    def topic_definition(self, attr_name: str) -> TopicDefinition:
        """Return the definition of a topic given its attribute name (``evt_summaryState``...).

        Raises
        ------
        ValueError
            If the component has no such topic.
        """
        if attr_name == "ack_ackcmd":
            return self.interface.ackcmd
        prefix, _, name = attr_name.partition("_")
        kinds = {"cmd": TopicKind.COMMAND, "evt": TopicKind.EVENT, "tel": TopicKind.TELEMETRY}
        topic = self._topics(kinds[prefix]).get(name) if prefix in kinds else None
        if topic is None:
            raise ValueError(f"{self.name} has no topic {attr_name!r}")
        return topic

    @property
    def name(self) -> str:
        """Component name."""
        return self.interface.name

    @property
    def indexed(self) -> bool:
        """Is the component indexed?"""
        return self.interface.indexed

    @property
    def name_index(self) -> str:
        """``Name:index`` for indexed components, else ``Name``."""
        return f"{self.name}:{self.index}" if self.indexed else self.name

    @property
    def AckCmdType(self) -> type[BaseMessage]:
        """The class of command acknowledgements.

        Raises
        ------
        RuntimeError
            If the component has no commands (and so no ``ackcmd`` topic).
        """
        if not self.command_names:
            raise RuntimeError("This component has no commands, so no ackcmd topic")
        return message_model(self.interface.ackcmd)

    def make_ackcmd(
        self,
        private_seqNum: int,
        ack: SalRetCode | int,
        error: int = 0,
        result: str = "",
        timeout: float = 0,
    ) -> BaseMessage:
        """Make an acknowledgement (to send with ``cmd_x.ack`` or return from a callback).

        Parameters
        ----------
        private_seqNum : `int`
            Sequence number of the command.
        ack : `SalRetCode`
            Acknowledgement code.
        error : `int`, optional
            Error code; 0 unless the command failed.
        result : `str`, optional
            Message for the caller.
        timeout : `float`, optional
            For ``CMD_INPROGRESS``: how much longer the command may take (s).
        """
        return self.AckCmdType(
            private_seqNum=int(private_seqNum),
            ack=int(ack),
            error=int(error),
            result=result,
            timeout=float(timeout),
        )

    def topic_name(self, topic: TopicDefinition) -> str:
        """Full transport name of a topic of this component."""
        return self.domain.topic_name(self.name, topic.sal_name)

    @staticmethod
    def next_seq_num() -> int:
        """Return a command sequence number unique within this process."""
        return (next(_SEQ_NUMS) - 1) % _MAX_SEQ_NUM + 1

    def model(self, topic: TopicDefinition) -> type[BaseMessage]:
        """Message class of a topic."""
        return message_model(topic)

    @property
    def started(self) -> bool:
        """Has `start` finished successfully?"""
        return (
            self.start_task.done() and not self.start_task.cancelled() and self.start_task.exception() is None
        )

    @property
    def running(self) -> bool:
        """Started and not closed?"""
        return self.started and self.isopen

    def assert_started(self) -> None:
        """Raise `RuntimeError` unless started."""
        if not self.started:
            raise RuntimeError("Not started")

    def assert_running(self) -> None:
        """Raise `RuntimeError` unless started and not closed."""
        if not self.running:
            raise RuntimeError("Not started" if not self.started else "No longer open")

    def add_reader(self, reader: TopicReader) -> None:
        """Register a reader; `start` subscribes it.

        Raises
        ------
        RuntimeError
            If called after `start`, or for a write-only `SalInfo`.
        ValueError
            If there already is a reader of that topic.
        """
        if self.start_called:
            raise RuntimeError("Cannot add topics after start has been called")
        if self.write_only:
            raise RuntimeError("Cannot add read topics to a write-only SalInfo")
        if reader.attr_name in self._readers:
            raise ValueError(f"Read topic {reader.attr_name} already present")
        self._readers[reader.attr_name] = reader

    def add_writer(self, writer: TopicWriter) -> None:
        """Register a writer, to close it with the `SalInfo`.

        Raises
        ------
        RuntimeError
            If called after `start`.
        ValueError
            If there already is a writer of that topic.
        """
        if self.start_called:
            raise RuntimeError("Cannot add topics after start has been called")
        if writer.attr_name in self._writers:
            raise ValueError(f"Write topic {writer.attr_name} already present")
        self._writers[writer.attr_name] = writer

    async def start(self) -> None:
        """Subscribe every registered reader; `start_task` is then done.

        Raises
        ------
        RuntimeError
            If `start` was already called or the `SalInfo` is closed.
        """
        if self.start_called:
            raise RuntimeError("Start already called")
        if not self.isopen:
            raise RuntimeError("Already closing or closed")
        self.start_called = True
        try:
            await self.domain.start()
            for reader in self._readers.values():
                subscription = await self.domain.transport.subscribe(
                    self.topic_name(reader.definition),
                    self.model(reader.definition),
                    reader._on_message,
                    history=reader.max_history > 0,
                )
                if not self.isopen:
                    subscription.close()  # closed while starting: start_task is cancelled
                    return
                self._subscriptions.append(subscription)
        except BaseException as e:
            if not self.start_task.done():
                if isinstance(e, asyncio.CancelledError):
                    self.start_task.cancel()
                else:
                    self.start_task.set_exception(e)
            raise
        if not self.start_task.done():
            self.start_task.set_result(None)

    async def publish(self, topic: TopicDefinition, message: BaseMessage) -> None:
        """Publish a message on a topic of this component."""
        await self.domain.transport.publish(self.topic_name(topic), message)

    def basic_close(self) -> None:
        """Stop all subscriptions and wake blocked readers. Idempotent."""
        if not self.isopen:
            return
        self.isopen = False
        self.domain.remove_salinfo(self)
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
        for reader in self._readers.values():
            reader.basic_close()
        for writer in self._writers.values():
            writer.basic_close()
        while self._running_cmds:
            _, info = self._running_cmds.popitem()
            info.close()
        if not self.start_task.done():
            self.start_task.cancel()
        if not self.done_task.done():
            self.done_task.set_result(None)

    async def close(self) -> None:
        """Stop reading and writing (see `basic_close`). Idempotent."""
        self.basic_close()
        await asyncio.sleep(0)

    async def __aenter__(self) -> SalInfo:
        if self.start_called:
            await self.start_task
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SalInfo({self.name}, {self.index})"


#: Options of salobj's Kafka SalInfo, Remote and Controller that mean
#: nothing to these transports.
KAFKA_ONLY_OPTIONS = frozenset(
    {
        "num_messages",
        "consume_messages_timeout",
        "discard_out_of_order_telemetry",
        "discard_out_of_order_events",
    }
)


def _check_kafka_options(kwargs: dict[str, Any]) -> None:
    unknown = kwargs.keys() - KAFKA_ONLY_OPTIONS
    if unknown:
        raise TypeError(f"Unexpected keyword arguments {sorted(unknown)}")
