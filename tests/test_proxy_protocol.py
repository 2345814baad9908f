"""The PROXY protocol header decoder (securechat/protocol/proxy.py): pure tests with bytes."""

from __future__ import annotations

import struct

import pytest

from securechat.errors import BadProxyHeader
from securechat.protocol.proxy import (
    V1_MAX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderDecoder,
    encode_v1,
    encode_v2,
)

TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)  # what follows a header
CLIENT_V4 = ("203.0.113.7", 51234)
SERVER_V4 = ("192.0.2.1", 5050)
CLIENT_V6 = ("2001:db8::7", 443)
SERVER_V6 = ("2001:db8::1", 5443)


def read_as_a_socket_would(stream: bytes, max_size: int = 2048) -> tuple[ProxyHeader, int]:
    """Feed ``stream`` in reads of exactly ``wanted`` bytes, as the server does; the header
    and how many bytes were read."""
    decoder = ProxyHeaderDecoder(max_size)
    pos = 0
    while True:
        want = decoder.wanted
        assert want > 0
        header = decoder.feed(stream[pos : pos + want])
        pos += want
        if header is not None:
            assert decoder.rest == b""
            return header, pos


def v2(command: int, family: int, body: bytes) -> bytes:
    return struct.pack("!12sBBH", V2_SIGNATURE, command, family, len(body)) + body


# --- well-formed headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (encode_v1(CLIENT_V4, SERVER_V4), ProxyHeader(1, CLIENT_V4, SERVER_V4, 45)),
        (encode_v1(CLIENT_V6, SERVER_V6), ProxyHeader(1, CLIENT_V6, SERVER_V6, 45)),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(1, None, None, 15)),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1, None, None, 35)),
        (encode_v2(CLIENT_V4, SERVER_V4), ProxyHeader(2, CLIENT_V4, SERVER_V4, 28)),
        (encode_v2(CLIENT_V6, SERVER_V6), ProxyHeader(2, CLIENT_V6, SERVER_V6, 52)),
        (encode_v2(None), ProxyHeader(2, None, None, 16)),
    ],
    ids=["v1-tcp4", "v1-tcp6", "v1-unknown", "v1-unknown-with-addresses", "v2-ipv4", "v2-ipv6",
         "v2-local"],
)  # fmt: skip
def test_a_header_is_read_to_its_last_byte_and_not_one_more(
    header: bytes, expected: ProxyHeader
) -> None:
    got, read = read_as_a_socket_would(header + TLS_HELLO)
    assert got == expected
    assert read == len(header) == got.size
    assert got.is_local == (expected.source is None)


def test_bytes_fed_after_the_header_are_kept_as_the_rest() -> None:
    decoder = ProxyHeaderDecoder()
    header = decoder.feed(encode_v2(CLIENT_V4, SERVER_V4) + TLS_HELLO)
    assert header is not None
    assert header.source == CLIENT_V4
    assert decoder.rest == TLS_HELLO
    assert decoder.wanted == 0
    assert decoder.feed(b"more") is header
    assert decoder.rest == TLS_HELLO + b"more"


def test_a_header_fed_one_byte_at_a_time_needs_more_until_its_end() -> None:
    for stream in (encode_v1(CLIENT_V4, SERVER_V4), encode_v2(CLIENT_V6, SERVER_V6)):
        decoder = ProxyHeaderDecoder()
        for byte in stream[:-1]:
            assert decoder.feed(bytes([byte])) is None
            assert decoder.wanted >= 1
        assert decoder.feed(stream[-1:]) is not None
    assert ProxyHeaderDecoder().feed(b"") is None


def test_v2_tlvs_after_the_addresses_are_skipped() -> None:
    body = encode_v2(CLIENT_V4, SERVER_V4)[16:] + b"\x05\x00\x03abc" + b"\x04\x00\x00"
    header, read = read_as_a_socket_would(v2(0x21, 0x11, body) + TLS_HELLO)
    assert header.source == CLIENT_V4
    assert read == 16 + len(body)


@pytest.mark.parametrize("family", [0x00, 0x31], ids=["unspec", "unix-stream"])
def test_v2_proxy_without_an_ip_family_names_no_client(family: int) -> None:
    header, _ = read_as_a_socket_would(v2(0x21, family, bytes(216 if family else 0)))
    assert header.source is None


def test_v2_local_ignores_its_address_block() -> None:
    header, read = read_as_a_socket_would(v2(0x20, 0x11, encode_v2(CLIENT_V4)[16:]))
    assert (header.source, read) == (None, 28)


def test_the_longest_v1_header_the_specification_allows_is_read() -> None:
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX
    header, read = read_as_a_socket_would(line)
    assert (header.source, read) == (None, V1_MAX)


# --- malformed, truncated and oversized headers -------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        TLS_HELLO,  # a client straight through, no header
        b"GET / HTTP/1.1\r\n",
        b"PROXX TCP4",
        b"\r\n\r\n\x00\r\nQUIZ",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  # an IPv6 address in a TCP4 line
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa1 2\r\n",  # not ASCII (an Arabic-Indic digit)
        b"PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n",  # a stray LF
        b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",  # a stray CR
        b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",  # over 107 bytes
        v2(0x11, 0x11, bytes(12)),  # version 1 in a version 2 header
        v2(0x22, 0x11, bytes(12)),  # command 2
        v2(0x21, 0x12, bytes(12)),  # UDP over IPv4
        v2(0x21, 0x22, bytes(36)),  # UDP over IPv6
        v2(0x21, 0x32, bytes(216)),  # UNIX datagram
        v2(0x21, 0x41, bytes(12)),  # no such family
        v2(0x21, 0x11, bytes(11)),  # an address block too short for IPv4
        v2(0x21, 0x21, bytes(12)),  # ... and for IPv6
    ],
)
def test_anything_but_a_well_formed_header_is_refused(stream: bytes) -> None:
    decoder = ProxyHeaderDecoder()
    with pytest.raises(BadProxyHeader):
        decoder.feed(stream)
    with pytest.raises(BadProxyHeader):
        read_as_a_socket_would(stream)


def test_no_header_is_refused_from_its_first_byte() -> None:
    for first in (TLS_HELLO[:1], b"G", b"\x00"):
        with pytest.raises(BadProxyHeader, match="no PROXY protocol header"):
            ProxyHeaderDecoder().feed(first)


def test_a_v2_length_over_the_bound_is_refused_before_the_body_comes() -> None:
    decoder = ProxyHeaderDecoder(max_size=256)
    with pytest.raises(BadProxyHeader, match="over 256"):
        decoder.feed(struct.pack("!12sBBH", V2_SIGNATURE, 0x21, 0x11, 65535))
    assert ProxyHeaderDecoder(max_size=256).feed(v2(0x21, 0x11, bytes(240))) is not None


def test_a_v1_line_without_its_end_is_refused_at_107_bytes() -> None:
    decoder = ProxyHeaderDecoder()
    assert decoder.feed(b"PROXY UNKNOWN " + b"x" * 92) is None  # 106 bytes: may still end
    with pytest.raises(BadProxyHeader, match="longer than 107"):
        decoder.feed(b"x")


def test_a_truncated_header_only_asks_for_more() -> None:
    for stream in (encode_v1(CLIENT_V6, SERVER_V6), encode_v2(CLIENT_V6, SERVER_V6)):
        for cut in range(len(stream)):
            decoder = ProxyHeaderDecoder()
            assert decoder.feed(stream[:cut]) is None
            assert 0 < decoder.wanted <= len(stream) - cut
