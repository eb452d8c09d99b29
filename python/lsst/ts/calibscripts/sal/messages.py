"""Typed message classes generated from topic definitions.

Every topic gets a pydantic model (salobj's ``DataType``) whose fields are
the topic's own fields plus the private fields SAL adds to each message.
As in salobj, instances are mutable and every field has a default, so
``data = topic.DataType(); data.x = 1`` works; values are checked (unknown
names, wrong types, too-long arrays) when a message is built with keywords,
set with ``set``, and again when it is written or sent
(`validate_message`), so a bad value never leaves the process.
"""

from __future__ import annotations

__all__ = [
    "PRIVATE_FIELDS",
    "AckCmd",
    "AckCmdDataType",
    "BaseMessage",
    "BaseMsgType",
    "copy_message",
    "message_model",
    "plain_fields",
    "rev_code",
    "validate_message",
]

import functools
import hashlib
import json
import typing
from typing import Any

import pydantic

from .interface import TopicDefinition

#: Private fields carried by every message, as in ts_xml (salIndex is 0
#: for a non-indexed component).
PRIVATE_FIELDS = (
    "salIndex",
    "private_sndStamp",
    "private_rcvStamp",
    "private_efdStamp",
    "private_kafkaStamp",
    "private_seqNum",
    "private_revCode",
    "private_identity",
    "private_origin",
)


class BaseMessage(pydantic.BaseModel):
    """Base class of all messages: the private fields SAL adds.

    Messages are mutable, as salobj's: a reader gets its own copy (readers
    in one process never share an instance), and a writer's ``data`` can
    be changed field by field before it is written.
    """

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    salIndex: int = 0
    private_sndStamp: float = 0.0
    private_rcvStamp: float = 0.0
    private_efdStamp: float = 0.0
    private_kafkaStamp: float = 0.0
    private_seqNum: int = 0
    private_revCode: str = ""
    private_identity: str = ""
    private_origin: int = 0

    if typing.TYPE_CHECKING:
        # Fields are generated from interface definitions at run time.
        def __init__(self, **data: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

    def get_vars(self) -> dict[str, Any]:
        """Return all fields as a dict (the same as ``vars(data)``, copied)."""
        return dict(self.__dict__)


#: Type of any message (ts_xml's ``type_hints.BaseMsgType``).
BaseMsgType = BaseMessage

#: An ``ackcmd`` message (fields ack, error, result, identity, origin,
#: cmdtype, timeout); salobj's ``AckCmdDataType``.
AckCmd = BaseMessage
AckCmdDataType = BaseMessage

_PLAIN_TYPES = (bool, int, float, str)


def _plain(value: Any) -> Any:
    """Return ``value`` with numpy scalars and arrays, and tuples, as Python values."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None and not isinstance(value, _PLAIN_TYPES):
        return tolist()
    return value


def validate_message(data: BaseMessage) -> BaseMessage:
    """Check every field of ``data`` and return a validated copy.

    Values assigned directly (``data.x = 1``) are only checked here, which
    is why every write and send goes through this. numpy values are
    converted to Python ones.

    Raises
    ------
    pydantic.ValidationError
        If a value has the wrong type or an array is too long.
    """
    return type(data).model_validate(plain_fields(data.__dict__))


def plain_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Return field values with numpy scalars and arrays, and tuples, as Python values."""
    return {name: value if type(value) in _PLAIN_TYPES else _plain(value) for name, value in values.items()}


#: Names of the list (array) fields of each message class.
_LIST_FIELDS: dict[type[BaseMessage], tuple[str, ...]] = {}


def copy_message(message: BaseMessage) -> BaseMessage:
    """Return a copy of ``message`` that shares no list with it (fast: no validation)."""
    cls = type(message)
    list_fields = _LIST_FIELDS.get(cls)
    if list_fields is None:
        list_fields = _LIST_FIELDS[cls] = tuple(
            name for name, value in message.__dict__.items() if type(value) is list
        )
    values = message.__dict__.copy()
    for name in list_fields:
        values[name] = list(values[name])
    copy = cls.__new__(cls)
    object.__setattr__(copy, "__dict__", values)
    object.__setattr__(copy, "__pydantic_fields_set__", set(message.__pydantic_fields_set__))
    object.__setattr__(copy, "__pydantic_extra__", None)
    object.__setattr__(copy, "__pydantic_private__", None)
    return copy


@functools.cache
def message_model(topic: TopicDefinition) -> type[BaseMessage]:
    """Return the message class of a topic (cached per topic).

    Parameters
    ----------
    topic : `TopicDefinition`
        Definition of the topic.

    Returns
    -------
    model : `type` [`BaseMessage`]
        Pydantic model named ``<Component>_<sal_name>``.
    """
    fields: dict[str, Any] = {}
    for field in topic.fields:
        if field.count > 1:
            fields[field.name] = (
                field.python_type,
                pydantic.Field(default_factory=field.default, max_length=field.count),
            )
        else:
            fields[field.name] = (field.python_type, field.default())
    model: type[BaseMessage] = pydantic.create_model(
        f"{topic.component}_{topic.sal_name}",
        __base__=BaseMessage,
        __doc__=topic.description or None,
        **fields,
    )
    return model


@functools.cache
def rev_code(topic: TopicDefinition) -> str:
    """Return the revision code of a topic: a hash of its layout (``private_revCode``)."""
    layout = [(f.name, f.sal_type, f.count) for f in topic.fields]
    text = json.dumps([topic.component, topic.sal_name, layout])
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:8]
