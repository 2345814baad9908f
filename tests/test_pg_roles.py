"""A PostgreSQL role that may connect to the service's database and nothing more (issue 23):
``createdb --owner`` leaves CONNECT to PUBLIC, and advisory locks, LISTEN and NOTIFY need no
table privilege. Such a role must not stop the writes, change what a session sees, or learn
who reads what. The intruder here is a real login role of the suite's cluster, with no
privilege granted on any table."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import make_url

from securechat.store.database import LOCK_TIMEOUT_MS
from tests.conftest import TIMEOUT, PostgresFixture, RunningServer, ServerFactory
from tests.peer import Peer
from tests.sql import value

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]

#: The advisory lock key that ordered every journal commit before issue 23 ("securech").
OLD_COMMIT_ORDER_KEY = 0x7365_6375_7265_6368
CHANNEL = "securechat_journal"
INTRUDER = "intruder"


def _reply(peer: Peer, ref: str, timeout: float = LOCK_TIMEOUT_MS / 1000 + TIMEOUT) -> Any:
    """The first event answering ``ref`` (a reply or an error), whatever comes before it."""
    deadline = time.monotonic() + timeout
    while True:
        event = peer.recv(max(deadline - time.monotonic(), 0.001))
        if event.get("ref") == ref:
            return event
        peer.seen.append(event)


@pytest.fixture
def nodes(server_factory: ServerFactory) -> list[RunningServer]:
    """Two nodes on the test database."""
    return [server_factory(bus_retry_interval=0.2) for _ in range(2)]


@pytest.fixture
def intruder(postgres: PostgresFixture, nodes: list[RunningServer]) -> Iterator[Any]:
    """An autocommit psycopg connection to the nodes' database as a role that has only
    PUBLIC's CONNECT (the role lives as long as the cluster)."""
    import psycopg

    cluster = postgres.cluster
    cluster.execute(
        "postgres",
        f"DO $$ BEGIN CREATE ROLE {INTRUDER} LOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    database = make_url(nodes[0].db_url).database
    dsn = f"host=127.0.0.1 port={cluster.port} user={INTRUDER} dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def test_a_role_that_may_only_connect_cannot_hold_up_the_writes(
    nodes: list[RunningServer], intruder: Any
) -> None:
    import psycopg

    alice = nodes[0].login("alice")
    intruder.execute("SELECT pg_advisory_lock(%s)", (OLD_COMMIT_ORDER_KEY,))
    # The commit-order lock is a table lock now: it needs a privilege the intruder lacks.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), intruder.transaction():
        intruder.execute("LOCK TABLE commit_order IN EXCLUSIVE MODE")
    alice.send(type="send", room="general", body="still writing", ref="m")
    assert _reply(alice, "m")["type"] == "ack"
    alice.send(type="join", room="ops", ref="j")
    assert _reply(alice, "j")["type"] == "joined"


def test_a_spoofed_notification_changes_nothing_a_session_sees(
    nodes: list[RunningServer], intruder: Any
) -> None:
    alice, alice_on_b, bob = nodes[0].login("alice"), nodes[1].login("alice"), nodes[1].login("bob")
    bob.send(type="send", room="general", body="unread", ref="m")
    sent = _reply(bob, "m")["id"]
    alice.expect("message", id=sent)
    spoofed = [
        '{"origin":"n-0","read":"alice","id":999999,"in_room":"general"}',
        '{"origin":"n-0","read":"alice","id":999999,"peer":"bob"}',
        '{"origin":"n-0","room":"general"}',
        "n-0",
        "not json {",
    ]
    for payload in spoofed:
        intruder.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
    # Real news after the spoofed notifications: node A handles them in this order.
    alice_on_b.send(type="read", room="general", id=sent, ref="r")
    assert _reply(alice_on_b, "r")["id"] == sent
    assert alice.expect("read", room="general")["id"] == sent  # the first marker A sends
    assert [e for e in alice.seen if e["type"] in ("read", "message", "member_left")] == []
    marker = value(
        nodes[0].db_url,
        "SELECT last_read_id FROM memberships JOIN users ON users.id = user_id"
        " JOIN rooms ON rooms.id = room_id WHERE users.name = 'alice' AND rooms.name = 'general'",
    )
    assert marker == sent


def test_a_listener_learns_no_name_or_id_from_the_notifications(
    nodes: list[RunningServer], intruder: Any
) -> None:
    intruder.execute(f"LISTEN {CHANNEL}")
    alice, bob, bob_on_a = nodes[0].login("alice"), nodes[1].login("bob"), nodes[0].login("bob")
    bob.send(type="send", to="alice", body="psst", ref="d")
    sent = _reply(bob, "d")["id"]
    alice.expect("message", id=sent)
    alice.send(type="read", id=sent, ref="r1", **{"with": "bob"})  # who read whose DMs
    _reply(alice, "r1")
    alice.send(type="join", room="lunch", ref="j")  # a plain join: news without a row
    _reply(alice, "j")
    bob.send(type="read", id=sent, ref="r2", **{"with": "alice"})
    _reply(bob, "r2")
    assert (
        bob_on_a.expect("read", TIMEOUT, **{"with": "alice"})["id"] == sent
    )  # the news went round
    payloads = set()
    with contextlib.suppress(TimeoutError):
        for notify in intruder.notifies(timeout=1.0):
            payloads.add(notify.payload)
    origins = {node.server.origin for node in nodes}
    assert payloads, "the nodes notified nothing"
    assert payloads <= origins, payloads  # the writers' random ids, and nothing else
