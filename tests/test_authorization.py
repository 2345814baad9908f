"""The authorization matrix (#16): every request that names a room or a message, by every
kind of user, in a public and a private room, on a real server with raw TLS peers.

Only what the permission table allows succeeds; everything else gets one stable error code;
and to a user who may not see a private room, each refusal about it is byte for byte the
refusal about a room (or a message) that does not exist, apart from the name and the ref.
The exception is ``join``, which creates a room that does not exist: its ``no_such_room``
shows that the name is taken (as ``create``'s ``room_exists`` does), and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from securechat.accounts import Accounts
from securechat.config import HashParams
from securechat.store.database import open_database
from tests.conftest import PASSWORD, RunningServer
from tests.peer import Peer

pytestmark = pytest.mark.postgresql

KINDS = ("owner", "moderator", "member", "muted", "banned", "outsider", "admin")
USER_OF = {
    "owner": "alice", "moderator": "bob", "member": "carol", "muted": "dave",
    "banned": "erin", "outsider": "frank", "admin": "root",
}  # fmt: skip
TARGET = "tgt"  # a plain member that user actions aim at
MOD = ("ok", "ok", "forbidden", "forbidden", "forbidden", "forbidden", "ok")
OWNER = ("ok", "forbidden", "forbidden", "forbidden", "forbidden", "forbidden", "ok")

#: In the public room, by KINDS. In the private room the same, except that the banned
#: user and the outsider may not see it: every refusal is no_such_room (no_such_message).
PUBLIC: dict[str, tuple[str, ...]] = {
    "join": ("ok", "ok", "ok", "ok", "forbidden", "ok", "ok"),
    "leave": ("forbidden", "ok", "ok", "ok", "not_member", "not_member", "not_member"),
    "send": ("ok", "ok", "ok", "forbidden", "not_member", "not_member", "not_member"),
    "history": ("ok", "ok", "ok", "ok", "not_member", "not_member", "not_member"),
    "read": ("ok", "ok", "ok", "ok", "not_member", "not_member", "not_member"),
    # the member's message:
    "edit": (
        "forbidden", "forbidden", "ok", "forbidden", "no_such_message", "no_such_message",
        "forbidden",
    ),
    "delete": ("ok", "ok", "ok", "forbidden", "no_such_message", "no_such_message", "ok"),
    # the owner's message (a moderator cannot act against the owner):
    "delete_owners": (
        "ok", "forbidden", "forbidden", "forbidden", "no_such_message", "no_such_message", "ok",
    ),
    **{action: MOD for action in ("invite", "kick", "ban", "unban", "mute", "unmute", "topic")},
    **{action: OWNER for action in ("op", "deop", "private", "public", "transfer")},
}  # fmt: skip

MESSAGE_REQUESTS = ("edit", "delete", "delete_owners")  # they name a message, not a room


def expected(request: str, kind: str, *, private: bool) -> str:
    outcome = PUBLIC[request][KINDS.index(kind)]
    if private and kind in ("banned", "outsider"):
        return "no_such_message" if request in MESSAGE_REQUESTS else "no_such_room"
    return outcome


class Team:
    """The server, a peer per user, and the room under test."""

    def __init__(self, running: RunningServer, room: str, *, private: bool) -> None:
        database = open_database(running.db_url)
        accounts = Accounts(database, hash_params=HashParams.for_tests())
        for name in ("erin", "frank", TARGET):
            accounts.add(name, PASSWORD)
        accounts.add("root", PASSWORD, admin=True)
        database.dispose()
        self.room, self.private = room, private
        self.peers: dict[str, Peer] = {
            name: running.login(name) for name in (*USER_OF.values(), TARGET)
        }
        self.refs = 0
        self.ok("alice", type="create", room=room, private=private)
        for name in ("bob", "carol", "dave", TARGET, *(() if private else ("erin",))):
            self.admit(name)
        self.ok("alice", type="moderate", room=room, action="op", user="bob")
        self.ok("alice", type="moderate", room=room, action="mute", user="dave")
        self.ok("alice", type="moderate", room=room, action="ban", user="erin")

    def ask(self, name: str, **request: Any) -> tuple[dict[str, Any], bytes]:
        """Send a request as ``name``; its reply, and the reply's payload as sent."""
        self.refs += 1
        ref = f"q{self.refs}"
        peer = self.peers[name]
        peer.send(ref=ref, **request)
        while True:
            event = peer.recv()
            if event.get("ref") == ref:
                return event, peer.last_payload
            peer.seen.append(event)

    def ok(self, name: str, **request: Any) -> dict[str, Any]:
        reply, _ = self.ask(name, **request)
        assert reply["type"] != "error", (name, request, reply)
        return reply

    def admit(self, name: str) -> None:
        """Make ``name`` a member (again), inviting them first to the private room."""
        if self.private:
            self.ok("root", type="moderate", room=self.room, action="invite", user=name)
        self.ok(name, type="join", room=self.room)

    def moderate(self, action: str, **fields: Any) -> None:
        self.ok("root", type="moderate", room=self.room, action=action, **fields)

    def request(self, what: str, name: str) -> dict[str, Any]:
        """The request ``what`` about the room under test, as ``name`` would send it."""
        room = self.room
        if what in ("join", "leave", "history"):
            return {"type": what, "room": room}
        if what == "send":
            return {"type": "send", "room": room, "body": "hello"}
        if what == "read":
            return {"type": "read", "room": room, "id": 1}
        if what in ("edit", "delete"):  # a fresh message of the member's each time
            sent = self.ok("carol", type="send", room=room, body="the member's text")
            fields = {"body": "changed"} if what == "edit" else {}
            return {"type": what, "id": sent["id"], **fields}
        if what == "delete_owners":
            sent = self.ok("alice", type="send", room=room, body="the owner's text")
            return {"type": "delete", "id": sent["id"]}
        if what == "topic":
            return {"type": "moderate", "room": room, "action": "topic", "topic": "t"}
        if what in ("private", "public"):
            return {"type": "moderate", "room": room, "action": what}
        return {"type": "moderate", "room": room, "action": what, "user": TARGET}

    def undo(self, what: str, name: str) -> None:
        """Put the room back as it was before ``name`` did ``what``, successfully."""
        if what == "join" and name in ("frank", "root"):
            self.ok(name, type="leave", room=self.room)
        elif what == "leave":
            self.admit(name)
            if name == "bob":
                self.moderate("op", user="bob")
        elif what in ("kick", "ban"):
            if what == "ban":
                self.moderate("unban", user=TARGET)
            self.admit(TARGET)
        elif what == "mute":
            self.moderate("unmute", user=TARGET)
        elif what == "op":
            self.moderate("deop", user=TARGET)
        elif what in ("private", "public") and (what == "private") != self.private:
            self.moderate("private" if self.private else "public")
        elif what == "transfer":
            self.moderate("transfer", user="alice")
            self.moderate("deop", user=TARGET)


