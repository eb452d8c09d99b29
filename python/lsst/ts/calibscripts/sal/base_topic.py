"""BaseTopic: what every topic of a component has, read or written."""

from __future__ import annotations

__all__ = ["BaseTopic"]

from .interface import TopicDefinition
from .messages import BaseMessage
from .sal_info import SalInfo


class BaseTopic:
    """One topic of a component: its definition, data type, names and log.

    The base of `ReadTopic` and `WriteTopic`, as salobj's
    ``topics.BaseTopic`` is of its readers and writers.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    attr_name : `str`
        Attribute name: ``evt_<name>``, ``tel_<name>``, ``cmd_<name>`` or
        ``ack_ackcmd``.

    Attributes
    ----------
    salinfo : `SalInfo`
        The component.
    definition : `TopicDefinition`
        The topic's definition.
    DataType : `type` [`BaseMessage`]
        The topic's data class (instances are mutable, fields defaulted).
    log : `logging.Logger`
        The topic's logger, a child of the component's.
    isopen : `bool`
        False once closed.
    """

    def __init__(self, *, salinfo: SalInfo, attr_name: str) -> None:
        self.salinfo = salinfo
        self.definition: TopicDefinition = salinfo.topic_definition(attr_name)
        self.DataType: type[BaseMessage] = salinfo.model(self.definition)
        self.log = salinfo.log.getChild(self.definition.sal_name)
        self.isopen = True

    @property
    def name(self) -> str:
        """Short topic name, e.g. ``summaryState``."""
        return self.definition.name

    @property
    def attr_name(self) -> str:
        """Attribute name, e.g. ``evt_summaryState``."""
        return self.definition.attr_name

    @property
    def sal_name(self) -> str:
        """SAL topic name, e.g. ``logevent_summaryState``."""
        return self.definition.sal_name
