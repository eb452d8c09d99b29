"""Who may use the queue page: the Host allow-list and the access token.

The page commands the queue. Three kinds of request must not reach it:

- a page of another site, open in the operator's browser, that renames
  itself to this server's address by DNS rebinding: the browser then sends
  that site's name in ``Host``, which is not one this server serves;
- a page of another site posting to this server directly (``Origin``
  names that site; see the server's command guard);
- other users of the network, when the page is served on an address other
  than the loopback one: they must present the token printed at start.

`AccessPolicy` holds what is accepted; the server's middleware applies it
to every request, the page, the API and the event stream alike.
"""

from __future__ import annotations

__all__ = [
    "LOOPBACK_NAMES",
    "TOKEN_COOKIE_PREFIX",
    "AccessPolicy",
    "check_token_text",
    "is_loopback",
    "normalize_host_name",
    "split_host",
]

import dataclasses
import hmac
import ipaddress
import re
import secrets
import socket
from collections.abc import Iterable, Sequence

#: Names of this machine that always mean the loopback interface, as a
#: browser writes them in ``Host``.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
#: Name of the cookie that carries the token, followed by the served port:
#: cookies do not tell ports apart, and two pages on one machine must not
#: overwrite each other's.
TOKEN_COOKIE_PREFIX = "calibscripts-ui-token-"
#: Addresses that mean "every interface of this machine".
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
#: Shortest token accepted from ``--token``.
_MIN_TOKEN_LENGTH = 16
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
_NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9_.-]*[a-z0-9_])?")


def normalize_host_name(name: str) -> str:
    """Return the form a browser gives a host name in ``Host``.

    Parameters
    ----------
    name : `str`
        A host name, an IPv4 address or an IPv6 address (with or without
        brackets).

    Returns
    -------
    name : `str`
        Lower case; IP addresses in their canonical form, IPv6 ones in
        brackets (``[::1]``).
    """
    name = name.strip().lower()
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return name
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def split_host(value: str) -> tuple[str, int | None]:
    """Split a ``Host`` value (``name``, ``name:port``, ``[v6]:port``) into its parts.

    Parameters
    ----------
    value : `str`
        The value of a ``Host`` header, or of ``--allow-host``.

    Returns
    -------
    name : `str`
        The host name, normalized (see `normalize_host_name`).
    port : `int` or None
        The port, if given.

    Raises
    ------
    ValueError
        If the value is not a host name or address with an optional port.
    """
    text = value.strip()
    if "/" in text:
        raise ValueError(f"{value!r}: not a host name (give NAME or NAME:PORT, without http:// or a path)")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{value!r}: unclosed '[' of an IPv6 address")
        name, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{value!r}: expected ':PORT' after the IPv6 address")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        name, port_text = f"[{text}]", None  # a bare IPv6 address
    else:
        name, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    name = normalize_host_name(name)
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            raise ValueError(f"{value!r}: not an IPv6 address in brackets") from None
    elif not name.isascii() or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{value!r}: not a host name or address (letters, digits, '-', '.' and '_' only)")
    return name, port


def is_loopback(host: str) -> bool:
    """Is ``host`` (as given to ``--host``) the loopback interface only?

    Parameters
    ----------
    host : `str`
        ``localhost`` or an IP address. Any other name counts as not
        loopback, whatever it resolves to, and so does a wildcard address
        (``0.0.0.0``, ``::``), which includes every interface.

    Returns
    -------
    loopback : `bool`
        True if only this machine can connect.
    """
    name = normalize_host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token_text(token: str) -> str:
    """Check a token given with ``--token``; return it.

    Parameters
    ----------
    token : `str`
        The token.

    Returns
    -------
    token : `str`
        The same token.

    Raises
    ------
    ValueError
        If it is shorter than 16 characters or has characters other than
        letters, digits, ``-``, ``_``, ``.`` and ``~`` (it is written in a
        URL and in a cookie as it is).
    """
    if len(token) < _MIN_TOKEN_LENGTH or not token.isascii() or not _TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            f"--token must have at least {_MIN_TOKEN_LENGTH} characters, only letters, digits, "
            "'-', '_', '.' and '~' (make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
            ", or leave --token out to get a new one at each start)"
        )
    return token


