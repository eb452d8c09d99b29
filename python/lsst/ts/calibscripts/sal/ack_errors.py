"""Exceptions for commands that ended with a failure acknowledgement."""

from __future__ import annotations

__all__ = ["AckError", "AckTimeoutError"]

from .messages import AckCmd


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
