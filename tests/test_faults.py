"""Faults below the server: a database locked by someone else for longer than the lock timeout.

On SQLite another connection holds the write lock (``BEGIN EXCLUSIVE``), on PostgreSQL it
holds the tables (``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE``): the server's write waits
out SQLite's busy timeout or PostgreSQL's ``lock_timeout``, then fails with a clear error.
A full or read-only disk cannot be simulated portably when the tests run as root (root
writes through permissions, and filling a disk needs a dedicated file system); see the
"Faults" section of docs/security.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

from securechat.server.requests import SERVER_ERROR_TEXT
from securechat.store.database import LOCK_TIMEOUT_MS
from tests.conftest import PASSWORD as PASSWORD_OF_USERS
from tests.conftest import RunningServer
from tests.sql import WriteLock, rows

pytestmark = pytest.mark.postgresql

LOCK_TIMEOUT = LOCK_TIMEOUT_MS / 1000
#: What each database says when a write waited too long for a lock.
LOCKED = {"sqlite": "database is locked", "postgresql": "canceling statement due to lock timeout"}


#: In the server's database URL on PostgreSQL (its trust authentication ignores it): it must
#: reach neither a client nor the log.
PASSWORD = "not-for-logs-or-clients"


@pytest.fixture
def db_url(db_url: str, database_kind: str) -> str:
    """The suite's database, its URL carrying a password on PostgreSQL."""
    if database_kind == "postgresql":
        return make_url(db_url).set(password=PASSWORD).render_as_string(hide_password=False)
    return db_url


def _rows_with_ref(db_url: str, ref: str) -> list[tuple[int, str]]:
    return rows(db_url, "SELECT id, body FROM messages WHERE ref = :ref", ref=ref)


@pytest.fixture
def locker(running_server: RunningServer) -> Iterator[WriteLock]:
    """Another connection to the server's database, ready to take its write lock."""
    with WriteLock(running_server.db_url, tables=("messages", "rooms", "memberships")) as lock:
        yield lock


def test_locked_database_is_server_error_then_a_resend_is_stored_once(
    running_server: RunningServer,
    locker: WriteLock,
    caplog: pytest.LogCaptureFixture,
    database_kind: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="securechat.server")
    alice, bob = running_server.login("alice"), running_server.login("bob")

    locker.hold()
    locked_at = time.monotonic()
    alice.send(type="send", room="general", body="while locked", ref="m-1")
    error = alice.expect("error", timeout=LOCK_TIMEOUT + 10)
    waited = time.monotonic() - locked_at
    assert error["code"] == "server_error"
    assert error["ref"] == "m-1"
    assert LOCK_TIMEOUT - 0.5 <= waited < LOCK_TIMEOUT + 5  # it waited out the lock timeout
    assert [e for e in alice.seen if e["type"] == "ack"] == []
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    locked = LOCKED[database_kind]
    assert any("could not store" in m and locked in m for m in logged), logged

    # Still locked: the connection is alive and answers what needs no write.
    alice.send(type="ping", ref="alive")
    assert alice.expect("pong")["ref"] == "alive"
    locker.release()
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
    running_server: RunningServer,
    locker: WriteLock,
    caplog: pytest.LogCaptureFixture,
    database_kind: str,
) -> None:
    caplog.set_level(logging.INFO, logger="securechat")
    alice = running_server.login("alice")
    locker.hold()
    alice.send(type="join", room="ops", ref="j-1")
    error = alice.expect("error", timeout=LOCK_TIMEOUT + 10)
    assert (error["code"], error["ref"]) == ("server_error", "j-1")
    # The client is told nothing of the database: no URL, path, host, port or driver text.
    url = make_url(running_server.db_url)
    message = error["message"]
    assert message == SERVER_ERROR_TEXT
    for detail in (url.drivername, url.database, url.host, str(url.port), LOCKED[database_kind]):
        assert detail is None or detail not in message, message
    # The server's log has the reason, once, and never the password.
    logged = [r.getMessage() for r in caplog.records]
    assert len([m for m in logged if LOCKED[database_kind] in m]) == 1, logged
    (failed,) = [m for m in logged if m.startswith("request from alice@")]
    assert LOCKED[database_kind] in failed
    assert [m for m in logged if PASSWORD in m] == []
    locker.release()
    alice.send(type="join", room="ops", ref="j-2")
    assert alice.expect("joined", ref="j-2")["members"] == ["alice"]


def test_login_on_a_locked_database_is_a_plain_server_error(
    running_server: RunningServer, caplog: pytest.LogCaptureFixture, database_kind: str
) -> None:
    caplog.set_level(logging.INFO, logger="securechat")
    with WriteLock(running_server.db_url, tables=("users", "resume_tokens")) as lock:
        lock.hold()
        peer = running_server.peer()
        peer.expect("hello")
        peer.send(type="auth", user="alice", password=PASSWORD_OF_USERS)
        events = peer.expect_closed(timeout=LOCK_TIMEOUT + 10)
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["code"], e["message"]) for e in errors] == [("server_error", SERVER_ERROR_TEXT)]
    logged = [r.getMessage() for r in caplog.records]
    (login,) = [m for m in logged if m.startswith("login of 'alice'")]
    assert LOCKED[database_kind] in login
    assert [m for m in logged if PASSWORD in m] == []
    assert [r for r in caplog.records if r.exc_info] == []  # not a bug: no traceback
    running_server.login("alice")  # and once the lock is gone, the login works
