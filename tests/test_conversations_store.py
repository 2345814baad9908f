"""Every conversation a user has, from the store (issue 26 item 1): the list a client
shows on any device, rooms and people alike, read or not, with the newest message."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.message_rows import NewMessage
from tests.sql import add_users

pytestmark = pytest.mark.postgresql


def _send(store: ChatStore, sender: tuple[int, str], body: str, **to: str) -> tuple[int, int]:
    (result,) = store.save_messages(
        [NewMessage(sender[0], sender[1], body, None, room=to.get("room"), to=to.get("to"))]
    )
    assert isinstance(result, tuple), result
    return result[0].id, result[0].ts_ms


def _listed(store: ChatStore, user: int, **page: Any) -> tuple[list[tuple[Any, ...]], bool]:
    found, more = store.conversations(
        user, after=page.get("after"), limit=page.get("limit", 50), cap=page.get("cap", 100)
    )
    return [(c.key, c.count, c.mentions, c.last_read, c.last_id) for c in found], more


def test_conversations_list_every_room_and_person_read_or_not_with_the_newest_message(
    empty_db: Database,
) -> None:
    store = ChatStore(empty_db)
    alice, bob, carol, dave = add_users(empty_db, "alice", "bob", "carol", "dave")
    a, b, c = (alice, "alice"), (bob, "bob"), (carol, "carol")
    for room in ("dev", "quiet"):
        store.join(alice, room)
    store.join(bob, "dev")
    store.join(bob, "elsewhere")  # not alice's
    dev_1, _ = _send(store, b, "hi @alice", room="dev")
    dev_2, _ = _send(store, a, "hello", room="dev")
    to_dave, ts = _send(store, a, "only sent, never answered", to="dave")
    from_carol, _ = _send(store, c, "from carol", to="alice")
    to_carol, _ = _send(store, a, "back to carol", to="carol")
    _send(store, b, "bob to carol", to="carol")  # not alice's

    listed, more = _listed(store, alice)
    assert (listed, more) == (
        [("r:dev", 1, 1, 0, dev_2), ("r:quiet", 0, 0, 0, None),
         ("u:carol", 1, 0, 0, to_carol), ("u:dave", 0, 0, 0, to_dave)],
        False,
    )  # fmt: skip
    found, _ = store.conversations(alice, after="u:carol", limit=5, cap=5)
    assert [(f.peer, f.room, f.last_ts_ms) for f in found] == [("dave", None, ts)]
    # A fresh device of dave's sees the conversation he never answered.
    assert _listed(store, dave) == ([("u:alice", 1, 0, 0, to_dave)], False)
    assert dev_1 < dev_2
    assert from_carol < to_carol


def test_conversations_page_in_key_order_and_leave_out_rooms_left(empty_db: Database) -> None:
    store = ChatStore(empty_db)
    alice, bob = add_users(empty_db, "alice", "bob")
    for room in ("a", "b", "c"):
        store.join(alice, room)
    _send(store, (bob, "bob"), "hi", to="alice")
    with empty_db.engine.begin() as conn:  # alice left "b" (the row stays, with left_at_id)
        conn.execute(
            text(
                "UPDATE memberships SET left_at_id = 1 WHERE user_id = :u"
                " AND room_id = (SELECT id FROM rooms WHERE name = 'b')"
            ),
            {"u": alice},
        )
    first, more = _listed(store, alice, limit=1)
    assert ([k for k, *_ in first], more) == (["r:a"], True)
    rest, more = _listed(store, alice, after="r:a", limit=5)
    assert ([k for k, *_ in rest], more) == (["r:c", "u:bob"], False)
    assert _listed(store, alice, after="u:bob") == ([], False)
