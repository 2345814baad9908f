"""The node table (#17): heartbeats and who is online on which node, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from securechat.store.database import Database, open_database
from securechat.store.nodes import NodeTable
from tests.sql import execute, rows, value

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]

TTL = 30.0


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    opened = open_database(db_url)
    yield opened
    opened.dispose()


def _ids(db_url: str, *names: str) -> set[int]:
    found = rows(db_url, "SELECT id, name FROM users")
    return {user_id for user_id, name in found if name in names}


def _age(db_url: str, node: str, seconds: float) -> None:
    """Make ``node``'s last heartbeat ``seconds`` old, as if it had died then."""
    execute(db_url, f"UPDATE nodes SET seen_at = now() - interval '{seconds} seconds' "
            "WHERE name = :node", node=node)  # fmt: skip


def test_each_node_sees_the_users_online_on_the_others_until_one_falls_silent(
    database: Database, db_url: str
) -> None:
    a, b = NodeTable(database, "n-a", ttl=TTL), NodeTable(database, "n-b", ttl=TTL)
    assert a.beat(_ids(db_url, "alice", "bob")) == set()
    assert b.beat(_ids(db_url, "carol")) == {"alice", "bob"}
    assert a.beat(_ids(db_url, "alice")) == {"carol"}  # bob logged out of node A
    assert b.beat(_ids(db_url, "carol")) == {"alice"}
    _age(db_url, "n-a", TTL + 1)  # node A died (no beat for longer than the ttl)
    assert b.beat(_ids(db_url, "carol")) == set()
    assert value(db_url, "SELECT count(*) FROM nodes WHERE name = 'n-a'") == 1
    _age(db_url, "n-a", 3 * TTL + 1)
    b.beat(_ids(db_url, "carol"))
    assert value(db_url, "SELECT count(*) FROM node_sessions WHERE node = 'n-a'") == 0
    assert a.beat(_ids(db_url, "alice")) == {"carol"}  # back: its row and users written again
    assert b.beat(_ids(db_url, "carol")) == {"alice"}


def test_a_node_that_leaves_takes_its_users_offline_at_once(
    database: Database, db_url: str
) -> None:
    a, b = NodeTable(database, "n-a", ttl=TTL), NodeTable(database, "n-b", ttl=TTL)
    a.beat(_ids(db_url, "alice"))
    assert b.beat(set()) == {"alice"}
    a.leave()
    assert b.beat(set()) == set()
