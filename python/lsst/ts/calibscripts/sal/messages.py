"""Typed message classes generated from topic definitions.

Every topic gets a frozen pydantic model whose fields are the topic's own
fields plus the private fields SAL adds to each message. Unknown field names
and values of the wrong type are rejected when a message is built.
"""

from __future__ import annotations

__all__ = ["PRIVATE_FIELDS", "AckCmd", "BaseMessage", "message_model"]

import functools
import typing
from typing import Any

import pydantic

from .interface import TopicDefinition

#: Private fields carried by every message (salIndex only when indexed).
PRIVATE_FIELDS = (
    "salIndex",
    "private_sndStamp",
    "private_rcvStamp",
    "private_seqNum",
    "private_identity",
    "private_origin",
)


class BaseMessage(pydantic.BaseModel):
    """Base class of all messages: the private fields SAL adds.

    Messages are immutable: a reader may share one instance with other
    readers in the same process.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)

    salIndex: int = 0
    private_sndStamp: float = 0.0
    private_rcvStamp: float = 0.0
    private_seqNum: int = 0
    private_identity: str = ""
    private_origin: int = 0

    if typing.TYPE_CHECKING:
        # Fields are generated from interface definitions at run time.
        def __init__(self, **data: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

    def get_vars(self) -> dict[str, Any]:
        """Return all fields as a dict (salobj's ``vars(data)``)."""
        return self.model_dump()


#: An ``ackcmd`` message (fields ack, error, result, identity, origin,
#: cmdtype, timeout); an alias for readability, as salobj's AckCmdDataType.
AckCmd = BaseMessage


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