def _without(payload: bytes, *names: str) -> bytes:
    """A refusal with the names in it and its ref blanked: what a refusal may differ by."""
    event = json.loads(payload)
    event["ref"] = "-"
    text = json.dumps(event)
    for name in names:
        text = text.replace(name, "<name>")
    return text.encode()


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_only_what_the_table_allows_succeeds_and_private_rooms_do_not_leak(
    running_server: RunningServer, private: bool
) -> None:
    room = "priv" if private else "pub"
    team = Team(running_server, room, private=private)
    secret = team.ok("alice", type="send", room=room, body="s3cret text")["id"]
    results: dict[tuple[str, str], str] = {}
    for what in PUBLIC:
        for kind in KINDS:
            name = USER_OF[kind]
            request = team.request(what, name)
            reply, payload = team.ask(name, **request)
            results[what, kind] = "ok" if reply["type"] != "error" else reply["code"]
            if results[what, kind] == "ok":
                team.undo(what, name)
            elif private and kind in ("banned", "outsider") and what != "join":
                # The same request about a room, or a message, that does not exist. (Not
                # join, which makes a room that does not exist: like create's room_exists,
                # its refusal shows that the name is taken, and only that.)
                missing = dict(request, room="nothere") if "room" in request else request
                if "id" in request and request["type"] != "read":
                    missing = dict(request, id=10**9)
                _, missing_payload = team.ask(name, **missing)
                names = (room, "nothere", str(request.get("id")), str(10**9))
                assert _without(payload, *names) == _without(missing_payload, *names), what
    wanted = {
        (what, kind): expected(what, kind, private=private) for what in PUBLIC for kind in KINDS
    }
    assert results == wanted
    # Deleting the room: refused to all but the owner and the admins.
    for kind in ("moderator", "member", "muted", "banned", "outsider"):
        reply, _ = team.ask(USER_OF[kind], type="moderate", room=room, action="delete")
        assert reply["code"] == expected("private", kind, private=private), kind
    team.ok("root" if private else "alice", type="moderate", room=room, action="delete")
    # Nothing of the private room ever reached those who may not see it.
    for name in ("erin", "frank"):
        pushed = json.dumps(team.peers[name].seen)
        if private:
            assert room not in pushed, name
        assert "s3cret" not in pushed, name
        assert str(secret) not in [str(e.get("id")) for e in team.peers[name].seen]
