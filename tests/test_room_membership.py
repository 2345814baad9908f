"""Room membership as every client shows it (#26): a member's own join and leave are room
events in the journal (live, in ``history`` with events, in ``sync``), pending invitations,
and a room's members with their roles; on a real server over TLS."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer, ServerFactory
from tests.peer import Peer
from tests.sql import rows

pytestmark = pytest.mark.postgresql


def _room_events(peer: Peer, room: str) -> list[tuple[str, str, str | None]]:
    page = peer.ask("h", type="history", room=room, events=True)
    return [(e["action"], e["actor"], e.get("user")) for e in page["events"]]


def test_join_and_leave_are_room_events_live_and_in_history(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    bob_elsewhere = running_server.login("bob")
    alice.ask("c", type="create", room="dev")
    bob.ask("j", type="join", room="dev")
    joined = alice.expect("room_event", action="join")
    assert (joined["room"], joined["actor"], joined["user"]) == ("dev", "bob", "bob")
    alice.expect("member_joined", user="bob")  # still, for clients that know no room events
    bob_elsewhere.expect("room_event", action="join", user="bob")
    assert bob.ask("l", type="leave", room="dev") == {"type": "left", "room": "dev", "ref": "l"}
    left = alice.expect("room_event", action="leave")
    assert (left["actor"], left["user"], left["id"]) == ("bob", "bob", left["id"])
    assert left["id"] > joined["id"]
    alice.expect("member_left", user="bob")
    bob_elsewhere.expect("room_event", action="leave", user="bob")
    bob_elsewhere.expect("member_left", user="bob")  # not `left`, which is for a removal
    # After a reload (or on another device) the timeline is the same.
    reloaded = running_server.login("alice")
    assert _room_events(reloaded, "dev") == [
        ("create", "alice", "alice"), ("join", "bob", "bob"), ("leave", "bob", "bob"),
    ]  # fmt: skip
    # A member's own join or leave moderates nothing: no audit entry.
    audited = rows(running_server.db_url, "SELECT action FROM audit_log WHERE room = 'dev'")
    assert [row[0] for row in audited] == ["create"]


def test_an_accepted_invitation_and_a_room_made_by_join_show_the_join(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops", private=True)
    alice.ask("i", type="moderate", room="ops", action="invite", user="bob")
    bob.ask("j", type="join", room="ops")
    assert alice.expect("room_event", action="join")["user"] == "bob"
    assert _room_events(bob, "ops")[-2:] == [("invite", "alice", "bob"), ("join", "bob", "bob")]
    bob.ask("j2", type="join", room="lab")  # a new name, as before #16: ownerless, public
    assert _room_events(bob, "lab") == [("join", "bob", "bob")]


def test_a_join_or_leave_comes_back_with_sync_and_is_never_unread(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="dev")
    since = alice.ask("s0", type="sync", since=0)["last_id"]
    bob.ask("j", type="join", room="dev")
    bob.ask("l", type="leave", room="dev")
    alice.expect("room_event", action="leave")  # live first
    alice.send(type="sync", since=since, ref="s1")
    actions = []
    while (event := alice.recv())["type"] != "synced":
        if event["type"] == "room_event":
            actions.append((event["id"], event["room"], event["action"]))
    assert [a[1:] for a in actions] == [("dev", "join"), ("dev", "leave")], actions
    unread = alice.ask("u", type="unread")["conversations"]
    assert all(item.get("room") != "dev" for item in unread)


# --- pending invitations ------------------------------------------------------------------


def test_invitations_lists_pending_ones_until_used_or_dropped(
    running_server: RunningServer,
) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    assert bob.ask("i0", type="invitations") == {
        "type": "invitations", "invitations": [], "more": False, "ref": "i0",
    }  # fmt: skip
    for room in ("ops", "lab", "zoo"):
        alice.ask("c", type="create", room=room, private=True, topic=f"{room} topic")
        alice.ask("i", type="moderate", room=room, action="invite", user="bob")
    listed = bob.ask("i1", type="invitations")
    assert [(i["room"], i["by"], i["private"], i["topic"]) for i in listed["invitations"]] == [
        ("lab", "alice", True, "lab topic"), ("ops", "alice", True, "ops topic"),
        ("zoo", "alice", True, "zoo topic"),
    ]  # fmt: skip
    assert listed["invitations"][0]["ts"].endswith("Z")
    after = bob.ask("i2", type="invitations", after="lab")["invitations"]
    assert [i["room"] for i in after] == ["ops", "zoo"]
    bob.ask("j", type="join", room="ops")  # used up
    alice.ask("b", type="moderate", room="zoo", action="ban", user="bob")  # dropped
    assert [i["room"] for i in bob.ask("i3", type="invitations")["invitations"]] == ["lab"]
    # Nobody else's: carol has none.
    assert running_server.login("carol").ask("i4", type="invitations")["invitations"] == []


def test_invitations_page_by_room_name(server_factory: ServerFactory) -> None:
    server = server_factory(invitations_page=2)
    alice, bob = server.login("alice"), server.login("bob")
    for room in ("r1", "r2", "r3"):
        alice.ask("c", type="create", room=room, private=True)
        alice.ask("i", type="moderate", room=room, action="invite", user="bob")
    first = bob.ask("p1", type="invitations")
    assert ([i["room"] for i in first["invitations"]], first["more"]) == (["r1", "r2"], True)
    rest = bob.ask("p2", type="invitations", after="r2")
    assert ([i["room"] for i in rest["invitations"]], rest["more"]) == (["r3"], False)


# --- members with roles -------------------------------------------------------------------


def test_members_lists_roles_presence_and_mutes(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.ask("c", type="create", room="ops", private=True)
    for user in ("bob", "carol"):
        alice.ask("i", type="moderate", room="ops", action="invite", user=user)
    bob.ask("j", type="join", room="ops")
    carol = running_server.login("carol")
    carol.ask("j", type="join", room="ops")
    carol.close()
    alice.ask("o", type="moderate", room="ops", action="op", user="bob")
    alice.ask("m", type="moderate", room="ops", action="mute", user="carol")
    reply = bob.ask("m1", type="members", room="ops")
    assert reply == {
        "type": "members", "room": "ops", "more": False, "ref": "m1", "members": [
            {"name": "alice", "role": "owner", "online": True},
            {"name": "bob", "role": "moderator", "online": True},
            {"name": "carol", "role": "member", "online": False, "muted": True},
        ],
    }  # fmt: skip
    # A private room's members are its own business; a public room's are not.
    dave = running_server.login("dave")
    assert dave.ask("m2", type="members", room="ops")["code"] == "no_such_room"
    assert dave.ask("m3", type="members", room="nope")["code"] == "no_such_room"
    assert [m["name"] for m in dave.ask("m4", type="members", room="general")["members"]] == [
        "alice", "bob", "carol", "dave",
    ]  # fmt: skip


def test_members_page_by_name(server_factory: ServerFactory) -> None:
    server = server_factory(members_page=3)
    alice = server.login("alice")
    for user in ("bob", "carol", "dave"):
        server.login(user)
    first = alice.ask("m1", type="members", room="general")
    assert ([m["name"] for m in first["members"]], first["more"]) == (
        ["alice", "bob", "carol"],
        True,
    )
    rest = alice.ask("m2", type="members", room="general", after="carol")
    assert ([m["name"] for m in rest["members"]], rest["more"]) == (["dave"], False)
