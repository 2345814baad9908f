"""The PROXY protocol header (versions 1 and 2) that a TCP proxy puts before the client's bytes.

HAProxy's ``send-proxy`` / ``send-proxy-v2`` (and most load balancers) open each connection
to the server with one header naming the client's address, then relay the client's bytes
(here: its TLS handshake) untouched. The format is haproxy's ``proxy-protocol.txt``:

* version 1, text: ``PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n``, or ``PROXY UNKNOWN ...\\r\\n``;
  107 bytes at most, CRLF included;
* version 2, binary: a 12-byte signature, a version/command byte (LOCAL or PROXY), an
  address family/transport byte, a 16-bit length, then that many bytes: the addresses,
  then optional TLVs (ignored here).

A ``LOCAL`` command (version 2), ``UNKNOWN`` (version 1) or a family without an IP address
(``UNSPEC``, ``UNIX``) means the connection is the proxy's own (a health check) or its
client has no IP address: :attr:`ProxyHeader.source` is None and the caller keeps the
connection's own address.

Pure code: :class:`ProxyHeaderDecoder` takes bytes and says how many more it needs at
least (:attr:`~ProxyHeaderDecoder.wanted`), so the I/O layer can read exactly that much and
never read into the TLS bytes that follow. Anything else than a well-formed header, from
the first byte on, raises :class:`BadProxyHeader`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct

from securechat.errors import BadProxyHeader

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest version 1 line, "PROXY TCP6 <2 full IPv6> 65535 65535\r\n"
V1_MIN = len(b"PROXY UNKNOWN\r\n")
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = struct.Struct("!12sBBH")  # signature, version/command, family/transport, length
V2_MIN = V2_FIXED.size
#: The default bound on a whole version 2 header: the addresses (216 bytes at most, for
#: UNIX) and room for the TLVs proxies add (unique id, TLS details, cloud endpoint ids).
DEFAULT_MAX_SIZE = 2048

_LOCAL, _PROXY = 0x0, 0x1
_STREAM = 0x1
# family/transport byte -> (address size, unpacking) for the families that carry IP addresses
_INET = {0x11: (12, struct.Struct("!4s4sHH")), 0x21: (36, struct.Struct("!16s16sHH"))}
_NO_ADDRESS = {0x00, 0x31}  # UNSPEC, UNIX stream: no IP address to use


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What a header said. ``source`` is the client's (host, port); None when the header
    names none (LOCAL, UNKNOWN, a non-IP family): use the connection's own address."""

    version: int
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    size: int  # bytes the header took on the wire

    @property
    def is_local(self) -> bool:
        """The header names no client: the proxy's own connection (a health check)."""
        return self.source is None


