"""Writers of events and telemetry."""

from __future__ import annotations

__all__ = ["SetWriteResult", "WriteTopic"]

from dataclasses import dataclass
from typing import Any

from .interface import TopicDefinition, TopicKind
from .messages import BaseMessage
from .sal_info import SalInfo
from .timestamps import current_tai


@dataclass(frozen=True)
class SetWriteResult:
    """What `WriteTopic.set_write` did.

    Attributes
    ----------
    did_change : `bool`
        Did any field change value?
    was_written : `bool`
        Was the message written?
    data : `BaseMessage`
        The message (as written, if it was).
    """

    did_change: bool
    was_written: bool
    data: BaseMessage


class WriteTopic:
    """Write one event or telemetry topic of a controller.

    Field values persist between writes, as in salobj: `set` changes some
    fields, `write` sends all of them.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    definition : `TopicDefinition`
        The topic.
    """

    def __init__(self, *, salinfo: SalInfo, definition: TopicDefinition) -> None:
        self.salinfo = salinfo
        self.definition = definition
        self._model = salinfo.model(definition)
        self._data = self._model(salIndex=salinfo.index)
        self._has_written = False

    @property
    def name(self) -> str:
        """Short topic name."""
        return self.definition.name

    @property
    def data(self) -> BaseMessage:
        """Current field values (the next message to write)."""
        return self._data

    @property
    def has_data(self) -> bool:
        """Has a message been written?"""
        return self._has_written

    def set(self, **kwargs: Any) -> bool:
        """Set field values without writing.

        Returns
        -------
        did_change : `bool`
            Did any value change?

        Raises
        ------
        pydantic.ValidationError
            If a field name is unknown or a value has the wrong type; no
            field is changed.
        """
        if not kwargs:
            return False
        did_change = any(getattr(self._data, name, _MISSING) != value for name, value in kwargs.items())
        self._data = self._model.model_validate({**self._data.model_dump(), **kwargs})
        return did_change

    async def write(self) -> BaseMessage:
        """Write the current field values; return the message written."""
        message = self._data.model_copy(
            update={
                "salIndex": self.salinfo.index,
                "private_sndStamp": current_tai(),
                "private_seqNum": self.salinfo.next_seq_num(),
                "private_identity": self.salinfo.identity,
                "private_origin": self.salinfo.domain.origin,
            }
        )
        await self.salinfo.publish(self.definition, message)
        self._has_written = True
        return message

    async def set_write(self, *, force_output: bool | None = None, **kwargs: Any) -> SetWriteResult:
        """Set field values and write.

        Parameters
        ----------
        force_output : `bool`, optional
            Write even if nothing changed? Defaults to False for events
            (an unchanged event is written only the first time) and True for
            telemetry.
        **kwargs
            Field values.
        """
        if force_output is None:
            force_output = self.definition.kind is not TopicKind.EVENT
        did_change = self.set(**kwargs)
        if did_change or force_output or not self._has_written:
            return SetWriteResult(did_change=did_change, was_written=True, data=await self.write())
        return SetWriteResult(did_change=did_change, was_written=False, data=self._data)


_MISSING = object()
