"""A deleted message's text leaves the SQLite search index's segments (issue 23, 6): FTS5
keeps a deleted row's entries in its segments, behind a tombstone, until a merge rewrites
them, so the text survived VACUUM and went into every backup. Real SQLite files."""

from __future__ import annotations

from pathlib import Path

from securechat.store import edits, moderation
from securechat.store.chat import ChatStore
from securechat.store.database import Database, open_database
from securechat.store.journal import Actor
from securechat.store.message_rows import NewMessage, StoredMessage
from securechat.store.search import IndexPass
from tests.sql import add_users

SECRET = "xylophone quokka 7731"
#: Trigrams of SECRET that no other body here contains.
SECRET_TRIGRAMS = (b"xyl", b"ylo", b"pho", b"quo", b"uok", b"okk", b"773", b"731")


def _index_bytes(database: Database) -> bytes:
    with database.transaction() as conn:
        return b"".join(
            bytes(block) for (block,) in conn.exec_driver_sql("SELECT block FROM messages_fts_data")
        )


def _send(store: ChatStore, sender: tuple[int, str], body: str, room: str) -> int:
    (result,) = store.save_messages(
        [NewMessage(sender[0], sender[1], body, None, room=room)], index=IndexPass(1000)
    )
    assert isinstance(result, tuple)
    assert isinstance(result[0], StoredMessage)
    return result[0].id


def _store_with_secret(tmp_path: Path) -> tuple[Database, ChatStore, Actor, int]:
    database = open_database(f"sqlite:///{tmp_path / 'chat.db'}")
    (alice,) = add_users(database, "alice")
    store = ChatStore(database)
    store.join(alice, "general")
    store.join(alice, "doomed")
    _send(store, (alice, "alice"), "hello world", "general")
    secret = _send(store, (alice, "alice"), SECRET, "general")
    assert any(
        trigram in _index_bytes(database) for trigram in SECRET_TRIGRAMS
    )  # the check sees it
    return database, store, Actor(alice, "alice", is_admin=False), secret


def test_deleting_a_message_removes_its_trigrams_from_the_index_data(tmp_path: Path) -> None:
    database, store, alice, secret = _store_with_secret(tmp_path)
    try:
        store.perform(lambda tx: edits.delete(tx, alice, secret))
        data = _index_bytes(database)
        assert [t for t in SECRET_TRIGRAMS if t in data] == []
        assert b"wor" in data  # the other message is still indexed
    finally:
        database.dispose()


def test_deleting_a_room_removes_its_messages_trigrams_from_the_index_data(
    tmp_path: Path,
) -> None:
    database, store, alice, _ = _store_with_secret(tmp_path)
    try:
        _send(store, (alice.id or 0, "alice"), "zebra crossing", "doomed")
        admin = Actor(alice.id, "alice", is_admin=True)
        store.perform(lambda tx: moderation.moderate(tx, admin, "doomed", "delete"))
        data = _index_bytes(database)
        assert [t for t in (b"zeb", b"ebr", b"bra") if t in data] == []
    finally:
        database.dispose()
