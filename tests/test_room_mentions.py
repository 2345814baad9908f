"""@room and @here (#26) on a real server over TLS: who they reach (every member, or those
online at the send), who may use them (owners, moderators, admins), how often, and that
an edit never widens them. The rule of what a body says is protocol/mentions.py's, with
its cases in tests/vectors/mentions.json."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer, ServerFactory, add_accounts
from tests.eventually import eventually
from tests.peer import Peer

pytestmark = pytest.mark.postgresql


def _mentions(peer: Peer, room: str) -> int:
    found = [c for c in peer.ask("u", type="unread")["conversations"] if c.get("room") == room]
    return int(found[0]["mentions"]) if found else 0


def _team(server: RunningServer) -> tuple[Peer, Peer]:
    """alice owns #dev; bob (online) and carol (offline now) are members."""
    alice, bob = server.login("alice"), server.login("bob")
    alice.ask("c", type="create", room="dev")
    bob.ask("j", type="join", room="dev")
    carol = server.login("carol")
    carol.ask("j", type="join", room="dev")
    carol.close()
    _gone(alice, "carol")
    return alice, bob


def _gone(peer: Peer, user: str) -> None:
    """Wait until the server has ``user`` offline (her connection's end is seen)."""
    eventually(
        lambda: user not in peer.ask("w", type="who")["online"], f"{user} is offline", interval=0.1
    )


def test_here_reaches_members_online_and_room_every_member(running_server: RunningServer) -> None:
    alice, bob = _team(running_server)
    assert alice.ask("h", type="send", room="dev", body="@here standup")["type"] == "ack"
    assert _mentions(bob, "dev") == 1
    carol = running_server.login("carol")  # offline at the send: not reached, not later
    assert _mentions(carol, "dev") == 0
    carol.close()
    _gone(alice, "carol")
    assert (
        alice.ask("r", type="send", room="dev", body="@room the office is closed")["type"] == "ack"
    )
    carol = running_server.login("carol")
    assert _mentions(carol, "dev") == 1
    assert _mentions(bob, "dev") == 2
    assert _mentions(alice, "dev") == 0  # one's own message is never unread


def test_a_plain_member_may_not_use_room_or_here(running_server: RunningServer) -> None:
    alice, bob = _team(running_server)
    refused = bob.ask("r", type="send", room="dev", body="lunch? @room")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert refused["message"] == "only moderators of #dev can mention @room or @here"
    assert [m["body"] for m in alice.ask("h", type="history", room="dev")["messages"]] == []
    assert (
        bob.ask("ok", type="send", room="dev", body="mail me at bob@room.example")["type"] == "ack"
    )
    alice.ask("o", type="moderate", room="dev", action="op", user="bob")
    assert bob.ask("r2", type="send", room="dev", body="lunch? @here")["type"] == "ack"
    # An admin acts as an owner in every room.
    add_accounts(running_server.db_url, "root", admin=True)
    root = running_server.login("root")
    root.ask("j", type="join", room="dev")
    assert (
        root.ask("r3", type="send", room="dev", body="@room maintenance at 18:00")["type"] == "ack"
    )


def test_room_and_here_are_rate_limited_per_user(server_factory: ServerFactory) -> None:
    server = server_factory(room_mention_burst=2, room_mention_interval=3600.0)
    alice, bob = _team(server)
    for n in range(2):
        assert alice.ask(f"r{n}", type="send", room="dev", body=f"@here {n}")["type"] == "ack"
    limited = alice.ask("r2", type="send", room="dev", body="@room again")
    assert (limited["type"], limited["code"]) == ("error", "mention_limited")
    assert 3000 < limited["retry_after"] <= 3600
    assert limited["message"].startswith("@room and @here are limited: try again in ")
    assert alice.ask("plain", type="send", room="dev", body="plain text is fine")["type"] == "ack"
    assert _mentions(bob, "dev") == 2


def test_an_edit_keeps_whom_a_broadcast_reached_and_never_widens_it(
    running_server: RunningServer,
) -> None:
    alice, bob = _team(running_server)
    sent = alice.ask("h", type="send", room="dev", body="@here standup")
    assert alice.ask("e", type="edit", id=sent["id"], body="@here standup at 10")["type"] == "ack"
    assert _mentions(bob, "dev") == 1  # kept
    carol = running_server.login("carol")
    assert _mentions(carol, "dev") == 0
    plain = bob.ask("p", type="send", room="dev", body="ok")
    refused = bob.ask("e2", type="edit", id=plain["id"], body="ok @room")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
