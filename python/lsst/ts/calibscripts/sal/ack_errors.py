"""Exceptions for commands that ended with a failure acknowledgement."""

from __future__ import annotations

__all__ = ["AckError", "AckTimeoutError"]

from typing import Any

from .enums import as_salRetCode


def _ackcmd_str(ackcmd: Any) -> str:
    return (
        f"(ackcmd private_seqNum={ackcmd.private_seqNum}, "
        f"ack={as_salRetCode(ackcmd.ack)!r}, error={ackcmd.error}, result={ackcmd.result!r})"
    )


class AckError(Exception):
    """A command ended with a failure acknowledgement.

    Parameters
    ----------
    msg : `str`
        Description of the failure.
    ackcmd : `AckCmd`
        The acknowledgement that ended the command.
    """

    def __init__(self, msg: str, ackcmd: Any) -> None:
        super().__init__(msg)
        self.ackcmd = ackcmd

    def __str__(self) -> str:
        return f"msg={self.args[0]!r}, ackcmd={_ackcmd_str(self.ackcmd)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self!s})"


class AckTimeoutError(AckError):
    """No final acknowledgement arrived in time.

    ``ackcmd`` is the last acknowledgement seen, or one with
    ``ack=SalRetCode.CMD_NOACK`` if none was seen at all.
    """
