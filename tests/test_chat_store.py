"""ChatStore on SQLite and PostgreSQL: group-commit semantics and query plans that scale."""

from __future__ import annotations

import functools
import itertools
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update

from securechat.config import Limits
from securechat.errors import ErrorCode
from securechat.store import edits
from securechat.store.chat import ChatStore
from securechat.store.database import Database, open_database
from securechat.store.journal import Actor
from securechat.store.message_rows import NewMessage, StoredMessage
from securechat.store.models import ChatMessage, Membership, Room, User
from tests.sql import add_users

pytestmark = pytest.mark.postgresql

Parameters = Sequence[object] | Mapping[str, object]  # as a DB-API execute() takes them


@pytest.fixture
def store(write_path: str, empty_db: Database) -> ChatStore:
    """Each group-commit path: SQLite's own, and the portable one (PostgreSQL's)."""
    return ChatStore(empty_db, sqlite_cursor=write_path == "sqlite-cursor")


def _saved(result: object) -> StoredMessage:
    assert isinstance(result, tuple), result
    stored, _ = result
    assert isinstance(stored, StoredMessage)
    return stored


def test_a_repeated_ref_returns_the_first_copy_within_and_across_batches(
    empty_db: Database, store: ChatStore
) -> None:
    alice, bob = add_users(empty_db, "alice", "bob")
    store.join(alice, "general")
    first = store.save_messages([
        NewMessage(alice, "alice", "hi", "r1", room="general"),
        NewMessage(alice, "alice", "hi again (resent)", "r1", room="general"),
        NewMessage(bob, "bob", "bob's r1 is another message", "r1", room="general"),
    ])  # fmt: skip
    original, again, bobs = (_saved(r) for r in first)
    assert [r[1] for r in first] == [True, False, True]
    assert again == original
    assert again.body == "hi"
    assert bobs.id != original.id
    later = store.save_messages([NewMessage(alice, "alice", "x", "r1", room="general")])
    assert later == [(original, False)]
    assert [m.body for m in store.room_history("general", before=None, limit=10)[0]] == [
        "hi",
        "bob's r1 is another message",
    ]


