"""Team chat (#16) on a real server over TLS: rooms a team runs, moderation taking effect on
live sessions, edits and deletions, read state and unread counts, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from securechat.accounts import Accounts
from securechat.config import HashParams
from securechat.store import edits
from securechat.store.chat import ChatStore
from securechat.store.database import open_database
from securechat.store.journal import Actor, Tx
from securechat.store.message_rows import StoredMessage
from tests.conftest import PASSWORD, RunningServer
from tests.peer import Peer
from tests.sql import rows, value

pytestmark = pytest.mark.postgresql


def _audit(db_url: str) -> list[tuple[Any, ...]]:
    return rows(db_url, "SELECT actor, action, room, target FROM audit_log ORDER BY id")


def _add_admin(db_url: str, name: str) -> None:
    database = open_database(db_url)
    Accounts(database, hash_params=HashParams.for_tests()).add(name, PASSWORD, admin=True)
    database.dispose()


@pytest.fixture
def team(running_server: RunningServer) -> Callable[[str], Peer]:
    return running_server.login


# --- create and roles ------------------------------------------------------------------


def test_create_makes_the_creator_owner_and_a_private_room_hidden(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    joined = alice.ask("c", type="create", room="ops", private=True, topic="on call")
    assert joined == {
        "type": "joined", "room": "ops", "members": ["alice"], "online": ["alice"], "ref": "c",
        "private": True, "topic": "on call", "role": "owner",
    }  # fmt: skip
    listed = bob.ask("l", type="rooms")
    assert [room["name"] for room in listed["rooms"]] == ["general"]
    assert bob.ask("j", type="join", room="ops")["code"] == "no_such_room"
    taken = bob.ask("t", type="create", room="ops")
    assert taken["code"] == "room_exists"
    assert ("alice", "create", "ops", "alice") in _audit(running_server.db_url)


def test_invitation_lets_one_into_a_private_room_once(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops", private=True)
    assert alice.ask("i", type="moderate", room="ops", action="invite", user="bob") == {
        "type": "done", "ref": "i",
    }  # fmt: skip
    event = bob.expect("room_event", room="ops")
    assert (event["action"], event["actor"], event["user"]) == ("invite", "alice", "bob")
    joined = bob.ask("j", type="join", room="ops")
    assert (joined["type"], joined["role"], joined["private"]) == ("joined", "member", True)
    assert bob.ask("l", type="leave", room="ops")["type"] == "left"
    assert bob.ask("j2", type="join", room="ops")["code"] == "no_such_room"  # used up


def test_only_moderators_moderate_and_the_refusal_says_so(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    running_server.login("carol")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    refused = bob.ask("k", type="moderate", room="ops", action="kick", user="alice")
    assert refused == {
        "type": "error", "code": "forbidden", "message": "only moderators of #ops can kick",
        "ref": "k",
    }  # fmt: skip
    assert alice.ask("o", type="moderate", room="ops", action="op", user="bob")["type"] == "done"
    refused = bob.ask("k2", type="moderate", room="ops", action="kick", user="alice")
    assert refused["code"] == "forbidden"
    assert "owner" in refused["message"]
    refused = bob.ask("p", type="moderate", room="ops", action="private")
    assert refused["message"] == "only the owner of #ops can make it private"


def test_owner_hands_over_before_leaving(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    refused = alice.ask("l", type="leave", room="ops")
    assert (refused["code"], refused["message"]) == (
        "forbidden", "you own #ops: transfer ownership first",
    )  # fmt: skip
    refused = alice.ask("t", type="moderate", room="ops", action="transfer", user="carol")
    assert refused["code"] == "not_member"
    alice.ask("t2", type="moderate", room="ops", action="transfer", user="bob")
    event = bob.expect("room_event", action="transfer")
    assert (event["actor"], event["user"]) == ("alice", "bob")
    assert alice.ask("l2", type="leave", room="ops")["type"] == "left"
    assert bob.ask("l3", type="leave", room="ops")["type"] == "left"  # the last one: ownerless


# --- live effect -------------------------------------------------------------------------


def test_kick_removes_every_session_of_the_member_at_once(running_server: RunningServer) -> None:
    alice = running_server.login("alice")
    bob1, bob2 = running_server.login("bob"), running_server.login("bob")
    carol = running_server.login("carol")
    alice.ask("c", type="create", room="ops")
    bob1.ask("j", type="join", room="ops")
    carol.ask("j", type="join", room="ops")
    assert alice.ask("k", type="moderate", room="ops", action="kick", user="bob")["type"] == "done"
    for bob in (bob1, bob2):
        event = bob.expect("room_event", room="ops", action="kick")
        assert (event["action"], event["actor"], event["user"]) == ("kick", "alice", "bob")
        assert bob.expect("left") == {"type": "left", "room": "ops"}
    assert carol.expect("room_event", room="ops", action="kick")
    assert carol.expect("member_left") == {"type": "member_left", "room": "ops", "user": "bob"}
    refused = bob1.ask("s", type="send", room="ops", body="still here?")
    assert refused["code"] == "not_member"
    assert ("alice", "kick", "ops", "bob") in _audit(running_server.db_url)


def test_ban_keeps_a_member_out_until_unbanned(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    alice.ask("b", type="moderate", room="ops", action="ban", user="bob")
    assert bob.expect("left") == {"type": "left", "room": "ops"}
    refused = bob.ask("j2", type="join", room="ops")
    assert (refused["code"], refused["message"]) == ("forbidden", "you are banned from #ops")
    refused = alice.ask("self", type="moderate", room="ops", action="ban", user="alice")
    assert refused["code"] == "forbidden"
    alice.ask("u", type="moderate", room="ops", action="unban", user="bob")
    assert bob.ask("j3", type="join", room="ops")["type"] == "joined"
    actions = [row[1] for row in _audit(running_server.db_url)]
    assert actions[-2:] == ["ban", "unban"]


def test_muted_member_reads_but_cannot_send(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    alice.ask("m", type="moderate", room="ops", action="mute", user="bob")
    refused = bob.ask("s", type="send", room="ops", body="hello?")
    assert (refused["code"], refused["message"]) == ("forbidden", "you are muted in #ops")
    alice.ask("s", type="send", room="ops", body="quiet please")
    assert bob.expect("message", room="ops")["body"] == "quiet please"
    alice.ask("u", type="moderate", room="ops", action="unmute", user="bob")
    assert bob.ask("s2", type="send", room="ops", body="thanks")["type"] == "ack"


def test_topic_is_shown_to_the_room_and_listed(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    too_long = alice.ask("t0", type="moderate", room="ops", action="topic", topic="x" * 301)
    assert too_long["code"] == "bad_request"
    alice.ask("t", type="moderate", room="ops", action="topic", topic="deploys at 5")
    event = bob.expect("room_event", action="topic")
    assert (event["topic"], event["actor"]) == ("deploys at 5", "alice")
    rooms = bob.ask("l", type="rooms")["rooms"]
    assert {"name": "ops", "members": 2, "joined": True, "topic": "deploys at 5"} in rooms


def test_room_events_come_back_with_sync(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    since = bob.ask("s0", type="sync", since=0)["last_id"]
    alice.ask("t", type="moderate", room="ops", action="topic", topic="new")
    alice.ask("m", type="moderate", room="ops", action="mute", user="bob")
    bob.expect("room_event", action="mute")  # live first
    bob.send(type="sync", since=since, ref="s1")
    events = []
    while (event := bob.recv())["type"] != "synced":
        events.append(event)
    assert [(e["type"], e["action"]) for e in events if e["type"] == "room_event"] == [
        ("room_event", "topic"), ("room_event", "mute"),
    ]  # fmt: skip


# --- edit and delete -----------------------------------------------------------------------


def test_edit_and_delete_fan_out_and_survive_in_history(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    sent = alice.ask("s", type="send", room="general", body="helo")
    bob.expect("message", id=sent["id"])
    edit = alice.ask("e", type="edit", id=sent["id"], body="hello")
    assert edit["type"] == "ack"
    assert edit["id"] > sent["id"]
    edited = bob.expect("edited")
    assert (edited["target"], edited["body"], edited["from"]) == (sent["id"], "hello", "alice")
    refused = bob.ask("e2", type="edit", id=sent["id"], body="mine now")
    assert (refused["code"], refused["message"]) == (
        "forbidden", "you can edit only your own messages",
    )  # fmt: skip
    page = bob.ask("h", type="history", room="general")["messages"]
    assert page[-1]["body"] == "hello"
    assert "edited" in page[-1]
    deleted = alice.ask("d", type="delete", id=sent["id"])
    assert deleted["type"] == "ack"
    assert bob.expect("deleted")["target"] == sent["id"]
    page = bob.ask("h2", type="history", room="general")["messages"]
    assert (page[-1]["id"], page[-1]["body"], page[-1]["deleted"]) == (sent["id"], "", True)
    assert alice.ask("d2", type="delete", id=sent["id"])["code"] == "no_such_message"
    assert alice.ask("d3", type="delete", id=edit["id"])["code"] == "no_such_message"


def test_moderator_deletes_others_messages_and_it_is_audited(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    sent = bob.ask("s", type="send", room="ops", body="oops, a password")
    refused = bob.ask("d0", type="delete", id=sent["id"] + 100)
    assert refused["code"] == "no_such_message"
    assert alice.ask("d", type="delete", id=sent["id"])["type"] == "ack"
    assert bob.expect("deleted")["by"] == "alice"
    assert ("alice", "delete_message", "ops", "bob") in _audit(running_server.db_url)
    bodies = [body for (body,) in rows(running_server.db_url, "SELECT body FROM messages")]
    assert "oops, a password" not in bodies


def test_edit_of_a_direct_message_reaches_both_parties_only(
    running_server: RunningServer,
) -> None:
    alice, bob, carol = (running_server.login(name) for name in ("alice", "bob", "carol"))
    sent = alice.ask("s", type="send", to="bob", body="psst")
    assert carol.ask("e", type="edit", id=sent["id"], body="x")["code"] == "no_such_message"
    alice.ask("e", type="edit", id=sent["id"], body="psst!")
    assert bob.expect("edited")["to"] == "bob"
    carol.send(type="ping", ref="p")
    assert carol.expect("pong")["ref"] == "p"
    assert not [e for e in carol.seen if e["type"] == "edited"]


# --- read state ----------------------------------------------------------------------------


def test_read_marker_moves_on_every_session_and_unread_counts(
    running_server: RunningServer,
) -> None:
    alice = running_server.login("alice")
    bob1, bob2 = running_server.login("bob"), running_server.login("bob")
    first = alice.ask("s1", type="send", room="general", body="one @bob")
    last = alice.ask("s2", type="send", room="general", body="two")
    unread = bob1.ask("u", type="unread")
    assert unread["conversations"] == [
        {"key": "r:general", "count": 2, "mentions": 1, "last_read": first["id"] - 1,
         "room": "general"},
    ]  # fmt: skip
    marker = bob1.ask("r", type="read", room="general", id=last["id"])
    assert marker == {"type": "read", "id": last["id"], "room": "general", "ref": "r"}
    assert bob2.expect("read") == {"type": "read", "id": last["id"], "room": "general"}
    back = bob1.ask("r2", type="read", room="general", id=first["id"])
    assert back["id"] == last["id"]  # a marker never moves back
    assert bob2.ask("u2", type="unread")["conversations"] == []
    after = bob1.ask("h", type="history", room="general", after=first["id"])
    assert [m["id"] for m in after["messages"]] == [last["id"]]


def test_direct_message_waits_for_a_first_login(running_server: RunningServer) -> None:
    carol = running_server.login("carol")
    sent = carol.ask("s", type="send", to="dave", body="welcome aboard, @dave")
    dave = running_server.login("dave")
    unread = dave.ask("u", type="unread")["conversations"]
    assert unread == [
        {"key": "u:carol", "count": 1, "mentions": 1, "last_read": 0, "with": "carol"},
    ]
    page = dave.ask("h", type="history", **{"with": "carol"}, after=0)["messages"]
    assert [m["id"] for m in page] == [sent["id"]]
    dave.ask("r", type="read", id=sent["id"], **{"with": "carol"})
    assert dave.ask("u2", type="unread")["conversations"] == []


# --- both transports -----------------------------------------------------------------------


def test_moderation_reaches_sessions_on_the_web_port(server_factory: Any) -> None:
    from tests.web_peer import WebPeer

    running = server_factory(web_port=0)
    alice = running.login("alice")
    with WebPeer(running.web_address, running.ca_file) as bob:
        bob.login("bob", PASSWORD)
        alice.ask("c", type="create", room="ops")
        bob.send(type="join", room="ops", ref="j")
        assert bob.expect("joined")["role"] == "member"
        bob.send(type="moderate", room="ops", action="kick", user="alice", ref="k")
        assert bob.expect("error", ref="k")["code"] == "forbidden"
        alice.ask("k", type="moderate", room="ops", action="kick", user="bob")
        assert bob.expect("room_event")["action"] == "kick"
        assert bob.expect("left")["room"] == "ops"


def test_admin_acts_as_owner_in_every_room(running_server: RunningServer) -> None:
    _add_admin(running_server.db_url, "root")
    alice, bob = running_server.login("alice"), running_server.login("bob")
    root = running_server.login("root")
    alice.ask("c", type="create", room="ops", private=True)
    listed = root.ask("l", type="rooms")["rooms"]
    assert {"name": "ops", "members": 1, "joined": False, "private": True} in listed
    root.ask("i", type="moderate", room="ops", action="invite", user="bob")
    bob.ask("j", type="join", room="ops")
    assert root.ask("t", type="moderate", room="ops", action="kick", user="alice")["type"] == (
        "done"
    )
    assert alice.expect("left")["room"] == "ops"


# --- room deletion (finding 13 of #13: rooms could never be deleted) ------------------------


def test_owner_deletes_a_room_and_its_members_leave_it_at_once(
    running_server: RunningServer,
) -> None:
    alice, bob, carol = (running_server.login(name) for name in ("alice", "bob", "carol"))
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    bob.ask("s", type="send", room="ops", body="secret plans")
    refused = bob.ask("d0", type="moderate", room="ops", action="delete")
    assert (refused["code"], refused["message"]) == (
        "forbidden", "only the owner of #ops can delete it",
    )  # fmt: skip
    assert alice.ask("d", type="moderate", room="ops", action="delete") == {
        "type": "done", "ref": "d",
    }  # fmt: skip
    event = bob.expect("room_event", room="ops")
    assert (event["action"], event["actor"]) == ("delete", "alice")
    assert bob.expect("left") == {"type": "left", "room": "ops"}
    assert bob.ask("h", type="history", room="ops")["code"] == "no_such_room"
    assert "ops" not in [room["name"] for room in carol.ask("l", type="rooms")["rooms"]]
    url = running_server.db_url
    assert value(url, "SELECT count(*) FROM rooms WHERE name = 'ops'") == 0
    assert value(url, "SELECT count(*) FROM messages WHERE body = 'secret plans'") == 0
    assert ("alice", "delete", "ops", None) in _audit(running_server.db_url)
    # The name is free again, for a new room that starts empty.
    assert carol.ask("c2", type="create", room="ops")["members"] == ["carol"]
    assert carol.ask("h2", type="history", room="ops")["messages"] == []


# --- round 3 (#23): edits obey the room's rules, keep no old text; the owner's messages -----


def _quiet(peer: Peer, ref: str) -> list[dict[str, Any]]:
    """What ``peer`` was sent before a ping's pong: everything fanned out to it so far."""
    peer.ask(ref, type="ping")
    return peer.seen


