"""The client session's rules as data (tests/vectors/session*.json, the format in each
file's ``about``), played against the Python :class:`ClientSession` here; the page's
``ChatSession`` plays the same files under Node (tests/js/session_vectors.test.mjs).

The adapter below maps the session's own calls, frames and events to the vectors' neutral
form: made-up refs become placeholders, events become small dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.protocol.client import (
    ClientSession,
    ConnectionEnded,
    Delivered,
    Greeted,
    LoggedIn,
    LoginRefused,
    Reply,
    SendFailed,
    SessionEvent,
)
from securechat.protocol.codec import decode_request
from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.protocol.messages import Asked, Event

VECTORS = Path(__file__).parent / "vectors"
#: What a reply or a pushed event shows of itself in the neutral form, when it has it.
SHOWN = ("id", "room", "code")


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(VECTORS.glob("session*.json")):
        cases += json.loads(path.read_text())["cases"]
    return cases


class Player:
    """Plays one case's steps against a ClientSession and reports them neutrally."""

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = ClientSession(
            session["user"], password=session.get("password"), token=session.get("token")
        )
        self.now = 0.0
        self.placeholders: dict[str, str] = {}  # the session's ref -> $name
        self.counts: dict[str, int] = {}  # frame type -> refs it named by itself
        self.server_refs: set[str] = set()  # refs the vector wrote (a server ping's)

    def step(self, step: dict[str, Any]) -> None:
        self.now = float(step.get("at", self.now))
        session = self.session
        if "connect" in step:
            session.connection_made(self.now)
        elif "server" in step:
            frames = step["server"] if isinstance(step["server"], list) else [step["server"]]
            data = b"".join(encode_frame(json.dumps(self._real(f)).encode()) for f in frames)
            cut = len(data) // 2 + 1  # a read may end anywhere, mid-frame too
            session.receive_data(data[:cut], self.now)
            session.receive_data(data[cut:], self.now)
        elif "send" in step:
            what = step["send"]
            send = session.submit(what["body"], room=what.get("room"), to=what.get("to"))
            assert send.ref is not None
            self.placeholders[send.ref] = f"${step['as']}"
        elif "request" in step:
            request = decode_request(json.dumps(step["request"]).encode())
            assert isinstance(request, Asked)
            self.placeholders[session.request(request)] = f"${step['as']}"
        elif "tick" in step:
            session.tick(self.now)
        elif "lost" in step:
            session.connection_lost(step["lost"])
        elif "close" in step:
            session.close()
        else:
            raise AssertionError(f"a step that does nothing: {step}")

    def out(self) -> list[dict[str, Any]]:
        decoder = FrameDecoder(1 << 20)
        decoder.feed(self.session.data_to_send())
        frames = []
        while (payload := decoder.next_frame()) is not None:
            frame = json.loads(payload)
            if "ref" in frame:
                frame["ref"] = self._placeholder(frame["ref"], frame["type"])
            frames.append(frame)
        return frames

    def events(self) -> list[dict[str, Any]]:
        return [
            neutral
            for event in self.session.events_received()
            if (neutral := self._neutral(event)) is not None
        ]

    def state(self, wanted: dict[str, Any]) -> dict[str, Any]:
        session = self.session
        every: dict[str, Any] = {
            "state": session.state.value,
            "last_id": session.last_id,
            "rooms": sorted(session.rooms),
            "token": session.token,
            "holds_password": session.holds_password,
            "can_log_in": session.can_log_in,
            "unacknowledged": [self.placeholders[s.ref or ""] for s in session.unacknowledged],
            "next_deadline": session.next_deadline(),
        }
        return {key: every[key] for key in wanted}

    def _neutral(self, event: SessionEvent | Event) -> dict[str, Any] | None:
        if isinstance(event, Greeted):
            return None  # a probe's: the page has none
        if isinstance(event, LoggedIn):
            return {"event": "logged_in", "resumed": event.resumed}
        if isinstance(event, LoginRefused):
            return {"event": "login_refused", "code": event.error.code,
                    "with_token": event.with_token}  # fmt: skip
        if isinstance(event, Reply):
            return {"event": "reply", "ref": self.placeholders[event.ref], **_shown(event.event)}
        if isinstance(event, Delivered):
            return {"event": "delivered", "ref": self.placeholders[event.ref],
                    "id": event.message.id}  # fmt: skip
        if isinstance(event, SendFailed):
            return {"event": "send_failed", "ref": self.placeholders[event.ref], "code": event.code}
        if isinstance(event, ConnectionEnded):
            return {"event": "ended"}
        return {"event": "pushed", **_shown(event)}

    def _placeholder(self, ref: str, kind: str) -> str:
        if ref not in self.placeholders and ref not in self.server_refs:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.placeholders[ref] = f"${kind}{self.counts[kind]}"
        return self.placeholders.get(ref, ref)

    def _real(self, frame: dict[str, Any]) -> dict[str, Any]:
        ref = frame.get("ref")
        if not isinstance(ref, str):
            return frame
        if not ref.startswith("$"):
            self.server_refs.add(ref)
            return frame
        real = {name: ref for ref, name in self.placeholders.items()}
        return {**frame, "ref": real[ref]}


def _shown(event: Event) -> dict[str, Any]:
    wire = event.to_wire()
    return {"type": wire["type"], **{key: wire[key] for key in SHOWN if key in wire}}


@pytest.mark.parametrize("case", _cases(), ids=lambda c: str(c["why"])[:60])
def test_session_vectors(case: dict[str, Any]) -> None:
    player = Player(case["session"])
    for number, step in enumerate(case["steps"], 1):
        player.step(step)
        where = f"step {number}: {json.dumps(step)[:120]}"
        assert player.out() == step.get("out", []), where
        assert player.events() == step.get("events", []), where
        assert player.state(step.get("state", {})) == step.get("state", {}), where
