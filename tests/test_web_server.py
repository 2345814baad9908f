"""The web port over real TLS on 127.0.0.1: WebSocket sessions, origins, limits, static files."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, Unpack

import pytest
from cryptography import x509
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from securechat.certs import load_ca
from securechat.config import ThrottlePolicy
from securechat.protocol.frames import encode_frame
from securechat.server.connection import ServerConnection
from securechat.server.renewal import Credentials
from securechat.server.webfiles import Origins, StaticFiles, load_package_files
from securechat.server.webframes import FramedOnce, split_frames, text_frames
from securechat.tls import server_context
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.logs import logged
from tests.web_peer import ConnectOptions, RawWebSocket, WebPeer, origin_of


class WebFactory(Protocol):
    """The ``web_peer`` fixture: ``web_peer(max_size=None)``."""

    def __call__(self, **options: Unpack[ConnectOptions]) -> WebPeer: ...


@pytest.fixture
def web_server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0)


@pytest.fixture
def web_peer(web_server: RunningServer) -> Iterator[WebFactory]:
    """Open WebSocket sessions to ``web_server``; closed after the test."""
    peers: list[WebPeer] = []

    def open_peer(**options: Unpack[ConnectOptions]) -> WebPeer:
        assert web_server.web_address is not None
        peer = WebPeer(web_server.web_address, web_server.ca_file, **options)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        peer.close()


def _get(
    running: RunningServer, path: str, method: str = "GET", **headers: str
) -> http.client.HTTPResponse:
    assert running.web_address is not None
    context = ssl.create_default_context(cafile=str(running.ca_file))
    connection = http.client.HTTPSConnection(
        "localhost", running.web_address[1], context=context, timeout=TIMEOUT
    )
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


# --- sessions --------------------------------------------------------------------------


def test_web_session_logs_in_with_the_same_protocol(web_peer: WebFactory) -> None:
    peer = web_peer()
    hello = peer.recv()
    assert hello["type"] == "hello"
    assert hello["max_frame"] == 65536
    peer.send(type="auth", user="Alice", password=PASSWORD)
    welcome = peer.expect("welcome")
    assert welcome["user"] == "alice"
    assert welcome["token"]


def test_web_session_wrong_password_is_auth_failed_and_closed(web_peer: WebFactory) -> None:
    peer = web_peer()
    peer.expect("hello")
    peer.send(type="auth", user="alice", password="wrong password")
    events = peer.expect_closed()
    assert events[-1]["code"] == "auth_failed"


def test_web_session_resumes_with_its_token(web_peer: WebFactory) -> None:
    token = web_peer().login("alice", PASSWORD)["token"]
    peer = web_peer()
    peer.expect("hello")
    peer.send(type="auth", user="alice", token=token)
    assert peer.expect("welcome")["token"] == token


def test_browser_and_terminal_client_chat_both_ways(
    web_server: RunningServer, web_peer: WebFactory
) -> None:
    browser = web_peer()
    browser.login("alice", PASSWORD)
    terminal = web_server.login("bob")
    browser.send(type="send", room="general", body="hello from the browser", ref="w1")
    ack = browser.expect("ack", ref="w1")
    message = terminal.expect("message", body="hello from the browser")
    assert message["id"] == ack["id"]
    assert message["from"] == "alice"
    terminal.send(type="send", to="alice", body="hi back, directly", ref="t1")
    direct = browser.expect("message", body="hi back, directly")
    assert direct["from"] == "bob"
    assert direct["to"] == "alice"


def test_a_fan_out_to_an_idle_browser_is_written_by_the_delivery_thread_itself(
    web_server: RunningServer, web_peer: WebFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = web_peer()
    browser.login("alice", PASSWORD)
    served = web_server.server.parts.admission.logged_in()
    assert len(served) == 1
    connection = served[0]
    assert isinstance(connection, ServerConnection)
    framing = connection._framing
    writers: list[threading.Thread] = []
    frame_blob = framing.blob

    def blob(data: bytes) -> bytes:
        writers.append(threading.current_thread())
        return frame_blob(data)

    monkeypatch.setattr(framing, "blob", blob)
    terminal = web_server.login("bob")
    for n in range(20):  # one at a time: the browser's connection sits idle in between
        terminal.send(type="send", room="general", body=f"m{n}", ref=f"r{n}")
        browser.expect("message", body=f"m{n}")
    # The fast path (any thread but the connection's own framing the blob) took some;
    # under load some may go through the outbox, never all of them.
    assert any(writer is not connection.thread for writer in writers)


def test_web_session_welcome_comes_before_any_fan_out(
    web_server: RunningServer, web_peer: WebFactory
) -> None:
    bob = web_server.login("bob")
    for attempt in range(10):
        browser = web_peer()
        browser.expect("hello")
        bob.send(type="send", room="general", body=f"busy {attempt}", ref=f"b{attempt}")
        browser.send(type="auth", user="alice", password=PASSWORD)
        assert browser.recv()["type"] == "welcome"
        browser.close()


def test_web_session_history_sync_who_and_errors(web_peer: WebFactory) -> None:
    peer = web_peer()
    welcome = peer.login("alice", PASSWORD)
    for n in range(3):
        peer.send(type="send", room="general", body=f"m{n}", ref=f"r{n}")
        peer.expect("ack", ref=f"r{n}")
    peer.send(type="history", room="general", limit=2, ref="h")
    page = peer.expect("history", ref="h")
    assert [m["body"] for m in page["messages"]] == ["m1", "m2"]
    assert page["more"] is True
    peer.send(type="sync", since=welcome["last_id"], ref="s")
    assert peer.expect("synced", ref="s")["more"] is False
    peer.send(type="who", ref="w")
    assert "alice" in peer.expect("who", ref="w")["online"]
    peer.send(type="send", room="nowhere", body="x", ref="bad")
    assert peer.expect("error", ref="bad")["code"] == "no_such_room"
    peer.send(type="nonsense", ref="n")
    assert peer.expect("error", ref="n")["code"] == "unknown_type"
    peer.send(type="ping", ref="p")
    peer.expect("pong", ref="p")  # still open after the errors


def test_web_request_before_login_is_auth_required_and_closed(web_peer: WebFactory) -> None:
    peer = web_peer()
    peer.expect("hello")
    peer.send(type="join", room="general")
    events = peer.expect_closed()
    assert events[-1]["code"] == "auth_required"


def test_web_message_over_max_frame_gets_an_error_then_a_close(web_peer: WebFactory) -> None:
    peer = web_peer(max_size=None)
    peer.login("alice", PASSWORD)
    peer.ws.send("x" * 65537)
    events = peer.expect_closed()
    assert events[-1]["code"] == "frame_too_large"
    assert peer.ws.close_code == 1009


def test_web_message_at_max_frame_is_read(web_peer: WebFactory) -> None:
    peer = web_peer()
    peer.login("alice", PASSWORD)
    payload = '{"type":"ping","ref":"p"}'
    peer.ws.send(payload + " " * (65536 - len(payload)))
    peer.expect("pong", ref="p")


def test_web_sessions_are_rate_limited(server_factory: ServerFactory) -> None:
    running = server_factory(web_port=0, rate_per_second=5, rate_burst=5)
    assert running.web_address is not None
    with WebPeer(running.web_address, running.ca_file) as peer:
        peer.login("alice", PASSWORD)
        for n in range(10):
            peer.send(type="ping", ref=f"p{n}")
        codes = [peer.recv().get("code") for _ in range(10)]
        assert "rate_limited" in codes


RATE_BURST = 400  # Limits.rate_burst: the frames a full bucket admits at once
#: What refills meanwhile: 3 s at Limits.rate_per_second (200/s), the time 2,000 frames may
#: take to read on a loaded machine. Unmetered, all 2,000 would be answered.
REFILLED = 600


def _pings(count: int) -> bytes:
    return b"".join(Frame(Opcode.PING, b"%d" % n).serialize(mask=True) for n in range(count))


@pytest.fixture
def raw_web(web_server: RunningServer) -> Iterator[RawWebSocket]:
    """A raw WebSocket to ``web_server`` that has read its ``hello``."""
    assert web_server.web_address is not None
    raw = RawWebSocket(web_server.web_address, web_server.ca_file)
    try:
        raw.read_until(lambda: bool(raw.texts()))
        assert raw.texts()[0]["type"] == "hello"
        yield raw
    finally:
        raw.close()


def _assert_web_serving(running: RunningServer) -> None:
    """A brand-new browser session still logs in and is answered."""
    assert running.web_address is not None
    with WebPeer(running.web_address, running.ca_file) as peer:
        peer.login("dave", PASSWORD)
        peer.send(type="ping", ref="alive")
        assert peer.expect("pong") == {"type": "pong", "ref": "alive"}


def test_2000_websocket_pings_before_login_are_not_all_answered(
    web_server: RunningServer, raw_web: RawWebSocket
) -> None:
    raw_web.send(_pings(2000))
    raw_web.read_until_quiet(quiet=TIMEOUT)
    assert raw_web.closed  # over the rate before login: closed, like any error then
    # A full bucket, and what refills meanwhile (fewer may arrive: the close resets the
    # connection with the rest unread, and a reset can drop what was in flight).
    assert raw_web.count(Opcode.PONG) < RATE_BURST + REFILLED
    assert {e.get("code", e["type"]) for e in raw_web.texts()} <= {"hello", "rate_limited"}
    _assert_web_serving(web_server)


def test_2000_websocket_pings_after_login_are_metered_like_requests(
    web_server: RunningServer, raw_web: RawWebSocket
) -> None:
    raw_web.send_text(json.dumps({"type": "auth", "user": "alice", "password": PASSWORD}))
    raw_web.read_until(lambda: any(e["type"] == "welcome" for e in raw_web.texts()))
    raw_web.send(Frame(Opcode.PING, b"one").serialize(mask=True))
    raw_web.read_until(lambda: raw_web.count(Opcode.PONG) == 1)  # within the rate: answered
    seen = len(raw_web.texts())
    who = Frame(Opcode.TEXT, b'{"type":"who","ref":"w"}').serialize(mask=True)
    raw_web.send(_pings(2000) + who)
    raw_web.read_until_quiet(quiet=TIMEOUT)
    codes = [
        e.get("code", e["type"])
        for e in raw_web.texts()[seen:]
        if not e["type"].startswith("presence")
    ]
    assert "who" not in codes  # the pings spent the bucket: the request behind them waits
    assert raw_web.closed  # refused at twice the rate limit: closed
    assert set(codes) <= {"rate_limited"}
    assert raw_web.count(Opcode.PONG) < RATE_BURST + REFILLED
    _assert_web_serving(web_server)


def test_websocket_pongs_from_the_browser_are_metered_too(
    web_server: RunningServer, raw_web: RawWebSocket
) -> None:
    pongs = b"".join(Frame(Opcode.PONG, b"x").serialize(mask=True) for _ in range(2000))
    raw_web.send(pongs)
    raw_web.read_until_quiet(quiet=TIMEOUT)
    assert raw_web.closed
    assert {e.get("code", e["type"]) for e in raw_web.texts()} <= {"hello", "rate_limited"}


# --- the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://localhost", "http://localhost:{port}",
     "https://localhost:{port}.evil.example", "null"],
)  # fmt: skip
def test_web_handshake_from_a_foreign_origin_is_403(web_server: RunningServer, origin: str) -> None:
    assert web_server.web_address is not None
    port = web_server.web_address[1]
    with pytest.raises(InvalidStatus) as refused:
        WebPeer(web_server.web_address, web_server.ca_file, origin=origin.format(port=port))
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_web_handshake_from_the_servers_own_origins_opens(
    web_server: RunningServer, host: str
) -> None:
    assert web_server.web_address is not None
    origin = origin_of(web_server.web_address, host)
    with WebPeer(web_server.web_address, web_server.ca_file, origin=origin) as peer:
        assert peer.recv()["type"] == "hello"


def test_origins_are_the_certificate_names_with_the_port() -> None:
    origins = Origins(["chat.office.lan", "192.168.1.20", "::1", "*.corp.example"], 5443)
    assert origins.allows("https://chat.office.lan:5443")
    assert origins.allows("https://CHAT.office.lan:5443")
    assert origins.allows("https://192.168.1.20:5443")
    assert origins.allows("https://[::1]:5443")
    assert origins.allows("https://chat.corp.example:5443")
    assert not origins.allows("https://a.b.corp.example:5443")
    assert not origins.allows("https://chat.office.lan")
    assert not origins.allows("https://chat.office.lan:5050")
    assert not origins.allows(None)
    on_443 = Origins(["chat.office.lan"], 443)
    assert on_443.allows("https://chat.office.lan")
    assert "wss://chat.office.lan:5443" in origins.websocket_sources()


def test_a_wildcard_name_allows_its_origins_only_with_the_web_port() -> None:
    origins = Origins(["*.office.lan"], 5443)
    assert origins.allows("https://chat.office.lan:5443")
    assert not origins.allows("https://any.office.lan")  # port 443: another server
    assert not origins.allows("https://any.office.lan:443")
    assert not origins.allows("https://any.office.lan:5050")
    on_443 = Origins(["*.office.lan"], 443)
    assert on_443.allows("https://any.office.lan")
    assert on_443.allows("https://any.office.lan:443")
    assert not on_443.allows("https://any.office.lan:5443")


def _raw_request(
    running: RunningServer, method: str, path: str, headers: list[tuple[str, str]]
) -> http.client.HTTPResponse:
    """``method path`` with exactly ``headers`` (repeats and all) besides ``Host``."""
    assert running.web_address is not None
    context = ssl.create_default_context(cafile=str(running.ca_file))
    connection = http.client.HTTPSConnection(
        "localhost", running.web_address[1], context=context, timeout=TIMEOUT
    )
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _upgrade_headers(running: RunningServer) -> list[tuple[str, str]]:
    assert running.web_address is not None
    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()),
        ("Sec-WebSocket-Version", "13"),
        ("Origin", origin_of(running.web_address)),
    ]


def _assert_our_security_headers(
    running: RunningServer, response: http.client.HTTPResponse
) -> None:
    """``response`` carries every security header with the value our own 404 carries."""
    ours = _get(running, "/no-such-file")
    names = [name for name, _ in ours.getheaders() if name not in _PER_RESPONSE_HEADERS]
    assert "Content-Security-Policy" in names
    for name in names:
        assert response.getheader(name) == ours.getheader(name), name


_PER_RESPONSE_HEADERS = ("Content-Type", "Content-Length", "Connection", "Date")


def test_two_origin_headers_get_a_400_with_the_headers_and_one_log_line(
    web_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = [*_upgrade_headers(web_server), ("Origin", "https://evil.example")]
    response = _raw_request(web_server, "GET", "/ws", headers)
    assert response.status == 400
    _assert_our_security_headers(web_server, response)
    assert [r.exc_info for r in caplog.records] == [None]  # one line, no traceback
    assert "2 Origin headers" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("case", "status"),
    [("too many headers", 431), ("a header line too long", 431),
     ("a request line too long", 414), ("no upgrade", 426), ("a bad key", 400),
     ("a POST", 405)],
)  # fmt: skip
def test_the_answers_websockets_writes_itself_carry_the_security_headers(
    web_server: RunningServer, case: str, status: int
) -> None:
    method, path, headers = "GET", "/ws", _upgrade_headers(web_server)
    if case == "too many headers":
        headers += [(f"X-Filler-{n}", "x") for n in range(130)]
    elif case == "a header line too long":
        headers.append(("X-Filler", "x" * 9000))
    elif case == "a request line too long":
        path = "/ws?" + "x" * 9000
    elif case == "no upgrade":
        headers = [h for h in headers if h[0] not in ("Upgrade", "Connection")]
    elif case == "a bad key":
        headers = [h if h[0] != "Sec-WebSocket-Key" else (h[0], "nope") for h in headers]
    else:
        method = "POST"
    response = _raw_request(web_server, method, path, headers)
    assert response.status == status
    _assert_our_security_headers(web_server, response)


def test_web_port_counts_against_the_per_address_login_cap(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(web_port=0, max_unauthenticated_per_ip=2)
    assert running.web_address is not None
    first = WebPeer(running.web_address, running.ca_file)
    second = running.peer()
    second.expect("hello")
    try:
        # The cap is full: a third comes in all the same, closing the one that waited longest.
        with WebPeer(running.web_address, running.ca_file) as third:
            assert [event["type"] for event in first.expect_closed()] == ["hello"]
            third.login("alice", PASSWORD)
        second.send(type="auth", user="bob", password=PASSWORD)
        second.expect("welcome")
    finally:
        first.close()


# --- static files ----------------------------------------------------------------------

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "Referrer-Policy",
)


def test_web_root_serves_the_page_with_security_headers(web_server: RunningServer) -> None:
    response = _get(web_server, "/")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    csp = response.getheader("Content-Security-Policy") or ""
    for directive in (
        "default-src 'self'", "script-src 'self'", "style-src 'self'",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'",
    ):  # fmt: skip
        assert directive in csp
    assert "unsafe" not in csp
    # Attachment previews are blob: URLs the page made; nothing else, no data: URLs.
    assert "img-src 'self' blob:;" in csp
    assert "data:" not in csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert (response.getheader("Strict-Transport-Security") or "").startswith("max-age=")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/app.js", "text/javascript; charset=utf-8"), ("/app.css", "text/css; charset=utf-8")],
)
def test_web_serves_each_shipped_file_with_its_type(
    web_server: RunningServer, path: str, content_type: str
) -> None:
    response = _get(web_server, path)
    assert response.status == 200
    assert response.getheader("Content-Type") == content_type


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fpyproject.toml",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/..\\pyproject.toml", "//etc/passwd",
        "/web/", "/__init__.py", "/index.html/", "/.", "/./app.js", "/APP.JS", "/ws/",
    ],
)  # fmt: skip
def test_web_refuses_anything_but_the_shipped_files(web_server: RunningServer, path: str) -> None:
    response = _get(web_server, path)
    assert response.status == 404
    for header in SECURITY_HEADERS:
        assert response.getheader(header)


def test_web_answers_head_without_a_body_and_refuses_other_methods(
    web_server: RunningServer,
) -> None:
    head = _get(web_server, "/app.js", method="HEAD")
    assert head.status == 200
    assert int(head.getheader("Content-Length") or 0) > 0
    post = _get(web_server, "/", method="POST")
    assert post.status == 405
    assert post.getheader("Allow") == "GET, HEAD"


def test_static_files_allowlist_is_the_package_folder() -> None:
    files = StaticFiles(load_package_files())
    assert {"/", "/index.html", "/app.js", "/app.css"} <= files.paths
    assert not any(path.endswith(".py") for path in files.paths)
    assert files.answer("GET", "/app.js?v=1").status == 200


# --- shutdown --------------------------------------------------------------------------


def test_shutdown_says_bye_to_web_sessions_and_leaves_no_thread(
    server_factory: ServerFactory,
) -> None:
    before = set(threading.enumerate())
    running = server_factory(web_port=0)
    assert running.web_address is not None
    peer = WebPeer(running.web_address, running.ca_file)
    peer.login("alice", PASSWORD)
    silent = socket.create_connection(running.web_address, timeout=TIMEOUT)  # no TLS at all
    try:
        running.server.shutdown()
        events = peer.expect_closed()
        assert events[-1] == {"type": "bye", "reason": "shutting_down"}
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        assert not [t for t in left if t.name != "MainThread"], left
    finally:
        silent.close()
        peer.close()


def test_browser_that_never_reads_is_dropped_while_others_keep_receiving(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(
        web_port=0, outbox_frames=200, outbox_bytes=256 * 1024, rate_per_second=10_000
    )
    assert running.web_address is not None
    sleeper = WebPeer(running.web_address, running.ca_file, max_queue=1)
    try:
        sleeper.login("bob", PASSWORD)
        alice, carol = running.login("alice"), running.login("carol")
        body = "x" * 4000
        count = 3000  # 12 MB: more than the socket buffers, the receive queue and the outbox
        started = time.monotonic()
        for n in range(count):
            alice.send(type="send", room="general", body=body, ref=f"r{n}")
            if n % 50 == 49:
                acked = time.monotonic()
                alice.expect("ack", ref=f"r{n}")
                # Never held up by the sleeper: that would last its 20 s stuck-writer timeout.
                assert time.monotonic() - acked < 8
                for _ in range(50):
                    carol.expect("message", body=body)
        events = sleeper.expect_closed(timeout=10)
        assert len(events) < count
        assert time.monotonic() - started < 30  # dropped by the outbox bound, not a timeout
    finally:
        sleeper.close()


def _served_serial(address: tuple[str, int], ca_file: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_web_port_presents_the_chat_servers_current_certificate(
    server_factory: ServerFactory, certs_dir: Path, tmp_path: Path
) -> None:
    running = server_factory(web_port=0)
    assert running.web_address is not None
    ca = load_ca(certs_dir)
    for n in range(2):  # what the certificate renewer does: a new context, swapped in
        issued = ca.issue_server_cert(["localhost"])
        (tmp_path / f"{n}.pem").write_bytes(issued.cert_pem())
        (tmp_path / f"{n}.key").write_bytes(issued.key_pem())
        context = server_context(tmp_path / f"{n}.pem", tmp_path / f"{n}.key")
        running.server._install(Credentials(context, running.ca_file.read_text()))
        assert _served_serial(running.web_address, running.ca_file) == issued.cert.serial_number


def test_split_frames_turns_a_fan_out_blob_into_payloads() -> None:
    payloads = [b'{"type":"ping"}', b"x" * 70_000, b"{}"]
    blob = b"".join(encode_frame(p) for p in payloads)
    assert split_frames(blob) == payloads
    assert split_frames(b"") == []


def test_web_logins_are_throttled_like_the_chat_ports(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(web_port=0, throttle=ThrottlePolicy(free_failures=1, first_delay=60))
    assert running.web_address is not None
    attempts = (("wrong", "auth_failed"), ("wrong", "auth_failed"), (PASSWORD, "rate_limited"))
    for password, code in attempts:
        with WebPeer(running.web_address, running.ca_file) as peer:
            peer.expect("hello")
            peer.send(type="auth", user="alice", password=password)
            assert peer.expect_closed()[-1]["code"] == code
    terminal = running.peer()  # the same (user, address) on the other port: throttled too
    terminal.expect("hello")
    terminal.send(type="auth", user="alice", password=PASSWORD)
    assert terminal.expect("error")["code"] == "rate_limited"


def test_web_logins_spare_tokens_and_known_users_of_a_guessed_address(
    server_factory: ServerFactory,
) -> None:
    policy = ThrottlePolicy(free_failures_per_address=3, first_delay=300)
    running = server_factory(web_port=0, throttle=policy)
    assert running.web_address is not None
    running.login("alice")  # alice and bob have logged in from 127.0.0.1 before

    def attempt(**fields: str) -> dict[str, object]:
        assert running.web_address is not None
        with WebPeer(running.web_address, running.ca_file) as peer:
            peer.expect("hello")
            peer.send(type="auth", **fields)
            return dict(peer.recv())

    bob = running.peer()
    bob_token = bob.login("bob", PASSWORD)["token"]
    assert isinstance(bob_token, str)
    for n in range(4):  # made-up names from the same address: the address is delayed ...
        assert attempt(user=f"nobody{n}", password="summer2026!")["code"] == "auth_failed"
    assert attempt(user="carol", password=PASSWORD)["code"] == "rate_limited"
    # ... for names it never logged in as; not for alice's password or bob's token.
    assert attempt(user="alice", password=PASSWORD)["type"] == "welcome"
    assert attempt(user="bob", token=bob_token)["type"] == "welcome"


def test_web_requests_leave_no_descriptor_behind(web_server: RunningServer) -> None:
    import os

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    _get(web_server, "/")  # warm up: the first request loads what the server keeps
    before = descriptors()
    for _ in range(30):
        assert _get(web_server, "/app.js").status == 200
    with pytest.raises(InvalidStatus):
        WebPeer(web_server.web_address or ("", 0), web_server.ca_file, origin="https://evil")
    deadline = time.monotonic() + TIMEOUT  # connection threads finish after their response
    while descriptors() - before >= 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert descriptors() - before < 5


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frames_are_what_websockets_writes_for_send_text(size: int) -> None:
    protocol = ServerProtocol(state=OPEN)
    payloads = [b"a" * size, b'{"type":"pong"}']
    for payload in payloads:
        protocol.send_text(payload)
    expected = b"".join(protocol.data_to_send())
    assert text_frames(b"".join(encode_frame(p) for p in payloads)) == expected


def test_a_fan_out_blob_is_framed_once_for_every_browser() -> None:
    framed = FramedOnce()
    blob = encode_frame(b'{"type":"message"}') + encode_frame(b"y" * 200)
    first = framed(blob)
    assert first == text_frames(blob)
    assert framed(blob) is first  # the same blob again: not framed again
    other = bytes(bytearray(blob))  # equal, another object (another fan-out)
    assert framed(other) == first
    assert framed(other) is not first
    assert framed(encode_frame(b"z")) == b"\x81\x01z"


def test_web_opening_that_never_sends_a_request_is_closed_and_logged(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    running = server_factory(web_port=0, handshake_timeout=2.0, auth_timeout=2.0)
    assert running.web_address is not None
    context = ssl.create_default_context(cafile=str(running.ca_file))
    with (
        socket.create_connection(running.web_address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        record = logged(caplog, r"no request within 2 s from 127\.0\.0\.1")
        assert record.levelno == logging.INFO
        assert tls.recv(1) == b""  # and the server closed it


def test_a_bad_http_request_is_answered_400_with_the_headers_and_logged(
    web_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    assert web_server.web_address is not None
    context = ssl.create_default_context(cafile=str(web_server.ca_file))
    with (
        socket.create_connection(web_server.web_address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"NONSENSE\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nContent-Security-Policy: " in answer
    assert logged(caplog, r"bad HTTP request from 127\.0\.0\.1").levelno == logging.INFO


def test_a_hundred_openings_in_a_row_each_get_their_answer(web_server: RunningServer) -> None:
    """One opening in a few dozen waited 30 s for its 101: the server's TLS 1.3 session
    tickets reached websockets' threaded client while it wrote its request from another
    thread, and the request was lost. The server sends no tickets (tls.server_context)."""
    assert web_server.web_address is not None
    for _ in range(100):
        with WebPeer(web_server.web_address, web_server.ca_file) as peer:
            assert peer.expect("hello")["type"] == "hello"
