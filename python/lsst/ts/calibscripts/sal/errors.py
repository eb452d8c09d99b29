"""Exceptions raised by the SAL-style kernel."""

from __future__ import annotations

__all__ = ["AckError", "AckTimeoutError", "ExpectedError", "InterfaceDefinitionError"]

import typing

if typing.TYPE_CHECKING:
    from .messages import AckCmd


class ExpectedError(Exception):
    """A command failed for a reason the caller can act on.

    A ``do_<command>`` callback that raises this reports ``CMD_FAILED`` with
    the message but logs no traceback: the failure is understood.
    """


class InterfaceDefinitionError(ValueError):
    """A component interface definition file is malformed."""


class AckError(Exception):
    """A command ended with a failure acknowledgement.

    Parameters
    ----------
    msg : `str`
        Description of the failure.
    ackcmd : `AckCmd`
        The acknowledgement that ended the command.
    """

    def __init__(self, msg: str, ackcmd: AckCmd) -> None:
        super().__init__(msg)
        self.ackcmd = ackcmd

    def __str__(self) -> str:
        ack = self.ackcmd
        return f"{self.args[0]}: ack={ack.ack!r}, error={ack.error}, result={ack.result!r}"


class AckTimeoutError(AckError):
    """No final acknowledgement arrived in time.

    ``ackcmd.ack`` is the last acknowledgement seen, or
    `SalRetCode.CMD_NOACK` if none was seen at all.
    """
