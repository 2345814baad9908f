"""Unread counts in the store (issue 23 item 4): what they count, and what they cost. The
cost must not grow with the rooms a user is in: two statements, whatever their number,
each count stopping at the cap inside the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from securechat.store import reads
from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.message_rows import NewMessage
from securechat.store.models import Membership, Room, utcnow
from tests.sql import add_users

pytestmark = pytest.mark.postgresql


def _send(store: ChatStore, sender: tuple[int, str], body: str, **to: str) -> int:
    (result,) = store.save_messages(
        [NewMessage(sender[0], sender[1], body, None, room=to.get("room"), to=to.get("to"))]
    )
    assert isinstance(result, tuple), result
    return result[0].id


def _unread(store: ChatStore, user: int, **page: Any) -> tuple[list[tuple[Any, ...]], bool]:
    found, more = store.unread(
        user, after=page.get("after"), limit=page.get("limit", 50), cap=page.get("cap", 100)
    )
    return [(c.key, c.count, c.mentions, c.last_read) for c in found], more


def test_unread_counts_rooms_and_people_in_key_order_capped_and_paged(
    empty_db: Database,
) -> None:
    store = ChatStore(empty_db)
    alice, bob, carol = add_users(empty_db, "alice", "bob", "carol")
    a, b, c = (alice, "alice"), (bob, "bob"), (carol, "carol")
    for room in ("z-last", "a.first", "ab", "quiet"):
        store.join(alice, room)
        store.join(bob, room)
    for n in range(5):
        _send(store, b, f"z {n} @alice" if n < 2 else f"z {n}", room="z-last")
    _send(store, a, "mine only", room="quiet")  # one's own messages are never unread
    first = _send(store, c, "first @alice", to="alice")
    _send(store, c, "second", to="alice")
    _send(store, b, "from bob", to="alice")
    _send(store, b, "in a.first", room="a.first")
    _send(store, b, "in ab", room="ab")
    _send(store, a, "to carol", to="carol")  # sent, not received

    assert _unread(store, alice, cap=3) == (
        [("r:a.first", 1, 0, 0), ("r:ab", 1, 0, 0), ("r:z-last", 3, 2, 0),
         ("u:bob", 1, 0, 0), ("u:carol", 2, 1, 0)],
        False,
    )  # fmt: skip
    assert _unread(store, alice, limit=2) == ([("r:a.first", 1, 0, 0), ("r:ab", 1, 0, 0)], True)
    assert _unread(store, alice, limit=2, after="r:ab")[0][0][:2] == ("r:z-last", 5)
    assert _unread(store, alice, limit=2, after="r:z-last") == (
        [("u:bob", 1, 0, 0), ("u:carol", 2, 1, 0)], False,
    )  # fmt: skip
    assert _unread(store, alice, after="u:bob") == ([("u:carol", 2, 1, 0)], False)
    assert _unread(store, alice, after="v") == ([], False)
    assert _unread(store, alice, after="a")[0][0][0] == "r:a.first"

    with empty_db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO dm_reads (user_id, peer_id, last_read_id) VALUES (:u, :p, :m)"),
            {"u": alice, "p": carol, "m": first},
        )
        conn.execute(text("UPDATE memberships SET last_read_id = 1000000 WHERE user_id = :u"),
                     {"u": alice})  # fmt: skip
    assert _unread(store, alice) == ([("u:bob", 1, 0, 0), ("u:carol", 1, 0, first)], False)
    assert _unread(store, carol) == ([("u:alice", 1, 0, 0)], False)


@pytest.fixture
def statements(empty_db: Database) -> Iterator[list[str]]:
    """Every SQL statement the engine runs while the test goes on."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(empty_db.engine, "before_cursor_execute", note)
    yield seen
    event.remove(empty_db.engine, "before_cursor_execute", note)


def _many_rooms(database: Database, user: int, rooms: int) -> list[int]:
    """``user`` in ``rooms`` rooms, written in bulk (the store's join is one at a time)."""
    with database.engine.begin() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                insert(Room).returning(Room.id),
                [{"name": f"room{n:04}", "created_at": utcnow()} for n in range(rooms)],
            )
        ]
        conn.execute(
            insert(Membership),
            [{"room_id": room, "user_id": user, "joined_at": utcnow()} for room in ids],
        )
    return ids


def test_unread_runs_two_statements_however_many_rooms(
    empty_db: Database, statements: list[str]
) -> None:
    """The cost is per reply, not per room: was two COUNT statements for each room joined."""
    store = ChatStore(empty_db)
    alice, bob = add_users(empty_db, "alice", "bob")
    _many_rooms(empty_db, alice, 300)
    _send(store, (bob, "bob"), "hello", to="alice")
    store.join(bob, "room0150")
    for n in range(30):
        _send(store, (bob, "bob"), f"busy {n}", room="room0150")
    statements.clear()
    assert _unread(store, alice, cap=10) == (
        [("r:room0150", 10, 0, 0), ("u:bob", 1, 0, 0)], False,
    )  # fmt: skip
    counted = [s for s in statements if "count" in s.lower()]
    assert len(counted) == 2, statements


@pytest.mark.sqlite_only(reason="reads SQLite's query plan")
def test_unread_statements_probe_indexes_and_never_scan_messages(empty_db: Database) -> None:
    with empty_db.engine.connect() as conn:
        for sql in (reads._ROOMS, reads._PEERS):
            plan = conn.execute(
                text(f"EXPLAIN QUERY PLAN {sql.format(collate='')}"),
                {"user": 1, "after": "", "cap": 10, "page": 10},
            ).all()
            details = [row[-1] for row in plan]
            scans = [d for d in details if d.startswith("SCAN") and " m" in d + " "]
            assert not [d for d in scans if "USING" not in d], details


def test_unread_with_a_thousand_rooms_joined_takes_milliseconds(empty_db: Database) -> None:
    """The figure in docs/performance.md ("unread with 1,000 rooms joined"): 1,000 rooms,
    every tenth with 50 unread messages. A generous bound only: the machine is shared."""
    store = ChatStore(empty_db)
    alice, bob = add_users(empty_db, "alice", "bob")
    rooms = _many_rooms(empty_db, alice, 1000)
    with empty_db.engine.begin() as conn:
        conn.execute(
            insert(Membership),
            [{"room_id": room, "user_id": bob, "joined_at": utcnow()} for room in rooms[::10]],
        )
    store.save_messages(
        [NewMessage(bob, "bob", f"news {n}", None, room=f"room{r:04}")
         for r in range(0, 1000, 10) for n in range(50)]
    )  # fmt: skip
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        found, more = store.unread(alice, after=None, limit=500, cap=1000)
        timings.append(time.perf_counter() - started)
    assert (len(found), more, found[0].count) == (100, False, 50)
    print(f"\nunread, 1000 rooms joined, {empty_db.engine.dialect.name}: "
          f"{', '.join(f'{t * 1000:.1f}' for t in sorted(timings))} ms")  # fmt: skip
    assert min(timings) < 2.0
