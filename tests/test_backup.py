"""``securechat backup`` / ``restore`` and the server lock, with real files, servers and CLIs."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command

from securechat.errors import StoreError
from securechat.store.backup import summarize
from securechat.store.database import open_database
from securechat.store.lock import ServerLock, sqlite_file
from securechat.store.migrate import alembic_config, head_revision
from tests.conftest import PASSWORD, TIMEOUT, CliRunner, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.peer import Peer
from tests.serve_process import ServeProcess


def _one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("securechat: error: ")
    assert message in result.stderr


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute(sql).fetchall()
    connection.close()
    return rows


def _users(path: Path) -> set[object]:
    return {name for (name,) in _rows(path, "SELECT name FROM users")}


@pytest.fixture
def db_file(db_url: str) -> Path:
    path = sqlite_file(db_url)
    assert path is not None
    return path


@pytest.fixture
def serve(certs_dir: Path, db_url: str) -> Iterator[Callable[[], ServeProcess]]:
    """Start ``securechat serve`` subprocesses on ``db_url``; all are killed afterwards."""
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        process = ServeProcess(certs_dir, db_url)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


# --- backup ---------------------------------------------------------------------------


class _Sender(threading.Thread):
    """Sends numbered messages one at a time, recording when each ack arrived."""

    def __init__(self, server: RunningServer, user: str, stop: threading.Event) -> None:
        super().__init__(name=f"sender-{user}")
        self.peer = Peer(server.address, server.ca_file)
        self.peer.login(user, PASSWORD)
        self.user = user
        self.stop = stop
        self.acks: list[tuple[float, str]] = []  # (monotonic time, ref); appends are atomic
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                ref = f"{self.user}-{n}"
                self.peer.send(type="send", room="general", body=f"message {n}", ref=ref)
                while (event := self.peer.recv())["type"] != "ack":
                    # Others' messages arrive too; a refusal of ours ends the run, and says why.
                    if event["type"] == "error" or event["type"] == "bye":
                        raise AssertionError(f"{self.user} got {event} waiting for {ref}")
                assert event["ref"] == ref, (event, ref)
                self.acks.append((time.monotonic(), ref))
                n += 1
        except BaseException as exc:
            self.error = exc
        finally:
            self.peer.close()


def test_backup_during_a_burst_of_sends_keeps_every_acked_message(
    server_factory: ServerFactory, db_url: str, tmp_path: Path, run_cli: CliRunner
) -> None:
    # Each sender sends as soon as its last ack is back, faster than the default request
    # limit per connection allows: that limit is not what this test is about.
    server = server_factory(rate_per_second=100_000.0, rate_burst=200_000)
    stop = threading.Event()
    senders = [_Sender(server, user, stop) for user in ("alice", "bob", "carol")]
    for sender in senders:
        sender.start()
    try:
        eventually(
            lambda: sum(len(s.acks) for s in senders) >= 100,
            "the senders had 100 messages stored",
            interval=0.01,
        )
        started = time.monotonic()
        result = run_cli("backup", "backup.db", "--db", db_url)
        finished = time.monotonic()
    finally:
        stop.set()
        for sender in senders:
            sender.join(TIMEOUT)
    assert all(s.error is None for s in senders), [s.error for s in senders]
    assert result.returncode == 0, result.stderr
    acked_before = {(s.user, ref) for s in senders for when, ref in s.acks if when < started}
    during = [ref for s in senders for when, ref in s.acks if started <= when < finished]
    assert len(acked_before) >= 100
    assert during, "the senders were idle while the backup ran"

    backup = tmp_path / "backup.db"
    assert f"wrote {backup} (" in result.stdout
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert not backup.with_name("backup.db-wal").exists()
    assert _rows(backup, "PRAGMA journal_mode") == [("delete",)]

    restored = tmp_path / "fresh" / "restored.db"
    restored.parent.mkdir()
    result = run_cli("restore", str(backup), "--db", f"sqlite:///{restored}")
    assert result.returncode == 0, result.stderr
    stored = set(_rows(restored, "SELECT sender, ref FROM messages"))
    assert acked_before <= stored
    (count,) = _rows(restored, "SELECT count(*) FROM messages")[0]
    assert f"{count} messages" in result.stdout  # the restore names what it found


def test_backup_refuses_to_overwrite_unless_forced(
    run_cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    dest = tmp_path / "b.db"
    dest.write_text("precious")
    _one_line_error(run_cli("backup", str(dest), "--db", db_url), "pass --force")
    assert dest.read_text() == "precious"
    result = run_cli("backup", str(dest), "--force", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert "4 users" in result.stdout
    assert _users(dest) == {"alice", "bob", "carol", "dave"}
    assert not list(tmp_path.glob(".b.db.*.tmp"))


def test_backup_into_a_folder_writes_a_dated_file(
    run_cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    result = run_cli("backup", str(folder), "--db", db_url)
    assert result.returncode == 0, result.stderr
    (written,) = folder.glob("*.db")
    assert written.name.startswith("securechat-")
    # Beside it, the shared files (none yet).
    assert sorted(folder.iterdir()) == [written.with_name(written.stem + "-files"), written]
    assert summarize(written).users == 4


def test_backup_to_a_folder_that_does_not_exist_yet_creates_it_when_the_name_ends_in_slash(
    run_cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    """``backup DIR/`` means a dated file in DIR, as for an existing folder, not a file DIR."""
    result = run_cli("backup", "backups/nightly/", "--db", db_url)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "backups" / "nightly"
    assert folder.is_dir()
    (written,) = folder.glob("*.db")
    assert written.name.startswith("securechat-")
    assert written.suffix == ".db"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert f"wrote {written} (" in result.stdout


def test_backup_refuses_other_databases_and_missing_files(
    run_cli: CliRunner, tmp_path: Path, db_url: str, db_file: Path
) -> None:
    url = "postgresql+psycopg://chat:secret@localhost/chat"
    result = run_cli("backup", "b.db", "--db", url)
    _one_line_error(
        result, "run: pg_dump --format=custom --file=b.db postgresql://chat@localhost/chat"
    )
    assert "secret" not in result.stderr
    result = run_cli("restore", "b.db", "--yes", "--db", url)
    _one_line_error(result, "stop the server, then run: pg_restore --clean --if-exists")
    assert "--dbname=postgresql://chat@localhost/chat b.db" in result.stderr
    assert "secret" not in result.stderr
    _one_line_error(
        run_cli("backup", "b.db", "--db", f"sqlite:///{tmp_path / 'none.db'}"), "no database at"
    )
    assert not (tmp_path / "none.db").exists()
    _one_line_error(
        run_cli("backup", str(db_file), "--force", "--db", db_url), "is the database itself"
    )
    assert _users(db_file) == {"alice", "bob", "carol", "dave"}


# --- restore --------------------------------------------------------------------------


def _make_backup(run_cli: CliRunner, db_url: str, dest: Path) -> Path:
    result = run_cli("backup", str(dest), "--db", db_url)
    assert result.returncode == 0, result.stderr
    return dest


def test_restore_replaces_the_database_and_ignores_its_stale_wal(
    run_cli: CliRunner, db_url: str, db_file: Path, tmp_path: Path
) -> None:
    backup = _make_backup(run_cli, db_url, tmp_path / "b.db")
    # A server killed with -9 leaves committed transactions in the -wal file. Make one.
    connection = sqlite3.connect(db_file)
    connection.execute("PRAGMA wal_autocheckpoint=0")
    with connection:
        connection.execute(
            "INSERT INTO users (name, password_hash, is_admin, is_disabled, created_at) "
            "VALUES ('mallory', 'x', 1, 0, '2024-01-01 00:00:00')"
        )
    wal = db_file.with_name(db_file.name + "-wal")
    saved = wal.read_bytes()
    connection.close()  # checkpoints and deletes the -wal; put the crash's copy back
    wal.write_bytes(saved)

    result = run_cli("restore", str(backup), "--yes", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert f"restored {db_file} from {backup}; schema revision {head_revision()}" in result.stdout
    assert _users(db_file) == {"alice", "bob", "carol", "dave"}
    assert _rows(db_file, "PRAGMA integrity_check") == [("ok",)]


def test_restore_asks_before_replacing_a_database(
    run_cli: CliRunner, db_url: str, db_file: Path, tmp_path: Path
) -> None:
    backup = _make_backup(run_cli, db_url, tmp_path / "b.db")
    _one_line_error(run_cli("restore", str(backup), "--db", db_url), "pass --yes")
    result = run_cli("restore", str(backup), "--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert result.returncode == 0, result.stderr  # nothing to replace: no question
    assert _users(tmp_path / "new.db") == {"alice", "bob", "carol", "dave"}


def test_restore_refuses_files_that_are_not_securechat_backups(
    run_cli: CliRunner, db_url: str, db_file: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 300)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    damaged = _make_backup(run_cli, db_url, tmp_path / "damaged.db")
    data = bytearray(damaged.read_bytes())
    data[4096 * 2 : 4096 * 3] = b"\xff" * 4096  # wipe a b-tree page
    damaged.write_bytes(bytes(data))

    for path, message in [
        (junk, "is not a securechat database"),
        (other, "is not a securechat database (no schema revision)"),
        (damaged, "damaged"),
        (tmp_path / "missing.db", "not found"),
    ]:
        _one_line_error(run_cli("restore", str(path), "--yes", "--db", db_url), message)
    assert _users(db_file) == {"alice", "bob", "carol", "dave"}


def test_restore_refuses_a_backup_from_a_newer_securechat(
    run_cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    backup = _make_backup(run_cli, db_url, tmp_path / "b.db")
    with sqlite3.connect(backup) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    result = run_cli("restore", str(backup), "--db", f"sqlite:///{tmp_path / 'new.db'}")
    _one_line_error(result, "schema revision 9999, which this version of securechat does not know")
    assert not (tmp_path / "new.db").exists()


def test_restore_brings_an_old_backup_up_to_head(run_cli: CliRunner, tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    database = open_database(f"sqlite:///{old}", migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
    database.dispose()
    assert summarize(old).revision == "0001"
    target = tmp_path / "now.db"
    result = run_cli("restore", str(old), "--db", f"sqlite:///{target}")
    assert result.returncode == 0, result.stderr
    assert summarize(target).revision == head_revision()


def test_restore_is_refused_while_a_server_runs_on_the_database(
    serve: Callable[[], ServeProcess],
    run_cli: CliRunner,
    certs_dir: Path,
    db_url: str,
    db_file: Path,
    tmp_path: Path,
) -> None:
    backup = _make_backup(run_cli, db_url, tmp_path / "b.db")
    server = serve()
    inode = db_file.stat().st_ino
    result = run_cli("restore", str(backup), "--yes", "--db", db_url)
    _one_line_error(result, f"a securechat server is running on {db_file}; stop it first")
    assert db_file.stat().st_ino == inode
    with Peer(server.address, certs_dir / "ca.pem") as peer:
        peer.login("alice", PASSWORD)
    server.stop()
    result = run_cli("restore", str(backup), "--yes", "--db", db_url)
    assert result.returncode == 0, result.stderr  # the lock died with the server
    assert db_file.stat().st_ino != inode


def test_second_server_on_the_same_database_is_refused_in_one_line(
    serve: Callable[[], ServeProcess],
    run_cli: CliRunner,
    certs_dir: Path,
    db_url: str,
    db_file: Path,
) -> None:
    first = serve()
    result = run_cli(
        "serve", "--host", "127.0.0.1", "--port", "0", "--web-port", "0", "--certs", str(certs_dir),
        "--db", db_url,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: another securechat server is already using {db_file}; "
        "stop it first, or give this one its own --db\n"
    )
    assert first.proc.poll() is None


def test_server_lock_is_exclusive_and_released(db_url: str, db_file: Path) -> None:
    first, second = ServerLock(db_url), ServerLock(db_url)
    assert not second.is_held_elsewhere()
    with first:
        assert first.path == db_file.with_name(db_file.name + ".lock")
        assert second.is_held_elsewhere()
        with pytest.raises(StoreError, match="already using"):
            second.acquire()
    assert not second.is_held_elsewhere()
    with second:
        assert first.is_held_elsewhere()


def test_server_lock_does_nothing_for_other_databases() -> None:
    lock = ServerLock("postgresql://localhost/chat")
    assert lock.path is None
    with lock:
        assert not ServerLock("postgresql://localhost/chat").is_held_elsewhere()
