"""Stay signed in (#26) on the web port over real TLS: the grant over the WebSocket, the
cookie from ``POST /ws/device``, the device login at the next upgrade, and everything
that must refuse them (a forged or reused grant, a foreign origin, an idle device,
sign out everywhere)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from securechat.server.webdevices import COOKIE_NAME, MAX_BODY
from securechat.store.database import open_database
from securechat.store.models import Device
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.sql import value
from tests.web_peer import WebPeer, origin_of

pytestmark = pytest.mark.postgresql

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@pytest.fixture
def web_server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0)


@pytest.fixture
def peers(web_server: RunningServer) -> Iterator[list[WebPeer]]:
    opened: list[WebPeer] = []
    yield opened
    for peer in opened:
        peer.close()


def _peer(
    running: RunningServer, opened: list[WebPeer], cookie: str | None = None,
    origin: str | None = None,
) -> WebPeer:  # fmt: skip
    assert running.web_address is not None
    headers = [("Cookie", f"{COOKIE_NAME}={cookie}")] if cookie else None
    peer = WebPeer(
        running.web_address, running.ca_file, additional_headers=headers,
        user_agent_header=CHROME, origin=origin,
    )  # fmt: skip
    opened.append(peer)
    peer.expect("hello")
    return peer


def _post(
    running: RunningServer, path: str, body: bytes, *, origin: str | None = None,
    cookie: str | None = None,
) -> http.client.HTTPResponse:  # fmt: skip
    assert running.web_address is not None
    context = ssl.create_default_context(cafile=str(running.ca_file))
    connection = http.client.HTTPSConnection(
        "localhost", running.web_address[1], context=context, timeout=TIMEOUT
    )
    headers = {
        "Origin": origin or origin_of(running.web_address),
        "Content-Type": "application/json",
    }
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _grant(running: RunningServer, opened: list[WebPeer], user: str = "alice") -> str:
    peer = _peer(running, opened)
    peer.send(type="auth", user=user, password=PASSWORD, remember=True)
    peer.expect("welcome")
    grant = peer.expect("device_grant")
    assert grant["expires_in"] > 0
    return str(grant["grant"])


def _cookie(response: http.client.HTTPResponse) -> tuple[str, set[str]]:
    """The device credential a 204 set, and the cookie's attributes."""
    header = response.getheader("Set-Cookie")
    assert header is not None
    first, *attributes = [part.strip() for part in header.split(";")]
    name, _, credential = first.partition("=")
    assert name == COOKIE_NAME
    return credential, set(attributes)


def _signed_in(running: RunningServer, opened: list[WebPeer], user: str = "alice") -> str:
    response = _post(
        running, "/ws/device", json.dumps({"grant": _grant(running, opened, user)}).encode()
    )
    assert response.status == 204
    return _cookie(response)[0]