def test_a_muted_member_cannot_edit_and_nobody_hears_the_edit(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    sent = bob.ask("s", type="send", room="ops", body="before the mute")
    alice.ask("m", type="moderate", room="ops", action="mute", user="bob")
    refused = bob.ask("e", type="edit", id=sent["id"], body="still talking, @alice")
    assert (refused["code"], refused["message"]) == ("forbidden", "you are muted in #ops")
    assert not [e for e in _quiet(alice, "p") if e["type"] == "edited"]
    page = alice.ask("h", type="history", room="ops")["messages"]
    assert (page[-1]["body"], "edited" in page[-1]) == ("before the mute", False)
    unread = alice.ask("u", type="unread")["conversations"]
    assert [(c["key"], c["mentions"]) for c in unread] == [("r:ops", 0)]  # the edit's @alice
    # Taking one's own words back is not speaking: a muted member may delete them.
    assert bob.ask("d", type="delete", id=sent["id"])["type"] == "ack"
    alice.ask("u2", type="moderate", room="ops", action="unmute", user="bob")
    again = bob.ask("s2", type="send", room="ops", body="typo")
    assert bob.ask("e2", type="edit", id=again["id"], body="fixed")["type"] == "ack"


def test_an_edit_needs_the_membership_a_send_needs(running_server: RunningServer) -> None:
    _add_admin(running_server.db_url, "root")
    root = running_server.login("root")
    sent = root.ask("s", type="send", room="general", body="from the admin")
    root.ask("l", type="leave", room="general")
    assert root.ask("s2", type="send", room="general", body="x")["code"] == "not_member"
    refused = root.ask("e", type="edit", id=sent["id"], body="edited from outside")
    assert refused["code"] == "not_member"
    assert value(
        running_server.db_url, "SELECT count(*) FROM messages WHERE body = 'edited from outside'"
    ) == 0  # fmt: skip


def test_a_later_joiner_gets_only_the_current_text_of_an_edited_message(
    running_server: RunningServer,
) -> None:
    alice = running_server.login("alice")
    alice.ask("c", type="create", room="ops")
    sent = alice.ask("s", type="send", room="ops", body="deploy at 5")
    alice.ask("e1", type="edit", id=sent["id"], body="deploy at 5, root password hunter2")
    last = alice.ask("e2", type="edit", id=sent["id"], body="deploy at 5 (password: vault)")
    bob = running_server.login("bob")
    bob.ask("j", type="join", room="ops")
    bob.send(type="sync", since=0, ref="sync")
    synced = []
    while (event := bob.recv())["type"] != "synced":
        if event["type"] in ("message", "edited"):
            synced.append(event)
    assert "hunter2" not in repr(synced)
    assert [(e["type"], e["id"], e["body"]) for e in synced if e.get("room") == "ops"] == [
        ("message", sent["id"], "deploy at 5 (password: vault)"),
        ("edited", last["id"], "deploy at 5 (password: vault)"),
    ]
    # Kept nowhere: not in the database either.
    url = running_server.db_url
    assert value(url, "SELECT count(*) FROM messages WHERE body LIKE '%hunter2%'") == 0


def test_a_moderator_cannot_delete_the_owners_messages(running_server: RunningServer) -> None:
    _add_admin(running_server.db_url, "root")
    alice, bob, carol = (running_server.login(name) for name in ("alice", "bob", "carol"))
    root = running_server.login("root")
    alice.ask("c", type="create", room="ops")
    bob.ask("j", type="join", room="ops")
    carol.ask("j", type="join", room="ops")
    alice.ask("o", type="moderate", room="ops", action="op", user="bob")
    owners = alice.ask("s", type="send", room="ops", body="the owner's word")
    refused = bob.ask("d", type="delete", id=owners["id"])
    assert (refused["code"], refused["message"]) == (
        "forbidden", "moderators cannot delete the owner's messages in #ops",
    )  # fmt: skip
    members = carol.ask("s", type="send", room="ops", body="a member's word")
    assert bob.ask("d2", type="delete", id=members["id"])["type"] == "ack"
    assert root.ask("d3", type="delete", id=owners["id"])["type"] == "ack"  # an admin may
    assert ("root", "delete_message", "ops", "alice") in _audit(running_server.db_url)


def test_the_journal_tail_never_delivers_an_edit_whose_text_is_gone(
    running_server: RunningServer,
) -> None:
    """Another writer (a node, the console) edits twice in one transaction: the first
    edit's text is erased before the tail reads it, so only the second is delivered."""
    alice, bob = running_server.login("alice"), running_server.login("bob")
    sent = alice.ask("s", type="send", room="general", body="v1")
    database = open_database(running_server.db_url)
    try:
        other = ChatStore(database, origin="n-elsewhere")
        actor = Actor(int(value(running_server.db_url, "SELECT id FROM users WHERE name = 'alice'")),
                      "alice", is_admin=False)  # fmt: skip

        def edit_twice(tx: Tx) -> StoredMessage:
            edits.edit(tx, actor, sent["id"], "v2, with a secret")
            return edits.edit(tx, actor, sent["id"], "v3")

        last = other.perform(edit_twice)
    finally:
        database.dispose()
    edited = bob.expect("edited")
    assert (edited["id"], edited["body"]) == (last.id, "v3")
    assert not [e for e in _quiet(bob, "p") if e["type"] == "edited"]