@dataclasses.dataclass(frozen=True)
class AccessPolicy:
    """What the page's server accepts: ``Host`` names and, if set, a token.

    Build one with `for_address`. A request is accepted only if its
    ``Host`` is one of:

    - a name of `names`, with the port the request came in on;
    - a ``(name, port)`` of `hosts`;
    - the IP address the request came in on, with its port (the browser
      was pointed at this very address, which cannot be rebound).

    Attributes
    ----------
    bind_host : `str`
        The address the server was asked to serve on (``--host``).
    names : `frozenset` [`str`]
        Host names (normalized, see `normalize_host_name`) accepted with
        the served port.
    hosts : `frozenset` [`tuple` [`str`, `int`]]
        Host names accepted with their own port (``--allow-host NAME:PORT``,
        e.g. behind an SSH tunnel or a proxy).
    token : `str` or None
        The token every request must carry (query parameter, cookie or
        ``Authorization: token ...`` header); None if none is needed.
    """

    bind_host: str = "127.0.0.1"
    names: frozenset[str] = frozenset(LOOPBACK_NAMES)
    hosts: frozenset[tuple[str, int]] = frozenset()
    token: str | None = None

    @classmethod
    def for_address(
        cls, host: str, *, allow_hosts: Sequence[str] = (), token: str | None = None
    ) -> AccessPolicy:
        """Return the policy of a server serving on ``host``.

        Parameters
        ----------
        host : `str`
            The address to serve on (``--host``).
        allow_hosts : sequence of `str`, optional
            More ``Host`` names to accept (``--allow-host``): ``NAME`` (with
            the served port) or ``NAME:PORT``.
        token : `str`, optional
            The token to require (``--token``). If not given, a new random
            one is made when ``host`` is not the loopback interface, and
            none is required on loopback.

        Returns
        -------
        policy : `AccessPolicy`
            The policy.

        Raises
        ------
        ValueError
            If an ``allow_hosts`` value is not a host name with an optional
            port, or the token is not acceptable (see `check_token_text`).
        """
        names: set[str] = set()
        hosts: set[tuple[str, int]] = set()
        if is_loopback(host):
            names.update(LOOPBACK_NAMES)
            names.add(normalize_host_name(host))
        elif host.strip() in _WILDCARD_HOSTS:
            # Every interface: this machine by its name, and by its loopback names.
            names.update(LOOPBACK_NAMES)
            names.add(normalize_host_name(socket.gethostname()))
        else:
            names.add(normalize_host_name(host))
        for value in allow_hosts:
            try:
                name, port = split_host(value)
            except ValueError as e:
                raise ValueError(f"--allow-host {e}") from None
            if port is None:
                names.add(name)
            else:
                hosts.add((name, port))
        if token is not None:
            token = check_token_text(token)
        elif not is_loopback(host):
            token = secrets.token_urlsafe(32)
        return cls(bind_host=host, names=frozenset(names), hosts=frozenset(hosts), token=token)

    @property
    def loopback(self) -> bool:
        """Is the server serving on the loopback interface only?"""
        return is_loopback(self.bind_host)

    def accepted_hosts(self, local: tuple[str, int] | None) -> list[str]:
        """Return the ``Host`` values accepted on a connection, for messages.

        Parameters
        ----------
        local : `tuple` [`str`, `int`] or None
            Address and port the connection came in on, if known.

        Returns
        -------
        hosts : `list` [`str`]
            ``name:port`` values, sorted.
        """
        accepted = {f"{name}:{port}" for name, port in self.hosts}
        if local is not None:
            address, port = normalize_host_name(local[0]), local[1]
            accepted.update(f"{name}:{port}" for name in (*self.names, address))
        return sorted(accepted)

    def host_refusal(self, host: str | None, local: tuple[str, int] | None) -> str | None:
        """Check the ``Host`` of a request.

        Parameters
        ----------
        host : `str` or None
            The request's ``Host`` header; None if it has none.
        local : `tuple` [`str`, `int`] or None
            Address and port the connection came in on, if known.

        Returns
        -------
        refusal : `str` or None
            Why the request is refused, for the operator; None if accepted.
        """
        accepted = ", ".join(self.accepted_hosts(local)) or "none (the served address is unknown)"
        advice = (
            f"This server accepts only the Host values {accepted}. If you reach it by another name "
            "(a proxy, a tunnel, a DNS alias), start it with --allow-host NAME or --allow-host NAME:PORT."
        )
        if host is None:
            return f"Refused: the request has no Host header. {advice}"
        try:
            name, port = split_host(host)
        except ValueError:
            return f"Refused: the Host header {host!r} is not a host name with a port. {advice}"
        port = 80 if port is None else port
        if (name, port) in self.hosts:
            return None
        served = local is not None and port == local[1]
        if served and local is not None and name in (*self.names, normalize_host_name(local[0])):
            return None
        return (
            f"Refused: this server does not serve the Host {host!r}; a page of another site may be "
            f"trying to reach it by DNS rebinding. {advice}"
        )

    def token_matches(self, presented: Iterable[str]) -> bool:
        """Is one of the ``presented`` tokens the policy's token?

        Each is compared in constant time (`hmac.compare_digest`).

        Parameters
        ----------
        presented : iterable of `str`
            Tokens the request carries (query, cookie, header).

        Returns
        -------
        matches : `bool`
            True if no token is required, or one of them is right.
        """
        if self.token is None:
            return True
        expected = self.token.encode()
        # Compare every one, so the time does not tell which one matched.
        results = [
            hmac.compare_digest(expected, candidate.encode(errors="replace")) for candidate in presented
        ]
        return any(results)

    def cookie_name(self, port: int) -> str:
        """Return the name of the token cookie of the page served on ``port``."""
        return f"{TOKEN_COOKIE_PREFIX}{port}"
