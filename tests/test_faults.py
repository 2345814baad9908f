"""Faults below the server: a database locked by someone else for longer than the busy timeout.

A full or read-only disk cannot be simulated portably when the tests run as root (root
writes through permissions, and filling a disk needs a dedicated file system); see the
"Faults" section of docs/security.md.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator

import pytest

from securechat.store.database import SQLITE_BUSY_TIMEOUT_MS
from tests.conftest import RunningServer

BUSY_TIMEOUT = SQLITE_BUSY_TIMEOUT_MS / 1000


def _rows_with_ref(db_url: str, ref: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT id, body FROM messages WHERE ref = ?", (ref,)).fetchall()


@pytest.fixture
def locker(running_server: RunningServer) -> Iterator[sqlite3.Connection]:
    """A second sqlite3 connection to the server's database, in autocommit mode."""
    db = sqlite3.connect(running_server.db_url.removeprefix("sqlite:///"), isolation_level=None)
    yield db
    if db.in_transaction:
        db.execute("ROLLBACK")
    db.close()


def test_locked_database_is_server_error_then_a_resend_is_stored_once(
    running_server: RunningServer, locker: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="securechat.server")
    alice, bob = running_server.login("alice"), running_server.login("bob")

    locker.execute("BEGIN EXCLUSIVE")
    locked_at = time.monotonic()
    alice.send(type="send", room="general", body="while locked", ref="m-1")
    error = alice.expect("error", timeout=BUSY_TIMEOUT + 10)
    waited = time.monotonic() - locked_at
    assert error["code"] == "server_error"
    assert error["ref"] == "m-1"
    assert BUSY_TIMEOUT - 0.5 <= waited < BUSY_TIMEOUT + 5  # it waited out the busy timeout
    assert [e for e in alice.seen if e["type"] == "ack"] == []
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("could not store" in m and "database is locked" in m for m in logged), logged

    # Still locked: the connection is alive and answers what needs no write.
    alice.send(type="ping", ref="alive")
    assert alice.expect("pong")["ref"] == "alive"
    locker.execute("ROLLBACK")
    assert _rows_with_ref(running_server.db_url, "m-1") == []

    alice.send(type="send", room="general", body="while locked", ref="m-1")
    ack = alice.expect("ack", ref="m-1")
    assert bob.expect("message", body="while locked")["id"] == ack["id"]
    alice.send(type="send", room="general", body="while locked", ref="m-1")  # and again
    assert alice.expect("ack", ref="m-1")["id"] == ack["id"]
    assert _rows_with_ref(running_server.db_url, "m-1") == [(ack["id"], "while locked")]
    bob.send(type="ping", ref="after")
    bob.expect("pong", ref="after")
    assert [e for e in bob.seen if e.get("body") == "while locked"] == []  # delivered once


def test_locked_database_fails_join_with_server_error_and_recovers(
    running_server: RunningServer, locker: sqlite3.Connection
) -> None:
    alice = running_server.login("alice")
    locker.execute("BEGIN EXCLUSIVE")
    alice.send(type="join", room="ops", ref="j-1")
    error = alice.expect("error", timeout=BUSY_TIMEOUT + 10)
    assert (error["code"], error["ref"]) == ("server_error", "j-1")
    locker.execute("ROLLBACK")
    alice.send(type="join", room="ops", ref="j-2")
    assert alice.expect("joined", ref="j-2")["members"] == ["alice"]
