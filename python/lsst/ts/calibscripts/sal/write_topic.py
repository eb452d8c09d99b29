"""Writers of events, telemetry and acknowledgements (salobj's ``topics.WriteTopic``)."""

from __future__ import annotations

__all__ = [
    "MAX_SEQ_NUM",
    "AckCmdWriter",
    "ControllerEvent",
    "ControllerTelemetry",
    "MockWriteTopic",
    "SetWriteResult",
    "WriteTopic",
]

import math
from dataclasses import dataclass
from typing import Any

from .base_topic import BaseTopic
from .interface import TopicKind
from .messages import BaseMessage, plain_fields, rev_code, validate_message
from .sal_info import SalInfo
from .timestamps import current_tai as _current_tai
from .timestamps import index_generator, utc_from_tai_unix

#: Largest ``private_seqNum`` (a 4-byte signed int).
MAX_SEQ_NUM = (1 << 31) - 1


@dataclass
class SetWriteResult:
    """What `WriteTopic.set_write` did.

    Attributes
    ----------
    did_change : `bool`
        Did any field change value (or was this the first data)?
    was_written : `bool`
        Was the message written?
    data : `BaseMessage`
        The message: as written, if it was.
    """

    did_change: bool
    was_written: bool
    data: BaseMessage


def _same(old: Any, new: Any) -> bool:
    """Compare field values, with NaN equal to NaN (as salobj does for floats)."""
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    if isinstance(old, list) and isinstance(new, list | tuple):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    try:
        return bool(old == new)
    except Exception:
        return False


class WriteTopic(BaseTopic):
    """Write one topic: field values persist between writes, as in salobj.

    `set` changes some fields, `write` sends all of them; ``data`` (an
    instance of `DataType`) can also be changed field by field. Values are
    validated by `set` and again by `write`.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    attr_name : `str`
        Attribute name: ``evt_<name>``, ``tel_<name>``, ``cmd_<name>`` or
        ``ack_ackcmd``.
    min_seq_num : `int` or None, optional
        Smallest ``private_seqNum``; None leaves ``private_seqNum`` to the
        caller (acknowledgements carry the command's).
    max_seq_num : `int`, optional
        Largest ``private_seqNum``.
    initial_seq_num : `int`, optional
        First ``private_seqNum``; ``min_seq_num`` if None.

    Attributes
    ----------
    default_force_output : `bool`
        `set_write` writes unchanged data unless this is False (events).
    isopen : `bool`
        False once closed.
    """

    def __init__(
        self,
        *,
        salinfo: SalInfo,
        attr_name: str,
        min_seq_num: int | None = 1,
        max_seq_num: int = MAX_SEQ_NUM,
        initial_seq_num: int | None = None,
    ) -> None:
        super().__init__(salinfo=salinfo, attr_name=attr_name)
        self.rev_code = rev_code(self.definition)
        self.default_force_output = self.definition.kind is not TopicKind.EVENT
        self.min_seq_num = min_seq_num
        self.max_seq_num = max_seq_num
        self._seq_nums = (
            None
            if min_seq_num is None
            else index_generator(imin=min_seq_num, imax=max_seq_num, i0=initial_seq_num)
        )
        self._data = self.DataType()
        self._has_data = False
        salinfo.add_writer(self)

    @property
    def data(self) -> BaseMessage:
        """The current field values: the next message to write.

        Raises
        ------
        TypeError
            When set to something that is not a `DataType`.
        """
        return self._data

    @data.setter
    def data(self, data: BaseMessage) -> None:
        if not isinstance(data, self.DataType):
            raise TypeError(f"data={data!r} must be an instance of {self.DataType.__name__}")
        self._data = data
        self._has_data = True

    @property
    def has_data(self) -> bool:
        """Has ``data`` ever been set (by `set`, `set_write` or assignment)?"""
        return self._has_data

    def set(self, **kwargs: Any) -> bool:
        """Set field values without writing.

        A value of None leaves the field unchanged (the name is still
        checked).

        Returns
        -------
        did_change : `bool`
            Did any value change, or was this the first data?

        Raises
        ------
        AttributeError
            If the topic has no such field; nothing is changed.
        pydantic.ValidationError
            If a value has the wrong type (a `ValueError`); nothing is changed.
        """
        current = self._data.__dict__
        unknown = kwargs.keys() - current.keys()
        if unknown:
            raise AttributeError(f"{self.attr_name} has no fields {sorted(unknown)}")
        did_change = not self._has_data
        values = dict(current)
        for name, value in kwargs.items():
            if value is None:
                continue
            if not did_change and not _same(current[name], value):
                did_change = True
            values[name] = value
        self._data = self.DataType.model_validate(plain_fields(values))
        self._has_data = True
        return did_change

    def _prepare_data_to_write(self) -> BaseMessage:
        """Set the private fields of ``data`` and return a validated copy."""
        now = _current_tai()
        private: dict[str, Any] = {
            "private_sndStamp": now,
            "private_efdStamp": utc_from_tai_unix(now),
            "private_kafkaStamp": now,
            "private_revCode": self.rev_code,
            "private_origin": self.salinfo.domain.origin,
            "private_identity": self.salinfo.identity,
        }
        if self._seq_nums is not None:
            private["private_seqNum"] = next(self._seq_nums)
        if self.salinfo.index != 0:
            private["salIndex"] = self.salinfo.index
        # Known-good values of the private fields: set without validation.
        self._data.__dict__.update(private)
        return validate_message(self._data)

    async def write(self) -> BaseMessage:
        """Write the current field values; return (a copy of) the message written.

        Raises
        ------
        pydantic.ValidationError
            If a field assigned directly has a bad value; nothing is written.
        """
        message = self._prepare_data_to_write()
        await self.salinfo.publish(self.definition, message)
        return message

    async def set_write(self, *, force_output: bool | None = None, **kwargs: Any) -> SetWriteResult:
        """Set field values and write if anything changed or if forced.

        Parameters
        ----------
        force_output : `bool`, optional
            Write even if nothing changed? None uses `default_force_output`
            (False for events, True otherwise).
        **kwargs
            Field values (see `set`).
        """
        did_change = self.set(**kwargs)
        do_output = did_change or (self.default_force_output if force_output is None else force_output)
        if do_output:
            return SetWriteResult(did_change=did_change, was_written=True, data=await self.write())
        return SetWriteResult(did_change=did_change, was_written=False, data=self._data)

    def basic_close(self) -> None:
        """Mark closed. Idempotent."""
        self.isopen = False

    async def close(self) -> None:
        """Mark closed (see `basic_close`)."""
        self.basic_close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.salinfo.name}, {self.salinfo.index}, {self.attr_name})"


