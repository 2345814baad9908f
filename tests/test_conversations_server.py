"""``conversations`` and ``people`` over real TLS (issue 26 items 1 and 2): the
conversation list and the people directory come from the server, so a fresh device shows
the same as the last one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import TIMEOUT, RunningServer
from tests.peer import Peer
from tests.sql import execute

pytestmark = pytest.mark.postgresql


def _say(peer: Peer, ref: str, **message: str) -> int:
    peer.send(type="send", ref=ref, **message)
    ack: int = peer.expect("ack", ref=ref)["id"]
    return ack


def _conversations(peer: Peer) -> dict[str, dict[str, Any]]:
    reply = peer.ask("c", type="conversations")
    assert reply["type"] == "conversations"
    assert reply["more"] is False
    return {c["key"]: c for c in reply["conversations"]}


def _people(peer: Peer) -> dict[str, dict[str, Any]]:
    reply = peer.ask("p", type="people")
    assert reply["type"] == "people"
    return {p["name"]: p for p in reply["people"]}


def test_a_fresh_login_lists_every_room_and_direct_conversation_read_or_not(
    running_server: RunningServer,
) -> None:
    alice = running_server.login("alice")
    alice.ask("j", type="join", room="dev")
    to_dave = _say(alice, "1", to="dave", body="never answered")
    alice.close()

    again = _conversations(running_server.login("alice"))  # another device, nothing kept
    assert set(again) == {"r:dev", "r:general", "u:dave"}
    assert again["u:dave"] == {
        "key": "u:dave", "with": "dave", "count": 0, "mentions": 0, "last_read": 0,
        "last_id": to_dave, "last_ts": again["u:dave"]["last_ts"],
    }  # fmt: skip
    assert again["u:dave"]["last_ts"].endswith("Z")
    assert "last_id" not in again["r:dev"]  # nothing said there yet

    dave = _conversations(running_server.login("dave"))
    assert dave["u:alice"]["count"] == 1
    assert dave["u:alice"]["last_id"] == to_dave


def test_people_lists_everyone_active_online_or_when_last_seen(
    running_server: RunningServer, db_url: str
) -> None:
    alice = running_server.login("alice")
    running_server.login("bob").close()  # bob comes and goes
    execute(db_url, "UPDATE users SET is_disabled = true WHERE name = 'dave'")
    deadline = time.monotonic() + TIMEOUT
    while "last_seen" not in (people := _people(alice))["bob"]:  # the group commit's flush
        assert time.monotonic() < deadline, f"bob's last seen never came: {people}"
        time.sleep(0.1)
    assert set(people) == {"alice", "bob", "carol"}  # dave is disabled
    assert people["alice"] == {"name": "alice", "online": True}
    assert people["bob"]["online"] is False
    assert people["bob"]["last_seen"].endswith("Z")
    assert people["carol"] == {"name": "carol", "online": False}  # never logged in


def test_a_rooms_history_holds_its_events_when_asked(running_server: RunningServer) -> None:
    """#26 item 5: room events are in the history, so a reload or another device shows the
    same timeline; a client that does not ask gets messages only, as before."""
    alice = running_server.login("alice")
    created = alice.ask("c", type="create", room="ops")
    assert created["type"] == "joined"
    topic = alice.ask("t", type="moderate", room="ops", action="topic", topic="deploys")
    assert topic["type"] == "done"
    said = _say(alice, "1", room="ops", body="deploying now")

    page = alice.ask("h", type="history", room="ops", events=True)
    assert [m["id"] for m in page["messages"]] == [said]
    actions = [(e["type"], e["action"]) for e in page["events"]]
    assert actions == [("room_event", "create"), ("room_event", "topic")]
    assert page["events"][1]["topic"] == "deploys"
    assert all(e["id"] < said for e in page["events"])

    last_two = alice.ask("h2", type="history", room="ops", events=True, limit=2)
    assert (len(last_two["messages"]), len(last_two["events"]), last_two["more"]) == (1, 1, True)
    plain = alice.ask("h3", type="history", room="ops")
    assert "events" not in plain
    direct = alice.ask("h4", type="history", events=True, **{"with": "bob"})
    assert "events" not in direct  # a direct conversation has no room events


def test_a_join_that_must_not_create_refuses_a_new_name(running_server: RunningServer) -> None:
    """#26 item 5: a client asks before making a room; `create` then makes its maker owner.
    Without "create": false a join still makes the room, as for older clients."""
    alice = running_server.login("alice")
    refused = alice.ask("j", type="join", room="newroom", create=False)
    assert (refused["type"], refused["code"]) == ("error", "no_such_room")
    made = alice.ask("c", type="create", room="newroom")
    assert (made["type"], made["role"]) == ("joined", "owner")
    bob = running_server.login("bob")
    joined = bob.ask("j", type="join", room="newroom", create=False)
    assert (joined["type"], joined["role"]) == ("joined", "member")
    old_style = bob.ask("j2", type="join", room="another")
    assert old_style["type"] == "joined"
