"""Full-text search in the store: the index follows the journal, and a user finds only what
they may read. Real SQLite files, real FTS5 (revision 0007)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from securechat.store.chat import ChatStore
from securechat.store.database import Database, open_database
from securechat.store.message_rows import NewMessage, StoredMessage
from securechat.store.migrate import (
    alembic_config,
    foreign_keys_off,
    schema_differences,
    upgrade_to_head,
)
from securechat.store.search import _SQLITE, FTS_TABLE, IndexPass, fts5_string, like_pattern
from tests.sql import add_users

_ALL = 1_000_000  # an index pass that takes the whole backlog


class _SearchStore(ChatStore):
    """A store whose :func:`_send` either indexes each message at once (as the group commit
    does at office load) or leaves it in the backlog (as in a burst)."""

    def __init__(self, database: Database, *, sqlite_cursor: bool, indexes: bool) -> None:
        super().__init__(database, sqlite_cursor=sqlite_cursor)
        self.indexes = indexes


@pytest.fixture(params=["sqlite-cursor/indexed", "sqlite-cursor/backlog", "portable/indexed"])
def store(request: pytest.FixtureRequest, empty_db: Database) -> _SearchStore:
    """Both ways the group commit adds rows, and both places a message may be searched in."""
    path, where = request.param.split("/")
    return _SearchStore(empty_db, sqlite_cursor=path == "sqlite-cursor", indexes=where == "indexed")


def _send(store: ChatStore, sender: tuple[int, str], body: str, **to: str) -> int:
    indexes = isinstance(store, _SearchStore) and store.indexes
    (result,) = store.save_messages(
        [NewMessage(sender[0], sender[1], body, None, room=to.get("room"), to=to.get("to"))],
        index=IndexPass(_ALL) if indexes else None,
    )
    assert isinstance(result, tuple), result
    assert isinstance(result[0], StoredMessage)
    return result[0].id


def _found(store: ChatStore, user_id: int, query: str, **page: int) -> list[str]:
    found = store.search(
        user_id, query, before=page.get("before"), limit=page.get("limit", 50), scan=_ALL
    )
    return [m.body for m in found.matches]


def _sql(database: Database, statement: str, **params: object) -> None:
    with database.engine.begin() as connection:
        connection.execute(text(statement), params)


def _check_index(database: Database) -> None:
    """FTS5's own check that the index holds exactly what ``messages`` says it should."""
    with database.engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('integrity-check')")
        )


def _indexed_rows(database: Database) -> int:
    with database.engine.connect() as connection:
        # The index's own count of documents (FTS5 keeps it in the averages record).
        rows = connection.execute(text(f"SELECT count(*) FROM {FTS_TABLE}_docsize")).scalar()
        assert isinstance(rows, int)
        return rows