def test_a_direct_message_to_an_unknown_user_is_refused_alone(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    results = store.save_messages([
        NewMessage(alice, "alice", "to nobody", "a", to="nobody"),
        NewMessage(alice, "alice", "to self", "b", to="alice"),
    ])  # fmt: skip
    assert results[0] == ErrorCode.NO_SUCH_USER
    assert _saved(results[1]).to == "alice"


@pytest.mark.sqlite_only(reason="SQLite's own cursor path; elsewhere the portable one is all")
@pytest.mark.parametrize(
    ("sqlite_cursor", "through_sqlalchemy"), [(None, 0), (True, 0), (False, 1)]
)
def test_rows_are_added_on_the_path_the_store_was_made_with(
    empty_db: Database, sqlite_cursor: bool | None, through_sqlalchemy: int
) -> None:
    """SQLite's default is its cursor path, which SQLAlchemy's events do not see."""
    (alice,) = add_users(empty_db, "alice")
    store = ChatStore(empty_db, sqlite_cursor=sqlite_cursor)
    store.join(alice, "general")
    inserts: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            inserts.append(statement)

    event.listen(empty_db.engine, "before_cursor_execute", record)
    try:
        saved = store.save_messages([NewMessage(alice, "alice", "hi", "r1", room="general")])
    finally:
        event.remove(empty_db.engine, "before_cursor_execute", record)
    assert _saved(saved[0]).body == "hi"
    assert len(inserts) == through_sqlalchemy


def test_no_message_query_scans_the_whole_table(empty_db: Database, store: ChatStore) -> None:
    """Every query on ``messages`` uses an index, so its cost does not grow with history."""
    alice, bob = add_users(empty_db, "alice", "bob")
    store.join(alice, "general")
    for page in range(20):
        store.save_messages([
            NewMessage(alice, "alice", f"m{page}-{i}", f"{page}-{i}", room="general")
            for i in range(100)
        ])  # fmt: skip
    statements: list[tuple[str, Parameters]] = []

    def record(
        _conn: object, _cursor: object, statement: str, parameters: Parameters, *_: object
    ) -> None:
        if "messages" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(empty_db.engine, "before_cursor_execute", record)
    try:
        store.save_messages([
            NewMessage(alice, "alice", "dup", "3-7", room="general"),
            NewMessage(bob, "bob", "new", "z", to="alice"),
            NewMessage(alice, "alice", "new", "y", room="general"),
        ])  # fmt: skip
        store.room_history("general", before=None, limit=50)
        store.room_history("general", before=1000, limit=50)
        store.room_history("general", before=None, limit=50, events=True)
        store.direct_history(alice, bob, before=None, limit=50)
        store.sync(alice, since=1900, limit=500, max_chars=1 << 20)
        store.newest_visible_id(alice)
    finally:
        event.remove(empty_db.engine, "before_cursor_execute", record)
    assert len(statements) >= 5
    for statement, parameters in statements:
        # Sorts penalised too: on a small table PostgreSQL may prefer reading the primary
        # key whole and sorting (one fresh-clone run did), which says nothing about history.
        details = _plan(empty_db, statement, parameters, sorts=False)
        assert not any(d.startswith("SCAN messages") for d in details), (statement, details)


def _plan(database: Database, statement: str, parameters: Any, *, sorts: bool = True) -> list[str]:
    """The query plan of ``statement``, one line per step, in SQLite's words.

    PostgreSQL's plan is told in them too: a read of ``messages`` is "SEARCH messages ..."
    when index conditions bound it, else "SCAN messages ..."; a sort is "SORT". It is told
    to avoid full scans (and sorts, unless ``sorts``) wherever it can: its choice on a
    small test table says nothing, but one it cannot avoid means no index serves the query.
    """
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if database.engine.dialect.name == "sqlite":
            plan = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            return [row[3] for row in plan]
        for setting in ("enable_seqscan",) if sorts else ("enable_seqscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        row = cursor.fetchone()
        assert row is not None
        return list(_postgresql_steps(row[0][0]["Plan"]))
    finally:
        raw.rollback()
        raw.close()


def _postgresql_steps(node: dict[str, Any]) -> Iterator[str]:
    kind, table = node["Node Type"], node.get("Relation Name")
    if kind in ("Sort", "Incremental Sort"):
        yield f"SORT ({kind})"
    elif table is not None and "Index Cond" in node:
        yield f"SEARCH {table} USING INDEX {node['Index Name']} {node['Index Cond']}"
    elif table is not None and kind == "Bitmap Heap Scan":  # rows the index scans below found
        yield f"SEARCH {table} USING BITMAP {node['Recheck Cond']}"
    elif table is not None:
        yield f"SCAN {table} ({kind})"
    else:
        yield kind
    for child in node.get("Plans", ()):
        yield from _postgresql_steps(child)


def test_room_history_reads_the_rooms_index_backwards_and_never_sorts(empty_db: Database) -> None:
    """A page of a room costs ``limit`` rows, however long the room's or others' history."""
    alice, bob = add_users(empty_db, "alice", "bob")
    store = ChatStore(empty_db)
    store.join(alice, "general")
    store.join(bob, "other")
    for page in range(5):
        store.save_messages([
            NewMessage(bob, "bob", "elsewhere", f"{page}-{i}", room="other") for i in range(200)
        ])  # fmt: skip
    store.save_messages([NewMessage(alice, "alice", "hi", "g1", room="general")])
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(empty_db.engine, "before_cursor_execute", record)
    try:
        assert [m.body for m in store.room_history("general", before=None, limit=5)[0]] == ["hi"]
        store.room_history("general", before=900, limit=5)
    finally:
        event.remove(empty_db.engine, "before_cursor_execute", record)
    assert len(statements) == 2
    for statement, parameters in statements:
        details = _plan(empty_db, statement, parameters, sorts=False)
        assert not [d for d in details if "SORT" in d or "TEMP B-TREE" in d], details
        reads = [d for d in details if " messages " in f"{d} "]
        assert [d.split(" (")[0] for d in reads] == [
            "SEARCH messages USING INDEX ix_messages_room_id_id"
        ], details


def test_a_resend_on_a_kept_connection_leaves_it_usable(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    with store.connect() as connection:
        first = _saved(store.save_messages(
            [NewMessage(alice, "alice", "one", "r1", room="general")], connection=connection
        )[0])  # fmt: skip
        again = store.save_messages(
            [NewMessage(alice, "alice", "one (resent)", "r1", room="general"),
             NewMessage(alice, "alice", "two", "r2", room="general")],
            connection=connection,
        )  # fmt: skip
        later = _saved(store.save_messages(
            [NewMessage(alice, "alice", "three", "r3", room="general")], connection=connection
        )[0])  # fmt: skip
    assert again[0] == (first, False)
    second = _saved(again[1])
    assert again[1] == (second, True)
    assert first.id < second.id < later.id
    history = store.room_history("general", before=None, limit=10)[0]
    assert [m.body for m in history] == ["one", "two", "three"]


def test_messages_without_a_ref_are_never_taken_for_resends(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    results = store.save_messages([
        NewMessage(alice, "alice", "same", None, room="general"),
        NewMessage(alice, "alice", "same", None, room="general"),
    ])  # fmt: skip
    first, second = (_saved(r) for r in results)
    assert [r[1] for r in results] == [True, True]
    assert first.id < second.id


def test_a_resend_to_a_since_deleted_user_returns_the_first_copy(
    empty_db: Database, store: ChatStore
) -> None:
    alice, bob = add_users(empty_db, "alice", "bob")
    sent = _saved(store.save_messages([NewMessage(alice, "alice", "hi", "d1", to="bob")])[0])
    with empty_db.session() as s, s.begin():
        s.delete(s.get_one(User, bob))
    again = store.save_messages([
        NewMessage(alice, "alice", "hi", "d1", to="bob"),
        NewMessage(alice, "alice", "still there?", "d2", to="bob"),
    ])  # fmt: skip
    assert again == [(sent, False), ErrorCode.NO_SUCH_USER]


def test_a_ref_is_one_message_within_the_window_and_a_new_one_after_it(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    first = _saved(store.save_messages([NewMessage(alice, "alice", "hi", "r1", room="general")])[0])
    actor = Actor(alice, "alice", is_admin=False)
    store.perform(functools.partial(edits.delete, actor=actor, message_id=first.id))
    # Within the window a resend is the first copy, even deleted since: it stays deleted.
    [resend] = store.save_messages([NewMessage(alice, "alice", "hi", "r1", room="general")])
    assert isinstance(resend, tuple)
    again, is_new = resend
    assert (again.id, again.deleted, is_new) == (first.id, True, False)
    with empty_db.transaction() as conn:  # the window passes
        window_ms = int(Limits().send_ref_window * 1000)
        conn.execute(update(ChatMessage).values(ts_ms=ChatMessage.ts_ms - window_ms - 1))
    later = store.save_messages([
        NewMessage(alice, "alice", "a new message", "r1", room="general"),
        NewMessage(alice, "alice", "a new message", "r1", room="general"),  # resent at once
    ])  # fmt: skip
    new = _saved(later[0])
    assert later == [(new, True), (new, False)]
    assert new.id > first.id
    resent = [NewMessage(alice, "alice", "a new message", "r1", room="general")]
    assert store.save_messages(resent) == [(new, False)]


# --- sync ------------------------------------------------------------------------------------


def _synced(store: ChatStore, user_id: int, since: int, limit: int) -> list[StoredMessage]:
    page, _ = store.sync(user_id, since=since, limit=limit, max_chars=1 << 20)
    return page


def _in_rooms(database: Database, user_id: int, names: list[str]) -> None:
    """Make ``user_id`` a member of many new rooms in one transaction."""
    with database.session() as s, s.begin():
        rooms = [Room(name=name) for name in names]
        s.add_all(rooms)
        s.flush()
        s.add_all(Membership(room_id=room.id, user_id=user_id) for room in rooms)


def test_sync_returns_the_users_rooms_and_conversations_once_each_in_id_order(
    empty_db: Database,
) -> None:
    alice, bob, carol = add_users(empty_db, "alice", "bob", "carol")
    store = ChatStore(empty_db)
    store.join(alice, "general")
    store.join(bob, "general")
    store.join(carol, "secret")
    store.save_messages([
        NewMessage(bob, "bob", "in general", "1", room="general"),
        NewMessage(carol, "carol", "in a room alice is not in", "2", room="secret"),
        NewMessage(bob, "bob", "bob to alice", "3", to="alice"),
        NewMessage(alice, "alice", "alice to carol", "4", to="carol"),
        NewMessage(alice, "alice", "alice to herself", "5", to="alice"),
        NewMessage(carol, "carol", "carol to bob", "6", to="bob"),
        NewMessage(alice, "alice", "alice in general", "7", room="general"),
    ])  # fmt: skip
    seen = ["in general", "bob to alice", "alice to carol", "alice to herself", "alice in general"]
    page = _synced(store, alice, 0, 10)
    assert [m.body for m in page] == seen
    assert [m.id for m in page] == sorted(m.id for m in page)
    assert store.newest_visible_id(alice) == page[-1].id  # not carol's to bob after it
    assert store.newest_visible_id(carol) == 6
    assert [m.body for m in _synced(store, alice, page[1].id, 2)] == seen[2:4]


def test_sync_covers_a_user_in_more_rooms_than_one_query_takes(empty_db: Database) -> None:
    alice, bob = add_users(empty_db, "alice", "bob")
    names = [f"room-{n:03}" for n in range(450)]  # more than SQLite's 500 compound terms
    _in_rooms(empty_db, alice, names)
    _in_rooms(empty_db, bob, ["elsewhere"])
    store = ChatStore(empty_db)
    store.save_messages([
        NewMessage(alice, "alice", name, name, room=name) for name in reversed(names)
    ])  # fmt: skip
    store.save_messages([NewMessage(bob, "bob", "not for alice", "x", room="elsewhere")])
    page = _synced(store, alice, 0, 1000)
    assert [m.body for m in page] == list(reversed(names))
    assert store.newest_visible_id(alice) == page[-1].id
    assert [m.body for m in _synced(store, alice, 0, 3)] == names[:-4:-1]


def test_sync_stops_once_the_bodies_reach_max_chars(empty_db: Database) -> None:
    alice, bob = add_users(empty_db, "alice", "bob")
    store = ChatStore(empty_db)
    store.join(alice, "general")
    store.save_messages([
        NewMessage(bob, "bob", str(n) * 100, str(n), room="general") for n in range(10)
    ])  # fmt: skip
    page, more = store.sync(alice, since=0, limit=100, max_chars=250)
    assert ([m.body[0] for m in page], more) == (["0", "1", "2"], True)  # 300 >= 250: stop
    page, more = store.sync(alice, since=page[-1].id, limit=100, max_chars=10_000)
    assert ([m.body[0] for m in page], more) == (list("3456789"), False)
    page, more = store.sync(alice, since=0, limit=4, max_chars=10_000)
    assert (len(page), more) == (4, True)
    assert store.sync(alice, since=page[-1].id + 6, limit=4, max_chars=10_000) == ([], False)


_INDEX_RANGE = re.compile(
    r"SEARCH messages USING (COVERING )?INDEX "
    r"(ix_messages_room_id_id \(room_id=\? AND id>\?\)"
    r"|ix_messages_direct_recipient_id_id \(recipient_id=\? AND id>\?\)"
    r"|ix_messages_direct_sender_id_id \(sender_id=\? AND id>\?\))"
    r"|SEARCH messages USING INTEGER PRIMARY KEY \(rowid=\?\)"
)


def test_sync_reads_only_id_ranges_of_indexes_and_never_sorts(empty_db: Database) -> None:
    """Each room and each direction of direct messages is one index range, read in id order.

    So SQLite merges the ranges and stops after ``limit`` ids: nothing is scanned, and
    nothing is gathered into a temporary B-tree to be sorted, however long the history.
    PostgreSQL sorts, but only the first ``limit`` ids of each range.
    """
    alice, bob = add_users(empty_db, "alice", "bob")
    store = ChatStore(empty_db)
    store.join(alice, "general")
    store.join(bob, "other")
    for page in range(5):
        store.save_messages([
            NewMessage(bob, "bob", "elsewhere", f"{page}-{i}", room="other") for i in range(200)
        ])  # fmt: skip
    store.save_messages([
        NewMessage(bob, "bob", "to alice", "d1", to="alice"),
        NewMessage(alice, "alice", "to bob", "d2", to="bob"),
        NewMessage(alice, "alice", "hi", "g1", room="general"),
    ])  # fmt: skip
    statements: list[tuple[str, Parameters]] = []

    def record(
        _conn: object, _cursor: object, statement: str, parameters: Parameters, *_: object
    ) -> None:
        if "messages" in statement:
            statements.append((statement, parameters))

    event.listen(empty_db.engine, "before_cursor_execute", record)
    try:
        assert [m.body for m in _synced(store, alice, 0, 50)] == [
            "to alice",
            "to bob",
            "hi",
        ]
    finally:
        event.remove(empty_db.engine, "before_cursor_execute", record)
    for statement, parameters in statements:
        details = _plan(empty_db, statement, parameters, sorts=False)
        if empty_db.engine.dialect.name == "postgresql":
            # Index ranges, each cut at the limit before they are sorted together.
            for step, read in itertools.pairwise(details):
                if " messages " in f"{read} ":
                    assert read.startswith("SEARCH messages"), (statement, details)
                    assert step == "Limit" or "(id = ANY " in read, (statement, details)
            continue
        assert not any("TEMP B-TREE" in d for d in details), (statement, details)
        on_messages = [d for d in details if " messages " in f"{d} "]
        assert all(_INDEX_RANGE.fullmatch(d) for d in on_messages), (statement, details)


def test_a_row_whose_sender_was_deleted_is_refused_alone(
    empty_db: Database, store: ChatStore
) -> None:
    alice, bob, carol = add_users(empty_db, "alice", "bob", "carol")
    for user in (alice, bob, carol):
        store.join(user, "general")
    store.save_messages([NewMessage(bob, "bob", "before", "b0", room="general")])
    with empty_db.session() as s, s.begin():  # deluser while bob's next send waits for the disk
        s.delete(s.get_one(User, bob))
    results = store.save_messages([
        NewMessage(alice, "alice", "one", "a1", room="general"),
        NewMessage(bob, "bob", "from a deleted user", "b1", room="general"),
        NewMessage(carol, "carol", "two", "c1", room="general"),
        NewMessage(alice, "alice", "three", "a2", to="carol"),
    ])  # fmt: skip
    assert results[1] == ErrorCode.SERVER_ERROR
    assert [_saved(results[i]).body for i in (0, 2, 3)] == ["one", "two", "three"]
    history = store.room_history("general", before=None, limit=10)[0]
    assert [m.body for m in history] == ["before", "one", "two"]
    later = store.save_messages([NewMessage(carol, "carol", "four", "c2", room="general")])
    assert _saved(later[0]).body == "four"  # the store, and a kept connection, still work


def test_a_row_whose_room_was_deleted_is_refused_alone_and_the_name_can_come_back(
    empty_db: Database, store: ChatStore
) -> None:
    alice, bob = add_users(empty_db, "alice", "bob")
    for room in ("general", "other"):
        store.join(alice, room)
        store.join(bob, room)
    store.save_messages([NewMessage(bob, "bob", "before", "b0", room="other")])  # id cached
    with empty_db.session() as s, s.begin():  # the room goes while bob's next send waits
        s.delete(s.scalars(select(Room).where(Room.name == "other")).one())
    results = store.save_messages([
        NewMessage(alice, "alice", "one", "a1", room="general"),
        NewMessage(bob, "bob", "to a deleted room", "b1", room="other"),
        NewMessage(alice, "alice", "two", "a2", room="general"),
    ])  # fmt: skip
    assert results[1] == ErrorCode.NO_SUCH_ROOM
    assert [_saved(results[i]).body for i in (0, 2)] == ["one", "two"]
    store.join(alice, "other")  # the name again, a new room with a new id
    again = store.save_messages([NewMessage(alice, "alice", "new other", "a3", room="other")])
    assert _saved(again[0]).room == "other"
    assert [m.body for m in store.room_history("other", before=None, limit=10)[0]] == ["new other"]


# --- commit order across writers ---------------------------------------------------------


def test_a_reader_tailing_by_id_misses_nothing_two_writers_commit(empty_db: Database) -> None:
    """Ids become visible in order, whoever writes: a reader that takes ``id > last seen``
    (a client's sync, a server node tailing the table) never skips a row.

    Two stores on two engines stand for two server processes sharing the database. Each
    batch waits a little between its inserts and its COMMIT (as the fsync does), so on
    PostgreSQL a writer that drew later ids could commit first, but for the commit-order
    lock.
    """
    alice, bob = add_users(empty_db, "alice", "bob")
    other = open_database(empty_db.url)
    stores = [(ChatStore(empty_db), alice, "alice"), (ChatStore(other), bob, "bob")]
    for store, user, name in stores:
        store.join(user, "general")
        store.save_messages([NewMessage(user, name, "first", f"{name}-first", room="general")])
    stop = threading.Event()
    failures: list[BaseException] = []

    def write(store: ChatStore, user: int, name: str) -> None:
        rng = random.Random(name)
        try:
            for n in itertools.count():
                if stop.is_set():
                    return
                store.save_messages(
                    [
                        NewMessage(user, name, "x", f"{name}-{n}-{i}", room="general")
                        for i in range(3)
                    ],
                    before_commit=lambda _results: time.sleep(rng.random() / 500),
                )
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=write, args=args) for args in stores]
    for thread in writers:
        thread.start()
    seen: set[int] = set()
    last = 0
    tail = select(ChatMessage.id).where(ChatMessage.id > bindparam("last")).order_by(ChatMessage.id)
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not failures:
            with empty_db.transaction() as conn:
                new = conn.execute(tail, {"last": last}).scalars().all()
            seen.update(new)
            last = new[-1] if new else last
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=10)
        other.dispose()
    assert not failures, failures
    with empty_db.transaction() as conn:
        stored = set(conn.execute(select(ChatMessage.id)).scalars())
        seen.update(conn.execute(tail, {"last": last}).scalars())
    assert len(stored) > 20  # the writers did overlap for a while
    assert sorted(stored - seen) == []  # committed behind the reader's back: never seen
