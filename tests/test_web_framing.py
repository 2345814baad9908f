"""WebFraming without sockets: bytes in, bytes out, a websockets ClientProtocol as the browser."""

from __future__ import annotations

import dataclasses
import json

import h11
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.uri import parse_uri

from securechat.config import Limits
from securechat.protocol.session import ServerSession
from securechat.server.webfiles import Answer, Origins, StaticFiles
from securechat.server.webframing import WebFraming

PORT = 5443
ORIGIN = f"https://localhost:{PORT}"
FILES = {"/index.html": b"<html></html>", "/app.js": b"// app"}


@dataclasses.dataclass
class Meter:
    allowed: bool = True
    charged: int = 0

    def __call__(self) -> bool:
        self.charged += 1
        return self.allowed


@dataclasses.dataclass
class Pair:
    framing: WebFraming
    session: ServerSession
    meter: Meter

    def deliver(self, data: bytes) -> list[bytes]:
        """Feed ``data`` to the framing; what it answers."""
        self.framing.receive_data(data)
        return self.framing.data_to_send()


def pair(**limits: int) -> Pair:
    session = ServerSession(max_frame=Limits().max_frame)
    meter = Meter()
    origins = Origins(["localhost"], PORT)
    framing = WebFraming(
        session=session, meter=meter, files=StaticFiles(FILES), origins=origins,
        limits=dataclasses.replace(Limits(), **limits), peer=lambda: "127.0.0.1:1",
    )  # fmt: skip
    return Pair(framing, session, meter)


def http_response(data: list[bytes], method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(b"".join(data))
    response, body = client.next_event(), b""
    assert isinstance(response, h11.Response)
    while isinstance(event := client.next_event(), h11.Data):
        body += event.data
    return response, body


def headers_of(response: h11.Response) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in response.headers}


def browser(origin: str = ORIGIN) -> tuple[ClientProtocol, bytes]:
    client = ClientProtocol(parse_uri(f"wss://localhost:{PORT}/ws"), origin=origin)  # type: ignore[arg-type]
    client.send_request(client.connect())
    return client, b"".join(client.data_to_send())


def opened() -> tuple[Pair, ClientProtocol]:
    p = pair()
    client, request = browser()
    assert p.framing.receive_data(request) is True
    client.receive_data(b"".join(p.framing.data_to_send()))
    assert client.state is OPEN
    assert [type(e).__name__ for e in client.events_received()] == ["Response"]
    return p, client


def test_web_framing_serves_a_shipped_file_with_the_security_headers_then_ends() -> None:
    p = pair()
    out = p.deliver(b"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n")
    response, body = http_response(out)
    assert response.status_code == 200
    assert body == b"// app"
    headers = headers_of(response)
    assert "content-security-policy" in headers
    assert headers["connection"] == "close"
    assert p.framing.ending is not None
    assert not p.framing.half_close
    assert not p.framing.is_open


def test_web_framing_answers_head_without_a_body() -> None:
    out = pair().deliver(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    response, body = http_response(out, method=b"HEAD")
    assert response.status_code == 200
    assert body == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
        (b"GET /?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 130 + b"\r\n", 431),
    ],
    ids=["garbage", "head over max_http_head", "line over max_http_line", "long target",
         "over max_http_headers"],
)  # fmt: skip
def test_web_framing_refuses_bad_or_oversized_requests_with_the_security_headers(
    request_bytes: bytes, status: int
) -> None:
    p = pair()
    response, _ = http_response(p.deliver(request_bytes))
    assert response.status_code == status
    assert "content-security-policy" in headers_of(response)
    assert p.framing.ending is not None


@pytest.mark.parametrize(("origin", "status"), [("https://evil.example", 403), ("null", 403)])
def test_web_framing_refuses_an_upgrade_from_another_origin(origin: str, status: int) -> None:
    p = pair()
    _, request = browser(origin)
    response, _ = http_response(p.deliver(request))
    assert response.status_code == status
    assert "content-security-policy" in headers_of(response)


