"""Who is at the other end of an accepted socket: the one place that decides a connection's address.

Without trusted proxies it is the TCP peer. Behind HAProxy (``send-proxy-v2``) every
connection comes from the proxy, and the client's address arrives in a PROXY protocol
header before the TLS handshake. :func:`identify` reads that header, in clear, from a
connection whose source is one of ``serve --trusted-proxy``'s networks: such a connection
must start with one, and the client it names is the connection's address for every
limit, throttle and log line. From any other address a header is refused: anyone could
otherwise pick the address their guesses are counted under. Both ports call it in the
connection's own thread, before TLS, under the handshake deadline, so a silent proxy
connection costs one thread for that long at most, like a silent client.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from socket import socket

from securechat.config import IPNetwork
from securechat.errors import BadProxyHeader, ConfigError
from securechat.protocol.proxy import (
    V1_PREFIX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderDecoder,
)
from securechat.transport import Waker, format_address, receive_before_tls


@dataclasses.dataclass(frozen=True, slots=True)
class PeerAddress:
    """A connection's address as the server counts and logs it.

    ``proxy`` is the trusted proxy's own ``host:port`` when the address came from its
    header; ``health_check`` says its header named no client (LOCAL, UNKNOWN): the
    proxy's own connection, which keeps the proxy's address.
    """

    host: str
    port: int
    proxy: str | None = None
    health_check: bool = False

    def __str__(self) -> str:
        return format_address((self.host, self.port))

    def described(self) -> str:
        """For log lines that say how a connection came: ``host:port via proxy``."""
        if self.proxy is None:
            return str(self)
        if self.health_check:
            return f"{self} (proxy, no client named)"
        return f"{self} via {self.proxy}"


def parse_trusted_proxy(text: str) -> IPNetwork:
    """An address or a network (CIDR) given to ``--trusted-proxy``.

    Raises:
        ConfigError: not an IP address or network, or a network with host bits set.
    """
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"--trusted-proxy {text!r}: not an IP address or network (CIDR), such as "
            "10.0.0.5, 10.0.0.0/24 or fd00::/64"
        ) from None
    raise ConfigError(f"--trusted-proxy {text!r}: host bits set; did you mean {network}?")


class TrustedProxies:
    """The networks whose connections carry a PROXY header naming the client."""

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: object) -> bool:
        if not self._networks or not isinstance(host, str):
            return False
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])  # without an IPv6 zone
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener's IPv4 peer
        return any(ip in network for network in self._networks)


def identify(
    sock: socket,
    address: tuple[str, int],
    *,
    proxies: TrustedProxies,
    max_header: int,
    deadline: float,
    interrupt: Waker | None = None,
) -> PeerAddress | None:
    """The address of the connection on ``sock``, accepted from ``address``; None when
    ``interrupt`` woke first (the server is closing the connection).

    From a trusted proxy, reads its PROXY header (exactly, leaving the TLS bytes after it
    unread). From anyone else, looks at the first bytes without taking them, to refuse a
    header by name instead of failing the TLS handshake on it.

    Raises:
        BadProxyHeader: a trusted proxy sent no header or a bad one, or another address
            sent one.
        ConnectionLost: closed, broken, or nothing came by ``deadline``.
    """
    own = PeerAddress(address[0], address[1])
    if address[0] not in proxies:
        start = receive_before_tls(sock, len(V2_SIGNATURE), deadline, interrupt, peek=True)
        if start is not None and _starts_like_a_header(start):
            raise BadProxyHeader(
                "a PROXY protocol header from an address that is not a trusted proxy "
                "(serve --trusted-proxy)"
            )
        return None if start is None else own
    header = _read_header(sock, max_header, deadline, interrupt)
    if header is None:
        return None
    if header.source is None:
        return PeerAddress(own.host, own.port, proxy=str(own), health_check=True)
    return PeerAddress(header.source[0], header.source[1], proxy=str(own))


def _read_header(
    sock: socket, max_header: int, deadline: float, interrupt: Waker | None
) -> ProxyHeader | None:
    decoder = ProxyHeaderDecoder(max_header)
    while True:
        data = receive_before_tls(sock, decoder.wanted, deadline, interrupt)
        if data is None:
            return None
        header = decoder.feed(data)
        if header is not None:
            return header


def _starts_like_a_header(start: bytes) -> bool:
    """Whether the first bytes seen are those of a PROXY header (never of a TLS record)."""
    return any(
        start[: len(signature)] == signature[: len(start)]
        for signature in (V1_PREFIX, V2_SIGNATURE)
    )
