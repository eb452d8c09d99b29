"""The Domain: a process's connection to the messaging system."""

from __future__ import annotations

__all__ = ["DEFAULT_TOPIC_SUBNAME", "TOPIC_SUBNAME_ENV_VAR", "Domain", "DomainMember"]

import asyncio
import os
import typing
from types import TracebackType

from .names import get_user_host
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
    def isopen(self) -> bool:
        """False once closed."""

    @property
    def start_called(self) -> bool:
        """Has reading started (or been asked to start)?"""

    @property
    def start_task(self) -> asyncio.Future[None]:
        """Done when reading has started."""

    def basic_close(self) -> None:
        """Stop at once."""

    async def close(self) -> None:
        """Stop."""


class Domain:
    """Holds the transport and the identity of this process.

    As in salobj, every `SalInfo` (each `Controller` and `Remote`)
    registers with its domain, and closing the domain closes them all.

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
    user_host : `str`
        ``user@host``.
    default_identity : `str`
        Identity of the Remotes made with this domain: ``user_host``, or
        the ``Name:index`` of the `Controller` that made the domain.
    isopen : `bool`
        False once `close` has been called.
    """

    def __init__(self, transport: Transport | None = None, *, subname: str | None = None) -> None:
        self.transport = transport if transport is not None else make_transport()
        self.subname = subname or os.environ.get(TOPIC_SUBNAME_ENV_VAR, "") or DEFAULT_TOPIC_SUBNAME
        self.origin = os.getpid()
        self.user_host = get_user_host()
        self.default_identity = self.user_host
        self.isopen = True
        self._done_task: asyncio.Future[None] | None = None
        self._salinfo_set: set[DomainMember] = set()
        self._start_task: asyncio.Future[None] | None = None
        self._transport_closed = False

    @property
    def done_task(self) -> asyncio.Future[None]:
        """Done when `close` is done."""
        if self._done_task is None:
            self._done_task = asyncio.get_running_loop().create_future()
        return self._done_task

    @property
    def salinfo_set(self) -> set[DomainMember]:
        """The components (controllers and remotes) open in this domain."""
        return self._salinfo_set

    def add_salinfo(self, salinfo: DomainMember) -> None:
        """Register a `SalInfo`.

        Raises
        ------
        RuntimeError
            If it is already registered.
        """
        if salinfo in self._salinfo_set:
            raise RuntimeError(f"salinfo {salinfo} already added")
        self._salinfo_set.add(salinfo)

    def remove_salinfo(self, salinfo: DomainMember) -> bool:
        """Unregister a `SalInfo`; return whether it was registered."""
        try:
            self._salinfo_set.remove(salinfo)
        except KeyError:
            return False
        return True

    def topic_name(self, component: str, sal_name: str) -> str:
        """Return the full name of a topic on the transport."""
        return f"lsst.{self.subname}.{component}.{sal_name}"

    async def start(self) -> None:
        """Start the transport; safe to call any number of times."""
        if self._start_task is None:
            self._start_task = asyncio.ensure_future(self.transport.start())
        await asyncio.shield(self._start_task)

    def basic_close(self) -> None:
        """Close every registered `SalInfo` at once (not the transport)."""
        while self._salinfo_set:
            self._salinfo_set.pop().basic_close()

    async def close(self) -> None:
        """Close every registered `SalInfo`, then the transport.

        May be called any number of times; later calls wait for the first.
        """
        if not self.isopen:
            await asyncio.shield(self.done_task)
            return
        self.isopen = False
        try:
            while self._salinfo_set:
                await self._salinfo_set.pop().close()
            if not self._transport_closed:
                self._transport_closed = True
                await self.transport.close()
        finally:
            if not self.done_task.done():
                self.done_task.set_result(None)

    async def __aenter__(self) -> Domain:
        await self.start()
        return self

    async def __aexit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