def test_web_framing_passes_on_websockets_own_refusal_with_our_headers() -> None:
    p = pair()
    _, request = browser()
    request = request.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 7")
    response, _ = http_response(p.deliver(request))
    assert response.status_code == 400
    assert "content-security-policy" in headers_of(response)
    assert p.framing.ending == "refused upgrade"


def test_web_framing_opens_the_websocket_and_hands_text_messages_to_the_session() -> None:
    p, client = opened()
    assert p.framing.is_open
    client.send_text(b'{"type":"ping"}')
    p.deliver(b"".join(client.data_to_send()))
    assert p.session.next_frame() == b'{"type":"ping"}'


def test_web_framing_reads_frames_sent_with_the_upgrade_request() -> None:
    p = pair()
    _, request = browser()
    frame = Frame(Opcode.TEXT, b'{"type":"bye"}').serialize(mask=True)
    assert p.framing.receive_data(request + frame) is True
    assert p.session.next_frame() == b'{"type":"bye"}'


def test_web_framing_assembles_a_fragmented_message() -> None:
    p, client = opened()
    client.send_text(b'{"type":', fin=False)
    client.send_continuation(b'"ping"}', fin=True)
    p.deliver(b"".join(client.data_to_send()))
    assert p.session.next_frame() == b'{"type":"ping"}'


def test_web_framing_answers_a_ping_within_the_meter_and_drops_a_refused_one() -> None:
    p, client = opened()
    client.send_ping(b"one")
    client.receive_data(b"".join(p.deliver(b"".join(client.data_to_send()))))
    assert [e.opcode for e in client.events_received()] == [Opcode.PONG]  # type: ignore[union-attr]
    p.meter.allowed = False
    client.send_ping(b"two")
    client.send_pong(b"unasked")
    assert p.deliver(b"".join(client.data_to_send())) == []
    assert p.meter.charged == 3


def test_web_framing_sends_frame_too_large_before_the_1009_close() -> None:
    p, client = opened()
    client.send_text(b"x" * (Limits().max_frame + 1))
    client.receive_data(b"".join(p.deliver(b"".join(client.data_to_send()))))
    events = client.events_received()
    assert isinstance(events[0], Frame)
    assert json.loads(bytes(events[0].data))["code"] == "frame_too_large"
    assert client.close_rcvd is not None
    assert client.close_rcvd.code == 1009
    assert p.framing.ending == "message too big"
    assert p.framing.half_close  # reads on after its close: the rest of the message, unread


def test_web_framing_answers_the_browsers_close_and_ends() -> None:
    p, client = opened()
    client.send_close(1001)
    out = p.deliver(b"".join(client.data_to_send()))
    assert out[0][0] == 0x88  # the close frame's echo
    assert p.framing.ending == "closed by the browser (1001)"
    assert not p.framing.is_open


def test_web_framing_closes_from_our_side_and_ends_on_the_reply() -> None:
    p, client = opened()
    p.framing.close()
    client.receive_data(b"".join(p.framing.data_to_send()))
    assert p.framing.ending is None  # waits for the browser's close
    p.deliver(b"".join(client.data_to_send()))
    assert p.framing.ending is not None


def test_web_framing_frames_events_as_websockets_would() -> None:
    p, client = opened()
    client.receive_data(p.framing.event(b'{"type":"pong"}'))
    assert [e.data for e in client.events_received()] == [b'{"type":"pong"}']  # type: ignore[union-attr]


class BrokenFiles(StaticFiles):
    def answer(self, method: str, target: str) -> Answer:
        raise RuntimeError("a bug")


def test_web_framing_answers_500_with_the_security_headers_on_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = pair()
    framing = WebFraming(
        session=p.session, meter=p.meter, files=BrokenFiles(FILES),
        origins=Origins(["localhost"], PORT), limits=Limits(), peer=lambda: "127.0.0.1:1",
    )  # fmt: skip
    framing.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response, _ = http_response(framing.data_to_send())
    assert response.status_code == 500
    assert "content-security-policy" in headers_of(response)
    assert framing.ending == "internal error"
    assert "internal error on a web request" in caplog.text