class ProxyHeaderDecoder:
    """Reads one PROXY header, version 1 or 2, from the bytes it is fed.

    ``feed()`` returns the header once complete (bytes fed after it are kept in
    :attr:`rest`), or None while it needs more. ``max_size`` bounds a version 2 header
    (its length field is checked before the body is waited for); version 1 is bounded by
    the specification's 107 bytes.
    """

    __slots__ = ("_buffer", "_max_size", "header", "rest")

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self._max_size = max_size
        self._buffer = bytearray()
        self.header: ProxyHeader | None = None
        self.rest = b""

    @property
    def wanted(self) -> int:
        """Bytes still needed at least: reading exactly this many never reads past the header."""
        buffer, have = self._buffer, len(self._buffer)
        if self.header is not None:
            return 0
        if buffer.startswith(V2_SIGNATURE) and have >= V2_MIN:
            length: int = V2_FIXED.unpack_from(buffer)[3]
            return V2_MIN + length - have
        if buffer.startswith(V1_PREFIX):
            return max(V1_MIN - have, 1 if buffer.endswith(b"\r") else 2)
        return max(V1_MIN - have, 1)  # a version 1 header may be as short as 15 bytes

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Add ``data``; the header once it is complete, else None.

        Raises:
            BadProxyHeader: the bytes are not (the start of) a valid header, or it is too long.
        """
        if self.header is not None:
            self.rest += data
            return self.header
        self._buffer += data
        buffer = self._buffer
        if not buffer:
            return None
        if buffer[:1] == V2_SIGNATURE[:1]:
            header = self._version_2(buffer)
        elif buffer[:1] == V1_PREFIX[:1]:
            header = self._version_1(buffer)
        else:
            raise BadProxyHeader("no PROXY protocol header")
        if header is not None:
            self.header, self.rest = header, bytes(buffer[header.size :])
            self._buffer = bytearray()
        return header

    def _version_1(self, buffer: bytearray) -> ProxyHeader | None:
        if not V1_PREFIX.startswith(buffer[: len(V1_PREFIX)]):
            raise BadProxyHeader("no PROXY protocol header")
        end = buffer.find(b"\r\n", 0, V1_MAX)
        if end < 0:
            if len(buffer) >= V1_MAX:
                raise BadProxyHeader(f"PROXY v1 header longer than {V1_MAX} bytes")
            if b"\n" in buffer or b"\r" in buffer[:-1]:
                raise BadProxyHeader("PROXY v1 header with a stray CR or LF")
            return None
        return _parse_v1(bytes(buffer[:end]), end + 2)

    def _version_2(self, buffer: bytearray) -> ProxyHeader | None:
        if not V2_SIGNATURE.startswith(buffer[: len(V2_SIGNATURE)]):
            raise BadProxyHeader("no PROXY protocol header")
        if len(buffer) < V2_MIN:
            return None
        _, version_command, family, length = V2_FIXED.unpack_from(buffer)
        if version_command >> 4 != 2:
            raise BadProxyHeader(f"PROXY v2 header of version {version_command >> 4}")
        command = version_command & 0x0F
        if command not in (_LOCAL, _PROXY):
            raise BadProxyHeader(f"PROXY v2 header with unknown command {command}")
        size = V2_MIN + length
        if size > self._max_size:
            raise BadProxyHeader(f"PROXY v2 header of {size} bytes, over {self._max_size}")
        if len(buffer) < size:
            return None
        if command == _LOCAL:
            return ProxyHeader(version=2, source=None, destination=None, size=size)
        return _parse_v2_addresses(family, bytes(buffer[V2_MIN:size]), size)


def _parse_v1(line: bytes, size: int) -> ProxyHeader:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise BadProxyHeader("PROXY v1 header that is not ASCII") from None
    fields = text.split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":  # the rest of the line is ignored
        return ProxyHeader(version=1, source=None, destination=None, size=size)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise BadProxyHeader(
            "PROXY v1 header not of the form 'PROXY TCP4|TCP6 SRC DST SPORT DPORT'"
        )
    family = 4 if fields[1] == "TCP4" else 6
    source = (_v1_host(fields[2], family), _v1_port(fields[4]))
    destination = (_v1_host(fields[3], family), _v1_port(fields[5]))
    return ProxyHeader(version=1, source=source, destination=destination, size=size)


def _v1_host(text: str, family: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise BadProxyHeader(f"PROXY v1 header with a bad address {text[:46]!r}") from None
    if address.version != family:
        raise BadProxyHeader(f"PROXY v1 header: {text!r} is not an IPv{family} address")
    return str(address)


def _v1_port(text: str) -> int:
    if not (text.isdigit() and text.isascii()) or len(text) > 5 or int(text) > 0xFFFF:
        raise BadProxyHeader(f"PROXY v1 header with a bad port {text[:8]!r}")
    if len(text) > 1 and text.startswith("0"):
        raise BadProxyHeader(f"PROXY v1 header with a bad port {text!r} (leading zero)")
    return int(text)


def _parse_v2_addresses(family: int, body: bytes, size: int) -> ProxyHeader:
    if family in _NO_ADDRESS:
        return ProxyHeader(version=2, source=None, destination=None, size=size)
    if family not in _INET:
        transport = "datagram" if family & 0x0F == 0x2 else f"family/transport {family:#04x}"
        raise BadProxyHeader(f"PROXY v2 header for {transport} on a TCP connection")
    needed, layout = _INET[family]
    if len(body) < needed:
        raise BadProxyHeader(f"PROXY v2 header with {len(body)} address bytes, needs {needed}")
    src, dst, sport, dport = layout.unpack_from(body)
    source = (str(ipaddress.ip_address(src)), sport)
    destination = (str(ipaddress.ip_address(dst)), dport)
    return ProxyHeader(version=2, source=source, destination=destination, size=size)


def encode_v2(source: tuple[str, int] | None, destination: tuple[str, int] | None = None) -> bytes:
    """A version 2 header: PROXY for ``source`` (and ``destination``), LOCAL without one.

    For tests and tools that stand in for a proxy.
    """
    if source is None:
        return V2_FIXED.pack(V2_SIGNATURE, 0x20, 0x00, 0)
    src = ipaddress.ip_address(source[0])
    dst = ipaddress.ip_address(
        destination[0] if destination else ("0.0.0.0" if src.version == 4 else "::")
    )
    family = 0x11 if src.version == 4 else 0x21
    size, layout = _INET[family]
    body = layout.pack(src.packed, dst.packed, source[1], destination[1] if destination else 0)
    return V2_FIXED.pack(V2_SIGNATURE, 0x21, family, size) + body


def encode_v1(source: tuple[str, int] | None, destination: tuple[str, int] | None = None) -> bytes:
    """A version 1 header: TCP4/TCP6 for ``source``, UNKNOWN without one."""
    if source is None:
        return b"PROXY UNKNOWN\r\n"
    src = ipaddress.ip_address(source[0])
    dst_host, dst_port = destination or ("0.0.0.0" if src.version == 4 else "::", 0)
    line = f"PROXY TCP{src.version} {src} {dst_host} {source[1]} {dst_port}\r\n"
    return line.encode("ascii")
