"""The people list from the store (issue 26 item 2): every active user, paged by name,
with when each was last seen (the later of the last login and the last session end,
both written by the group commit)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from securechat.store.chat import ChatStore
from securechat.store.database import Database
from tests.sql import add_users

pytestmark = pytest.mark.postgresql


def test_people_lists_active_users_by_name_with_when_each_was_last_seen(empty_db: Database) -> None:
    store = ChatStore(empty_db)
    alice, bob, carol, _dave = add_users(empty_db, "carol", "alice", "bob", "dave")
    with empty_db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_disabled = true WHERE name = 'dave'"))
    login = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    seen = dt.datetime(2026, 12, 1, 17, 30, tzinfo=dt.UTC)
    store.save_messages([], logins={alice: login, bob: seen}, session_ends={alice: seen})
    store.save_messages([], logins={carol: seen}, session_ends={carol: login})  # an old end

    found, more = store.people(after=None, limit=10)
    assert not more
    assert [(p.name, p.last_seen) for p in found] == [
        ("alice", seen), ("bob", seen), ("carol", seen),
    ]  # fmt: skip
    first, more = store.people(after=None, limit=2)
    assert ([p.name for p in first], more) == (["alice", "bob"], True)
    rest, more = store.people(after="bob", limit=2)
    assert ([p.name for p in rest], more) == (["carol"], False)


def test_someone_who_never_logged_in_has_no_last_seen(empty_db: Database) -> None:
    add_users(empty_db, "erin")
    found, _ = ChatStore(empty_db).people(after=None, limit=10)
    assert [(p.name, p.last_seen) for p in found] == [("erin", None)]