class ControllerEvent(WriteTopic):
    """Write one event of a controller.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    name : `str`
        Event name without prefix.
    """

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo=salinfo, attr_name=f"evt_{name}")


class ControllerTelemetry(WriteTopic):
    """Write one telemetry topic of a controller.

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    name : `str`
        Telemetry topic name without prefix.
    """

    def __init__(self, salinfo: SalInfo, name: str) -> None:
        super().__init__(salinfo=salinfo, attr_name=f"tel_{name}")


class AckCmdWriter(WriteTopic):
    """Write a controller's command acknowledgements (``private_seqNum`` is the command's).

    Parameters
    ----------
    salinfo : `SalInfo`
        The component.
    """

    def __init__(self, salinfo: SalInfo) -> None:
        super().__init__(salinfo=salinfo, attr_name="ack_ackcmd", min_seq_num=None)


class MockWriteTopic(WriteTopic):
    """A `WriteTopic` that records each message instead of writing it (for unit tests).

    Parameters are those of `WriteTopic`.

    Attributes
    ----------
    data_list : `list` [`BaseMessage`]
        Every message "written", oldest first.
    """

    def __init__(
        self,
        *,
        salinfo: SalInfo,
        attr_name: str,
        min_seq_num: int | None = 1,
        max_seq_num: int = MAX_SEQ_NUM,
        initial_seq_num: int | None = None,
    ) -> None:
        super().__init__(
            salinfo=salinfo,
            attr_name=attr_name,
            min_seq_num=min_seq_num,
            max_seq_num=max_seq_num,
            initial_seq_num=initial_seq_num,
        )
        self.data_list: list[BaseMessage] = []

    async def write(self) -> BaseMessage:
        """Record the current field values; return (a copy of) the message."""
        message = self._prepare_data_to_write()
        self.data_list.append(message)
        return message