def test_search_finds_any_substring_case_insensitively_newest_first(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    me = (alice, "alice")
    for body in ("The deploy is DONE", "deployment at noon", "Grüße aus Köln", "nothing here"):
        _send(store, me, body, room="general")
    assert _found(store, alice, "deploy") == ["deployment at noon", "The deploy is DONE"]
    assert _found(store, alice, "LOY") == ["deployment at noon", "The deploy is DONE"]
    assert _found(store, alice, "s done") == ["The deploy is DONE"]
    assert _found(store, alice, "köln") == ["Grüße aus Köln"]
    assert _found(store, alice, "absent") == []
    (match,) = store.search(alice, "noon", before=None, limit=5, scan=_ALL).matches
    assert (match.sender, match.room, match.to, match.edited_ms) == ("alice", "general", None, None)
    assert match.ts_ms > 0


def test_search_takes_the_users_text_literally_not_as_fts5_syntax(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    bodies = ['say "hi" now', "tea OR coffee", "tea", "coffee", "col:umn", "100% sure_ok", "a*b*c"]
    for body in bodies:
        _send(store, (alice, "alice"), body, room="general")
    assert _found(store, alice, "tea OR coffee") == ["tea OR coffee"]
    assert _found(store, alice, '"hi"') == ['say "hi" now']
    assert _found(store, alice, 'y "h') == ['say "hi" now']
    assert _found(store, alice, "col:umn") == ["col:umn"]
    assert _found(store, alice, "a*b*c") == ["a*b*c"]
    assert _found(store, alice, "NEAR(tea coffee)") == []
    assert _found(store, alice, "% sure_") == ["100% sure_ok"]
    assert fts5_string('a"b') == '"a""b"'
    assert like_pattern("5%_\\") == "%5\\%\\_\\\\%"


def test_search_follows_edits_deletions_and_room_deletion(
    empty_db: Database, store: _SearchStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    store.join(alice, "doomed")
    me = (alice, "alice")
    edited = _send(store, me, "meet at the old place", room="general")
    gone = _send(store, me, "a secret plan", room="general")
    _send(store, me, "doomed room words", room="doomed")
    assert _indexed_rows(empty_db) == (3 if store.indexes else 0)

    _sql(empty_db, "UPDATE messages SET body = 'meet at the new place', edited_ms = 5 WHERE id = :id",
         id=edited)  # fmt: skip
    assert _found(store, alice, "old place") == []
    (match,) = store.search(alice, "new place", before=None, limit=5, scan=_ALL).matches
    assert (match.id, match.edited_ms) == (edited, 5)

    _sql(
        empty_db, "UPDATE messages SET body = '', deleted = 1 WHERE id = :id", id=gone
    )  # tombstone
    assert _found(store, alice, "secret") == []
    _sql(empty_db, "DELETE FROM rooms WHERE name = 'doomed'")  # its messages go by cascade
    assert _found(store, alice, "doomed") == []
    # What was indexed followed each change; what was not is indexed as it is now.
    assert store.index_for_search(_ALL) == 0
    assert _indexed_rows(empty_db) == 1
    _check_index(empty_db)
    assert _found(store, alice, "place") == ["meet at the new place"]


def test_search_never_returns_edit_delete_or_event_rows(
    empty_db: Database, store: ChatStore
) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    original = _send(store, (alice, "alice"), "first words", room="general")
    _sql(
        empty_db,
        "INSERT INTO messages (room_id, sender_id, sender, body, ts_ms, kind, target_id, action)"
        " SELECT id, :alice, 'alice', body, 1, kind, :target, action FROM rooms, (SELECT"
        " 'edit' AS kind, 'edited words' AS body, NULL AS action UNION ALL SELECT 'event',"
        " 'topic words', 'topic')",
        alice=alice,
        target=original,
    )
    assert _found(store, alice, "words") == ["first words"]
    store.index_for_search(_ALL)
    assert _indexed_rows(empty_db) == 1


def test_search_finds_only_what_the_user_may_read(empty_db: Database, store: ChatStore) -> None:
    alice, bob, carol = add_users(empty_db, "alice", "bob", "carol")
    a, b, c = (alice, "alice"), (bob, "bob"), (carol, "carol")
    for user in (alice, bob):
        store.join(user, "general")
    for user in (bob, carol):
        store.join(user, "secret")  # alice is not in it (private or not)
    store.join(alice, "former")
    _send(store, b, "needle in general", room="general")
    _send(store, c, "needle in secret", room="secret")
    _send(store, a, "needle before leaving", room="former")
    _send(store, b, "needle to alice", to="alice")
    _send(store, a, "needle to bob", to="bob")
    _send(store, b, "needle to carol", to="carol")
    _send(store, c, "needle to bob from carol", to="bob")
    # Alice leaves "former" (the row is kept, as the server does from revision 0006 on).
    _sql(empty_db, "UPDATE memberships SET left_at_id = (SELECT max(id) FROM messages)"
             " WHERE user_id = :alice AND room_id = (SELECT id FROM rooms WHERE name = 'former')",
         alice=alice)  # fmt: skip
    store.join(bob, "former")
    _send(store, b, "needle after alice left", room="former")

    assert _found(store, alice, "needle") == [
        "needle to bob",
        "needle to alice",
        "needle before leaving",
        "needle in general",
    ]
    assert _found(store, carol, "needle") == [
        "needle to bob from carol",
        "needle to carol",
        "needle in secret",
    ]
    matches = store.search(alice, "needle to", before=None, limit=5, scan=_ALL).matches
    assert [(m.sender, m.to, m.room) for m in matches] == [
        ("alice", "bob", None),
        ("bob", "alice", None),
    ]


def test_search_pages_newest_first_with_before(empty_db: Database, store: ChatStore) -> None:
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    ids = [_send(store, (alice, "alice"), f"page item {n}", room="general") for n in range(7)]
    first = store.search(alice, "item", before=None, limit=3, scan=_ALL)
    assert ([m.id for m in first.matches], first.more) == (ids[:3:-1], True)
    assert (first.resume, first.cut) == (ids[4], False)
    second = store.search(alice, "item", before=first.resume, limit=3, scan=_ALL)
    assert ([m.id for m in second.matches], second.more) == (ids[3:0:-1], True)
    last = store.search(alice, "item", before=second.resume, limit=3, scan=_ALL)
    assert ([m.id for m in last.matches], last.more, last.resume) == (ids[:1], False, None)


def test_search_reads_matches_newest_first_without_sorting(empty_db: Database) -> None:
    """The plan walks the index in id order and stops at the limit, however many match."""
    with empty_db.engine.connect() as connection:
        plan = connection.execute(
            text(f"EXPLAIN QUERY PLAN {_SQLITE.text}"),
            {"user": 1, "before": 10, "scan": 5, "match": '"abc"'},
        ).all()
    details = " | ".join(row[-1] for row in plan)
    assert f"SCAN {FTS_TABLE} VIRTUAL TABLE" in details
    assert "TEMP B-TREE" not in details, details


def test_upgrading_a_0006_database_indexes_its_messages(empty_db: Database) -> None:
    with empty_db.engine.connect() as connection, foreign_keys_off(connection), connection.begin():
        command.downgrade(alembic_config(connection), "0006")
    assert "messages_fts" not in _tables(empty_db)
    alice, bob = add_users(empty_db, "alice", "bob")
    _sql(
        empty_db,
        "INSERT INTO rooms (id, name, created_at) VALUES (1, 'ops', '2026-01-01 00:00:00')",
    )
    _sql(empty_db, "INSERT INTO memberships (room_id, user_id, joined_at) VALUES"
             " (1, :alice, '2026-01-01 00:00:00')", alice=alice)  # fmt: skip
    _sql(
        empty_db,
        "INSERT INTO messages (room_id, recipient_id, recipient, sender_id, sender, body, ts_ms,"
        " deleted) VALUES (1, NULL, NULL, :bob, 'bob', 'old room text', 1, 0),"
        " (NULL, :alice, 'alice', :bob, 'bob', 'old direct text', 2, 0),"
        " (1, NULL, NULL, :bob, 'bob', '', 3, 1)",
        alice=alice,
        bob=bob,
    )
    upgrade_to_head(empty_db.engine)
    store = ChatStore(empty_db)
    assert _found(store, alice, "old") == ["old direct text", "old room text"]
    assert _indexed_rows(empty_db) == 2
    _send(store, (bob, "bob"), "new room text", room="ops")  # in the backlog (0008)
    assert _found(store, alice, "room text") == ["new room text", "old room text"]

    with empty_db.engine.connect() as connection, foreign_keys_off(connection), connection.begin():
        command.downgrade(alembic_config(connection), "0006")
    assert not {t for t in _tables(empty_db) if t.startswith("messages_fts")}
    _send(store, (bob, "bob"), "written without the index", room="ops")


def test_search_pages_across_the_index_and_the_backlog(empty_db: Database) -> None:
    store = ChatStore(empty_db)
    (alice,) = add_users(empty_db, "alice")
    store.join(alice, "general")
    ids = [_send(store, (alice, "alice"), f"mixed item {n}", room="general") for n in range(6)]
    assert store.search_backlog() == 6
    assert store.index_for_search(3) == 3  # oldest first
    assert _indexed_rows(empty_db) == 3
    pages, before, more = [], None, True
    while more:
        page = store.search(alice, "ITEM", before=before, limit=2, scan=_ALL)
        pages.append([m.id for m in page.matches])
        before, more = page.resume, page.more
    assert pages == [ids[:3:-1], ids[3:1:-1], ids[1::-1]]  # the mark is inside page 2
    assert store.index_for_search(_ALL) == 0
    _check_index(empty_db)
    assert [
        m.id for m in store.search(alice, "item", before=None, limit=9, scan=_ALL).matches
    ] == ids[::-1]


def test_revision_0008_keeps_the_index_and_its_downgrade_completes_it(empty_db: Database) -> None:
    (alice,) = add_users(empty_db, "alice")
    store = ChatStore(empty_db)
    store.join(alice, "general")
    with empty_db.engine.connect() as connection, foreign_keys_off(connection), connection.begin():
        command.downgrade(alembic_config(connection), "0007")  # the insert trigger indexes
    _send(store, (alice, "alice"), "indexed by the trigger", room="general")
    assert _indexed_rows(empty_db) == 1
    upgrade_to_head(empty_db.engine)
    assert store.search_backlog() == 0  # the mark starts at the newest id
    _send(store, (alice, "alice"), "left in the backlog", room="general")
    assert (_indexed_rows(empty_db), store.search_backlog()) == (1, 1)
    with empty_db.engine.connect() as connection, foreign_keys_off(connection), connection.begin():
        command.downgrade(alembic_config(connection), "0007")
    assert _indexed_rows(empty_db) == 2  # the backlog, indexed on the way down
    _send(store, (alice, "alice"), "indexed by the trigger again", room="general")
    assert _indexed_rows(empty_db) == 3
    _check_index(empty_db)
    upgrade_to_head(empty_db.engine)
    assert store.search_backlog() == 0
    assert len(_found(store, alice, "index")) == 2


def _tables(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM sqlite_master")).scalars()
        return set(names)


def test_search_on_postgresql_uses_the_trigram_index_and_the_same_rules() -> None:
    """Revision 0007 on PostgreSQL (pg_trgm), and the ILIKE query with its escaping."""
    pytest.importorskip("psycopg")
    from tests.postgres import PostgresCluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed")
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        database = open_database(cluster.create_database())
        try:
            assert schema_differences(database.engine) == []
            alice, bob, _carol = add_users(database, "alice", "bob", "carol")
            store = ChatStore(database)
            for user, room in ((alice, "general"), (bob, "general"), (bob, "secret")):
                store.join(user, room)
            b = (bob, "bob")
            for body, to in (("The Deploy 100% done_x", {"room": "general"}),
                             ("deploy secret", {"room": "secret"}),
                             ("deploy to carol", {"to": "carol"}),
                             ("deploy to alice", {"to": "alice"})):  # fmt: skip
                _send(store, b, body, **to)
            assert _found(store, alice, "DEPLOY") == ["deploy to alice", "The Deploy 100% done_x"]
            assert _found(store, alice, "0% done_") == ["The Deploy 100% done_x"]
            assert _found(store, alice, "0%_d") == []  # % and _ are literal
            with database.engine.connect() as connection:
                indexes = connection.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                    {"name": "ix_messages_body_trgm"},
                ).scalars()
                assert "gin_trgm_ops" in " ".join(indexes)
        finally:
            database.dispose()
    finally:
        cluster.stop()


def test_search_examines_at_most_scan_candidates_and_says_where_it_stopped(
    empty_db: Database, store: ChatStore
) -> None:
    """Issue 23 item 13: a text frequent only where the user may not read costs the query
    ``scan`` rows, and the page says where to go on from (``resume``, ``cut``)."""
    alice, carol = add_users(empty_db, "alice", "carol")
    store.join(alice, "general")
    store.join(carol, "secret")
    mine = _send(store, (alice, "alice"), "needle of mine", room="general")
    hidden = [_send(store, (carol, "carol"), f"needle {n}", room="secret") for n in range(25)]
    first = store.search(alice, "needle", before=None, limit=5, scan=10)
    assert (first.matches, first.more, first.cut, first.resume) == ([], True, True, hidden[15])
    pages, page = [first], first
    while page.more:
        assert page.resume is not None
        page = store.search(alice, "needle", before=page.resume, limit=5, scan=10)
        pages.append(page)
    assert [[m.id for m in p.matches] for p in pages] == [[], [], [mine]]
    assert [p.cut for p in pages] == [True, True, False]
    # A member finds a page in the first rows, whatever the budget.
    full = store.search(carol, "needle", before=None, limit=5, scan=6)
    assert ([m.id for m in full.matches], full.cut, full.resume) == (
        hidden[:-6:-1], False, hidden[-5],
    )  # fmt: skip
