"""PROXY protocol on both ports, over real sockets: ``serve --trusted-proxy`` (server/peer.py).

The test stands in for the proxy: it connects from 127.0.0.1 (the trusted proxy) and
writes the header HAProxy would, naming a client at a documentation address (198.51.100.x,
which only ever appears inside a header); a stranger connects from 127.0.0.2.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from securechat.config import ThrottlePolicy
from securechat.protocol.proxy import encode_v1, encode_v2
from securechat.server.peer import TrustedProxies, parse_trusted_proxy
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.logs import logged
from tests.peer import Peer
from tests.web_peer import WebPeer

PROXY = "127.0.0.1"
STRANGER = "127.0.0.2"
CLIENT = ("198.51.100.7", 40001)
OTHER_CLIENT = ("198.51.100.8", 40002)
TRUSTED = (PROXY,)

Header = Callable[[tuple[str, int] | None], bytes]
DROPPED = (ssl.SSLError, OSError)  # what the client's TLS handshake meets


@pytest.fixture(params=["v1", "v2"])
def header(request: pytest.FixtureRequest) -> Header:
    """A PROXY header of each version: for a client, or LOCAL/UNKNOWN for None."""
    encode: Header = encode_v1 if request.param == "v1" else encode_v2
    return encode


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="securechat.server")
    return caplog


def _via_proxy(running: RunningServer, header: Header, client: tuple[str, int] | None) -> Peer:
    return running.peer(source=PROXY, prefix=header(client))


def _web(running: RunningServer, source: str, prefix: bytes = b"") -> WebPeer:
    assert running.web_address is not None
    return WebPeer(running.web_address, running.ca_file, source=source, prefix=prefix)


# --- a trusted proxy's header is the connection's address ---------------------------------


def test_a_trusted_proxys_header_names_the_client_in_the_log(
    server_factory: ServerFactory, header: Header, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(web_port=0, trusted_proxies=TRUSTED)
    with _via_proxy(running, header, CLIENT) as peer:
        peer.login("alice", PASSWORD)
    logged(logs, r"^connect 198\.51\.100\.7:40001 via 127\.0\.0\.1:\d+ \(TLSv1\.3\)$")
    logged(logs, r"^login alice from 198\.51\.100\.7:40001 via 127\.0\.0\.1:\d+ \(password\)$")
    logged(logs, r"^disconnect alice@198\.51\.100\.7:40001: ")
    with _web(running, PROXY, header(OTHER_CLIENT)) as browser:
        browser.login("bob", PASSWORD)
    logged(logs, r"^connect 198\.51\.100\.8:40002 via 127\.0\.0\.1:\d+ \(web\)$")
    logged(logs, r"^login bob from 198\.51\.100\.8:40002 via 127\.0\.0\.1:\d+ \(password\)$")


def test_the_login_throttle_counts_the_client_a_trusted_proxy_names(
    server_factory: ServerFactory, header: Header
) -> None:
    strict = ThrottlePolicy(
        free_failures=1, free_failures_per_address=1, free_failures_per_account=100,
        first_delay=300.0, max_delay=300.0,
    )  # fmt: skip
    running = server_factory(trusted_proxies=TRUSTED, throttle=strict)

    def attempt(client: tuple[str, int], password: str) -> str:
        with _via_proxy(running, header, client) as peer:
            peer.expect("hello")
            peer.send(type="auth", user="alice", password=password)
            code: str = peer.recv().get("code", "welcome")
            return code

    codes = [attempt(CLIENT, "wrong password") for _ in range(3)]
    assert codes[-1] == "rate_limited", codes
    assert attempt(CLIENT, PASSWORD) == "rate_limited"  # this client is held back...
    assert attempt(OTHER_CLIENT, PASSWORD) == "welcome"  # ...not everyone behind the proxy


def test_the_caps_per_address_count_the_client_not_the_proxy(
    server_factory: ServerFactory, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(
        web_port=0, trusted_proxies=TRUSTED, max_unauthenticated_per_ip=1,
        max_sessions_per_address=1,
    )  # fmt: skip
    first = _via_proxy(running, encode_v2, CLIENT)
    first.expect("hello")
    other = _via_proxy(running, encode_v2, OTHER_CLIENT)  # the proxy itself is not capped
    other.expect("hello")
    second = _via_proxy(running, encode_v2, CLIENT)  # CLIENT's one place: its oldest makes room
    second.expect("hello")
    first.expect_closed()
    evicted = r"^closing 198\.51\.100\.7:40001: waited longest to log in"
    logged(logs, evicted)
    for peer, user in ((other, "bob"), (second, "alice")):  # OTHER_CLIENT's place was untouched
        peer.send(type="auth", user=user, password=PASSWORD)
        peer.expect("welcome")
    _web(running, PROXY, encode_v2(CLIENT))  # the same count on the web port: waiting...
    third = _via_proxy(running, encode_v2, CLIENT)  # ...until CLIENT's next connection came
    third.expect("hello")
    assert len([r for r in logs.records if re.search(evicted, r.getMessage())]) == 2
    third.send(type="auth", user="carol", password=PASSWORD)
    assert third.recv()["code"] == "too_many_sessions"  # CLIENT's one session is taken


# --- dropped: a header from anyone else, no header from a trusted proxy -------------------


@pytest.mark.parametrize("trusted", [TRUSTED, ()], ids=["another-trusted", "none-trusted"])
def test_a_header_from_an_address_that_is_not_a_trusted_proxy_is_dropped(
    server_factory: ServerFactory,
    header: Header,
    trusted: tuple[str, ...],
    logs: pytest.LogCaptureFixture,
) -> None:
    running = server_factory(web_port=0, trusted_proxies=trusted)
    with pytest.raises(DROPPED):
        running.peer(source=STRANGER, prefix=header(CLIENT)).expect("hello")
    logged(logs, r"^dropped connection from 127\.0\.0\.2:\d+: a PROXY protocol header from an ")
    with pytest.raises(DROPPED):
        _web(running, STRANGER, header(CLIENT))
    logged(logs, r"^dropped web connection from 127\.0\.0\.2:\d+: a PROXY protocol header ")
    with running.login("alice", source=STRANGER):  # the same address without a header is fine
        logged(logs, r"^login alice from 127\.0\.0\.2:\d+ \(password\)$")
    with _web(running, STRANGER) as browser:
        browser.login("bob", PASSWORD)


def test_a_trusted_proxys_connection_without_a_header_is_dropped(
    server_factory: ServerFactory, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(web_port=0, trusted_proxies=TRUSTED)
    with pytest.raises(DROPPED):
        running.peer(source=PROXY).expect("hello")
    logged(logs, r"^dropped connection from 127\.0\.0\.1:\d+: no PROXY protocol header$")
    with pytest.raises(DROPPED):
        _web(running, PROXY)
    logged(logs, r"^dropped web connection from 127\.0\.0\.1:\d+: no PROXY protocol header$")
    with _web(running, STRANGER) as browser:  # anyone else needs none
        browser.login("bob", PASSWORD)


def test_a_malformed_header_from_a_trusted_proxy_is_dropped(
    server_factory: ServerFactory, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(trusted_proxies=TRUSTED, max_proxy_header=64)
    with pytest.raises(DROPPED):
        running.peer(source=PROXY, prefix=b"PROXY TCP4 1.2.3.4 nowhere 1 2\r\n").expect("hello")
    logged(logs, r"^dropped connection from 127\.0\.0\.1:\d+: PROXY v1 header with a bad addr")
    too_long = encode_v2(CLIENT)[:14] + (64 - 15).to_bytes(2, "big")  # 65 bytes with it
    with pytest.raises(DROPPED):
        running.peer(source=PROXY, prefix=too_long + bytes(49)).expect("hello")
    logged(logs, r"^dropped connection from 127\.0\.0\.1:\d+: PROXY v2 header of 65 bytes, over 64")


# --- LOCAL (health checks), silence, and the bytes after the header ------------------------


def test_a_local_header_keeps_the_proxys_address_and_its_health_checks_stay_quiet(
    server_factory: ServerFactory, header: Header, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(web_port=0, trusted_proxies=TRUSTED)
    with _via_proxy(running, header, None) as peer:  # LOCAL (v2) or UNKNOWN (v1)
        peer.login("alice", PASSWORD)
    logged(logs, r"^login alice from 127\.0\.0\.1:(\d+) \(proxy, no client named\) \(password\)$")
    assert running.web_address is not None
    for address in (running.address, running.web_address):  # what HAProxy's check does
        with socket.create_connection(address, source_address=(PROXY, 0)) as check:
            check.sendall(header(None))
    failure = logged(logs, r"^TLS failure from 127\.0\.0\.1:\d+ \(proxy, no client named\): ")
    assert failure.levelno == logging.DEBUG
    time.sleep(0.2)  # the web port's check, too: nothing is logged above debug for either
    noisy = [r.getMessage() for r in logs.records if r.levelno >= logging.INFO]
    assert not [m for m in noisy if "TLS failure" in m or "dropped" in m], noisy


@pytest.mark.parametrize("sent", [b"", encode_v2(CLIENT)[:20], b"PROXY TCP4 198.51"])
def test_a_silent_or_half_sent_header_is_cut_at_the_handshake_deadline(
    server_factory: ServerFactory, sent: bytes, logs: pytest.LogCaptureFixture
) -> None:
    running = server_factory(
        web_port=0, trusted_proxies=TRUSTED, handshake_timeout=1.0, auth_timeout=1.0
    )
    assert running.web_address is not None
    for address in (running.address, running.web_address):
        with socket.create_connection(address, source_address=(PROXY, 0)) as silent:
            silent.sendall(sent)
            silent.settimeout(TIMEOUT)
            assert silent.recv(1) == b""  # closed by the server, not left waiting
    logged(logs, r"^TLS failure from 127\.0\.0\.1:\d+: nothing received in time")


class BioTls:
    """A TLS client over memory BIOs, so a test decides how its bytes are cut into writes."""

    def __init__(self, sock: socket.socket, ca_file: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca_file))
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname="localhost")
        self._sock = sock

    def client_hello(self) -> bytes:
        with pytest.raises(ssl.SSLWantReadError):
            self._tls.do_handshake()
        return self._out.read()

    def _pump(self, step: Callable[[], bytes | None]) -> bytes:
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                result = None
            self._sock.sendall(self._out.read())
            if result is not None:
                return result
            data = self._sock.recv(65536)
            assert data, "closed by the server"
            self._in.write(data)

    def handshake(self) -> None:
        def step() -> bytes:
            self._tls.do_handshake()
            return b""

        self._pump(step)

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self._sock.sendall(self._out.read())

    def receive(self) -> bytes:
        return self._pump(lambda: self._tls.read(65536))


def test_the_tls_bytes_sent_with_the_header_in_one_write_are_not_lost(
    server_factory: ServerFactory, header: Header
) -> None:
    running = server_factory(web_port=0, trusted_proxies=TRUSTED)
    assert running.web_address is not None
    with socket.create_connection(running.address, TIMEOUT, (PROXY, 0)) as sock:
        tls = BioTls(sock, running.ca_file)
        sock.sendall(header(CLIENT) + tls.client_hello())  # one segment: header, then TLS
        tls.handshake()
        assert b'"type":"hello"' in tls.receive().replace(b" ", b"")
    with socket.create_connection(running.web_address, TIMEOUT, (PROXY, 0)) as sock:
        tls = BioTls(sock, running.ca_file)
        sock.sendall(header(CLIENT) + tls.client_hello())
        tls.handshake()
        tls.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert tls.receive().startswith(b"HTTP/1.1 200 OK\r\n")


def test_trusted_proxies_match_addresses_in_their_networks_only() -> None:
    proxies = TrustedProxies([parse_trusted_proxy("10.0.0.0/24"), parse_trusted_proxy("fd00::5")])
    assert "10.0.0.7" in proxies
    assert "::ffff:10.0.0.7" in proxies  # as a dual-stack listener sees an IPv4 proxy
    assert "fd00::5%eth0" in proxies  # with an IPv6 zone
    for other in ("10.0.1.7", "fd00::6", "127.0.0.1", "proxy.lan", ""):
        assert other not in proxies
    assert not TrustedProxies()
    assert "127.0.0.1" not in TrustedProxies()
