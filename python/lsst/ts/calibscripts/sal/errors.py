"""Exceptions of the SAL-style kernel that need nothing else of it.

The acknowledgement errors, which carry an `AckCmd`, are in `ack_errors`.
"""

from __future__ import annotations

__all__ = ["ExpectedError", "InterfaceDefinitionError"]


class ExpectedError(Exception):
    """A command failed for a reason the caller can act on.

    A ``do_<command>`` callback that raises this reports ``CMD_FAILED`` with
    the message but logs no traceback: the failure is understood.
    """


class InterfaceDefinitionError(ValueError):
    """A component interface definition file is malformed."""
