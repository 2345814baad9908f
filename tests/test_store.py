"""The store layer on a real SQLite file and a real PostgreSQL: connection settings, error
translation, UTC datetimes, file modes (SQLite)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from securechat.errors import StoreError
from securechat.store.database import (
    LOCK_TIMEOUT_MS,
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    open_database,
)
from securechat.store.models import User
from tests.conftest import CliRunner

pytestmark = pytest.mark.postgresql


def _user(name: str, **fields: object) -> User:
    return User(name=name, password_hash="x", **fields)


def test_connection_settings_are_in_effect_on_every_connection(
    empty_db: Database, database_kind: str
) -> None:
    # Two sessions at once check out two pooled connections; both must be configured.
    with empty_db.session() as first, empty_db.session() as second:
        for session in (first, second):
            if database_kind == "postgresql":
                lock_timeout = session.execute(text("SHOW lock_timeout")).scalar_one()
                assert lock_timeout == f"{LOCK_TIMEOUT_MS // 1000}s"
                continue
            assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            busy = session.execute(text("PRAGMA busy_timeout")).scalar_one()
            assert busy == SQLITE_BUSY_TIMEOUT_MS == LOCK_TIMEOUT_MS
            assert session.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL


def test_open_database_reports_missing_directory_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    with pytest.raises(StoreError) as info:
        open_database(url)
    assert info.value.message == f"cannot open database {url}: unable to open database file"
    assert info.value.__cause__ is not None


def test_open_database_rejects_unknown_dialect() -> None:
    with pytest.raises(StoreError, match=r"^invalid database URL nosuchdb://x: "):
        open_database("nosuchdb://x")


def test_open_database_rejects_malformed_url() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        open_database("not a url")


def test_store_errors_never_show_the_database_password() -> None:
    # Whether or not a PostgreSQL driver is installed, this fails (no driver, or nothing
    # listens on port 1) and the message must mask the password.
    with pytest.raises(StoreError) as info:
        open_database("postgresql://admin:hunter2@127.0.0.1:1/chat")
    assert "hunter2" not in info.value.message
    assert "admin:***@127.0.0.1:1/chat" in info.value.message


def test_session_turns_operational_errors_into_store_error(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)
    try:
        with (
            pytest.raises(
                StoreError, match=r"database error on sqlite:///.*: no such table: users"
            ),
            database.session() as session,
        ):
            session.scalars(select(User)).all()
    finally:
        database.dispose()


def test_datetimes_round_trip_as_aware_utc(empty_db: Database) -> None:
    local = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with empty_db.session() as session, session.begin():
        session.add(_user("alice", created_at=local, last_login_at=local))
    with empty_db.session() as session:
        user = session.scalars(select(User)).one()
    assert user.created_at == local
    assert user.created_at.tzinfo is dt.UTC
    assert user.created_at.hour == 10
    assert user.last_login_at is not None
    assert user.last_login_at.tzinfo is dt.UTC


def test_naive_datetimes_are_refused(empty_db: Database) -> None:
    with (
        pytest.raises(StatementError, match="naive datetime"),
        empty_db.session() as session,
        session.begin(),
    ):
        session.add(_user("alice", created_at=dt.datetime(2024, 1, 1)))


def test_created_at_defaults_to_now_in_utc(empty_db: Database) -> None:
    before = dt.datetime.now(dt.UTC)
    with empty_db.session() as session, session.begin():
        session.add(_user("alice"))
    with empty_db.session() as session:
        user = session.scalars(select(User)).one()
    assert before <= user.created_at <= dt.datetime.now(dt.UTC)
    assert user.is_admin is False
    assert user.is_disabled is False
    assert user.last_login_at is None


def test_user_names_are_unique_in_the_schema(empty_db: Database) -> None:
    with empty_db.session() as session, session.begin():
        session.add(_user("alice"))
    with pytest.raises(IntegrityError), empty_db.session() as session, session.begin():
        session.add(_user("alice"))


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual login umask, under which files are created 0644 unless asked otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask_022")
def test_adduser_creates_the_database_readable_by_its_owner_only(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "new.db"
    result = run_cli(
        "adduser", "alice", "--password-stdin", "--db", f"sqlite:///{path}", input="pass word 1\n"
    )
    assert result.returncode == 0, result.stderr
    for file in (path, path.with_name("new.db-wal"), path.with_name("new.db-shm")):
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    database = open_database(f"sqlite:///{path}")  # migrated: the WAL holds those writes
    try:
        files = [path, path.with_name("new.db-wal"), path.with_name("new.db-shm")]
        assert {file: stat.S_IMODE(file.stat().st_mode) for file in files} == dict.fromkeys(
            files, 0o600
        )
    finally:
        database.dispose()


@pytest.mark.usefixtures("umask_022")
def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    open_database(f"sqlite:///{path}").dispose()
    path.chmod(0o640)  # the admin's choice; doctor says what it thinks of it
    open_database(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