def test_stay_signed_in_grant_trades_for_a_strict_httponly_cookie_that_logs_in(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    grant = _grant(web_server, peers)
    response = _post(web_server, "/ws/device", json.dumps({"grant": grant}).encode())
    assert response.status == 204
    assert response.getheader("Content-Security-Policy")  # the security headers too
    credential, attributes = _cookie(response)
    assert {"Path=/ws", "HttpOnly", "Secure", "SameSite=Strict"} <= attributes
    assert f"Max-Age={30 * 24 * 3600}" in attributes
    peer = _peer(web_server, peers, credential)
    peer.send(type="auth", user="alice", device=True)
    welcome = peer.expect("welcome")
    assert welcome["user"] == "alice"
    assert welcome["token"]
    peer.send(type="devices", ref="d")
    (device,) = peer.expect("devices", ref="d")["devices"]
    assert device["name"] == "Chrome on Linux"
    assert device["current"] is True


def test_stay_signed_in_grant_is_single_use_and_cannot_be_forged(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    grant = _grant(web_server, peers)
    body = json.dumps({"grant": grant}).encode()
    assert _post(web_server, "/ws/device", body).status == 204
    reused = _post(web_server, "/ws/device", body)
    assert reused.status == 403
    assert reused.getheader("Set-Cookie") is None
    forged = json.dumps({"grant": "A" * 43}).encode()
    assert _post(web_server, "/ws/device", forged).status == 403
    assert _post(web_server, "/ws/device", b"not json").status == 400
    assert _post(web_server, "/ws/device", b"x" * (MAX_BODY + 1)).status == 413


def test_stay_signed_in_refuses_a_foreign_origin_for_the_grant_and_the_cookie(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    grant = _grant(web_server, peers)
    body = json.dumps({"grant": grant}).encode()
    assert _post(web_server, "/ws/device", body, origin="https://evil.example").status == 403
    credential = _cookie(_post(web_server, "/ws/device", body))[0]  # still unused: works
    with pytest.raises(Exception, match="403"):
        _peer(web_server, peers, credential, origin="https://evil.example")


def test_device_login_without_a_valid_cookie_at_the_upgrade_fails(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    for cookie in (None, "B" * 43):
        peer = _peer(web_server, peers, cookie)
        peer.send(type="auth", user="alice", device=True)
        assert peer.expect_closed()[-1]["code"] == "auth_failed"


def test_device_cookie_names_its_own_user_only(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    credential = _signed_in(web_server, peers)
    peer = _peer(web_server, peers, credential)
    peer.send(type="auth", user="bob", device=True)
    assert peer.expect_closed()[-1]["code"] == "auth_failed"


def test_device_idle_for_30_days_is_refused(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    credential = _signed_in(web_server, peers)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30, minutes=1)
    database = open_database(web_server.db_url)
    try:
        with database.session() as session, session.begin():
            session.execute(update(Device).values(last_used_at=old))
    finally:
        database.dispose()
    peer = _peer(web_server, peers, credential)
    peer.send(type="auth", user="alice", device=True)
    assert peer.expect_closed()[-1]["code"] == "auth_failed"


def test_sign_out_everywhere_ends_devices_tokens_and_this_session(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    credential = _signed_in(web_server, peers)
    peer = _peer(web_server, peers, credential)
    peer.send(type="auth", user="alice", device=True)
    token = peer.expect("welcome")["token"]
    peer.send(type="signout_everywhere", ref="s")
    assert peer.expect_closed()[-1] == {"type": "bye", "reason": "signed_out", "ref": "s"}
    again = _peer(web_server, peers, credential)
    again.send(type="auth", user="alice", device=True)
    assert again.expect_closed()[-1]["code"] == "auth_failed"
    resumed = _peer(web_server, peers)
    resumed.send(type="auth", user="alice", token=token)
    assert resumed.expect_closed()[-1]["code"] == "auth_failed"
    assert value(web_server.db_url, "SELECT count(*) FROM devices") == 0


def test_device_signout_ends_one_of_your_own_devices(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    first, second = _signed_in(web_server, peers), _signed_in(web_server, peers)
    bobs = _signed_in(web_server, peers, "bob")
    peer = _peer(web_server, peers, second)
    peer.send(type="auth", user="alice", device=True)
    peer.expect("welcome")
    peer.send(type="devices", ref="1")
    listed = peer.expect("devices", ref="1")["devices"]
    other = next(d["id"] for d in listed if not d["current"])
    bob_id = value(web_server.db_url, "SELECT max(id) FROM devices")
    peer.send(type="device_signout", id=bob_id, ref="2")
    assert peer.expect("error", ref="2")["code"] == "no_such_device"
    peer.send(type="device_signout", id=other, ref="3")
    assert [d["current"] for d in peer.expect("devices", ref="3")["devices"]] == [True]
    refused = _peer(web_server, peers, first)
    refused.send(type="auth", user="alice", device=True)
    assert refused.expect_closed()[-1]["code"] == "auth_failed"
    bob = _peer(web_server, peers, bobs)
    bob.send(type="auth", user="bob", device=True)
    assert bob.expect("welcome")["user"] == "bob"


def test_forget_post_deletes_the_device_and_clears_the_cookie(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    credential = _signed_in(web_server, peers)
    response = _post(web_server, "/ws/device/forget", b"", cookie=credential)
    assert response.status == 204
    cleared, attributes = _cookie(response)
    assert cleared == ""
    assert "Max-Age=0" in attributes
    assert value(web_server.db_url, "SELECT count(*) FROM devices") == 0


def test_no_grant_without_remember_and_never_a_secret_in_the_log(
    web_server: RunningServer, peers: list[WebPeer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    peer = _peer(web_server, peers)
    peer.send(type="auth", user="alice", password=PASSWORD)
    peer.expect("welcome")
    peer.send(type="ping", ref="p")
    assert peer.expect("pong", ref="p")  # and no device_grant came before it
    assert all(e.get("type") != "device_grant" for e in peer.seen)
    grant = _grant(web_server, peers)
    credential = _cookie(_post(web_server, "/ws/device", json.dumps({"grant": grant}).encode()))[0]
    signed = _peer(web_server, peers, credential)
    signed.send(type="auth", user="alice", device=True)
    signed.expect("welcome")
    server_side = [r.getMessage() for r in caplog.records if r.name != "websockets.client"]
    assert server_side
    assert not [line for line in server_side if grant in line or credential in line]


def test_the_chat_port_gives_no_grant_and_leaves_devices_to_the_web_client(
    web_server: RunningServer,
) -> None:
    peer = web_server.peer()
    peer.expect("hello")
    peer.send(type="auth", user="alice", password=PASSWORD, remember=True)
    peer.expect("welcome")
    for request in ("devices", "signout_everywhere"):
        peer.send(type=request, ref=request)
        assert peer.expect("error", ref=request)["code"] == "bad_request"
    assert all(event.get("type") != "device_grant" for event in peer.seen)
    device = web_server.peer()
    device.expect("hello")
    device.send(type="auth", user="alice", device=True)
    assert device.expect_closed()[-1]["code"] == "auth_failed"


def test_remember_goes_with_a_password_only(
    web_server: RunningServer, peers: list[WebPeer]
) -> None:
    peer = _peer(web_server, peers)
    peer.send(type="auth", user="alice", device=True, remember=True)
    assert peer.expect_closed()[-1]["code"] == "bad_request"
