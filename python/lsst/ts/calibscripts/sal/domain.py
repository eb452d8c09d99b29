"""The Domain: a process's connection to the messaging system."""

from __future__ import annotations

__all__ = ["DEFAULT_TOPIC_SUBNAME", "TOPIC_SUBNAME_ENV_VAR", "Domain", "DomainMember"]

import asyncio
import getpass
import os
import socket
import typing
from types import TracebackType

from .transport import Transport, make_transport

#: Environment variable with the middle part of topic names, as in Rubin's
#: Kafka transport: ``lsst.<LSST_TOPIC_SUBNAME>.<Component>.<sal_name>``.
TOPIC_SUBNAME_ENV_VAR = "LSST_TOPIC_SUBNAME"
DEFAULT_TOPIC_SUBNAME = "sal"


class DomainMember(typing.Protocol):
    """What a `Domain` knows of the components registered with it.

    `SalInfo` is the one implementation; the protocol keeps this module
    below it (a `SalInfo` needs a `Domain`, not the other way round).
    """

    @property
    def name(self) -> str:
        """Component name, e.g. ``OCPS``."""

    @property
    def index(self) -> int:
        """SAL index (0 for a non-indexed component or an any-index Remote)."""

    @property
    def closed(self) -> bool:
        """Has it been closed?"""


class Domain:
    """Holds the transport and the identity of this process.

    Parameters
    ----------
    transport : `Transport`, optional
        Transport to use; defaults to `make_transport()` (in-process unless
        ``$CALIBSCRIPTS_TRANSPORT`` says otherwise).
    subname : `str`, optional
        Topic sub-name; defaults to ``$LSST_TOPIC_SUBNAME`` or ``"sal"``.
        Tests use a random one so that runs do not see each other.

    Attributes
    ----------
    transport : `Transport`
        The transport.
    subname : `str`
        Topic sub-name.
    origin : `int`
        Process id, sent as ``private_origin``.
    default_identity : `str`
        ``user@host``: the identity of Remotes (controllers use their own
        ``Component:index``).
    salinfo_set : `set` [`DomainMember`]
        Components (controllers and remotes) open in this domain.
    """

    def __init__(self, transport: Transport | None = None, *, subname: str | None = None) -> None:
        self.transport = transport if transport is not None else make_transport()
        self.subname = subname or os.environ.get(TOPIC_SUBNAME_ENV_VAR, "") or DEFAULT_TOPIC_SUBNAME
        self.origin = os.getpid()
        self.default_identity = f"{getpass.getuser()}@{socket.gethostname()}"
        self.salinfo_set: set[DomainMember] = set()
        self._start_task: asyncio.Future[None] | None = None
        self._closed = False

    def topic_name(self, component: str, sal_name: str) -> str:
        """Return the full name of a topic on the transport."""
        return f"lsst.{self.subname}.{component}.{sal_name}"

    async def start(self) -> None:
        """Start the transport; safe to call any number of times."""
        if self._start_task is None:
            self._start_task = asyncio.ensure_future(self.transport.start())
        await asyncio.shield(self._start_task)

    async def close(self) -> None:
        """Close the transport. Idempotent."""
        if not self._closed:
            self._closed = True
            await self.transport.close()

    async def __aenter__(self) -> Domain:
        await self.start()
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
