"""The Client API's #16 methods against a real server over TLS: typed replies and refusals."""

from __future__ import annotations

import pytest

from securechat.client import Client
from securechat.errors import Forbidden, NoSuchMessage, NoSuchRoom, RoomExists
from securechat.protocol.messages import (
    Ack,
    Conversation,
    Deleted,
    Done,
    Edited,
    Left,
    ReadMarker,
    RoomEvent,
)
from tests.conftest import TIMEOUT, NewClient

pytestmark = pytest.mark.postgresql


def _next(client: Client, kind: type[object], **fields: object) -> object:
    for event in client.events(timeout=TIMEOUT):
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
            return event
    raise AssertionError(f"no {kind.__name__} event")


def test_client_creates_moderates_and_hears_room_events(
    new_client: NewClient,
) -> None:
    alice, bob = new_client("alice"), new_client("bob")
    joined = alice.create("ops", private=True, topic="on call")
    assert (joined.room, joined.role, joined.private, joined.topic) == (
        "ops", "owner", True, "on call",
    )  # fmt: skip
    with pytest.raises(RoomExists):
        bob.create("ops")
    with pytest.raises(NoSuchRoom):
        bob.join("ops")
    assert isinstance(alice.invite("ops", "bob"), Done)
    assert bob.join("ops").role == "member"
    assert "ops" in bob.rooms
    with pytest.raises(Forbidden, match="only moderators of #ops can kick"):
        bob.kick("ops", "alice")
    alice.set_topic("ops", "deploys")
    event = _next(bob, RoomEvent, action="topic")
    assert isinstance(event, RoomEvent)
    assert (event.action, event.topic) == ("topic", "deploys")
    alice.kick("ops", "bob")
    assert isinstance(_next(bob, Left), Left)
    assert "ops" not in bob.rooms


def test_client_edits_deletes_and_reads(new_client: NewClient) -> None:
    alice, bob = new_client("alice"), new_client("bob")
    sent = alice.send("helo @bob", room="general")
    edit = alice.edit(sent, "hello @bob")
    assert isinstance(edit, Ack)
    assert edit.id > sent
    edited = _next(bob, Edited)
    assert isinstance(edited, Edited)
    assert (edited.target, edited.body) == (sent, "hello @bob")
    with pytest.raises(Forbidden):
        bob.edit(sent, "no")
    unread = bob.unread()
    assert unread == (
        Conversation(key="r:general", count=1, mentions=1, last_read=sent - 1, room="general"),
    )
    page = bob.history("general", after=sent - 1)
    assert [(m.id, m.body, m.edited is not None) for m in page.messages] == [
        (sent, "hello @bob", True)
    ]
    marker = bob.mark_read(sent, room="general")
    assert marker == ReadMarker(id=sent, room="general", ref=marker.ref)
    assert bob.unread() == ()
    alice.delete(sent)
    deleted = _next(bob, Deleted)
    assert isinstance(deleted, Deleted)
    assert deleted.target == sent
    with pytest.raises(NoSuchMessage):
        alice.delete(sent)
    assert bob.history("general").messages[-1].deleted is True


def test_client_lists_conversations_and_people(new_client: NewClient) -> None:
    alice = new_client("alice")
    sent = alice.send("are you there?", to="carol")
    listed = {c.key: c for c in alice.conversations()}
    assert set(listed) == {"r:general", "u:carol"}
    assert (listed["u:carol"].peer, listed["u:carol"].last_id) == ("carol", sent)
    assert listed["u:carol"].last_ts is not None
    people = {p.name: p for p in alice.people()}
    assert set(people) == {"alice", "bob", "carol", "dave"}
    assert people["alice"].online
    assert not people["carol"].online
