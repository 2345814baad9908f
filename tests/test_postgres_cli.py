"""The whole product on PostgreSQL, as an administrator and users run it: real CLI
subprocesses (``db``, ``adduser``, ``serve``, ``connect``, ``send``) against a database
that starts without even a schema, and every Alembic revision both ways."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from securechat.store.migrate import alembic_config, head_revision
from tests.conftest import PASSWORD, TIMEOUT, CliRunner, PostgresFixture
from tests.pty_terminal import Terminal
from tests.serve_process import ServeProcess
from tests.sql import rows


@pytest.fixture
def blank_postgresql(postgres: PostgresFixture) -> Iterator[str]:
    """A new PostgreSQL database without a schema; its URL."""
    with postgres.blank_database() as url:
        yield url


def test_every_revision_upgrades_and_downgrades_on_postgresql(blank_postgresql: str) -> None:
    revisions = [
        script.revision
        for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    ]
    engine = create_engine(blank_postgresql, poolclass=NullPool)
    try:
        for revision in revisions:  # one at a time: each revision's own upgrade must run
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), revision)
        assert revisions[-1] == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"users", "rooms", "memberships", "messages"} <= tables
        for revision in [*reversed(revisions[:-1]), "base"]:
            with engine.begin() as connection:
                command.downgrade(alembic_config(connection), revision)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.begin() as connection:  # and back up again, all at once
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()


def _connect(port: int, ca: Path, user: str, config_dir: Path) -> Terminal:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    env.update(
        SECURECHAT_PASSWORD=PASSWORD,
        SECURECHAT_CONFIG_DIR=str(config_dir),
        TERM="xterm",
        NO_COLOR="1",
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    argv = ["-m", "securechat", "connect", "localhost", "--port", str(port)]
    argv += ["--user", user, "--ca", str(ca)]
    child = pexpect.spawn(sys.executable, argv, env=env, encoding="utf-8", dimensions=(30, 120))
    return Terminal(child)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serve_adduser_connect_send_and_history_on_postgresql(
    run_cli: CliRunner, certs_dir: Path, blank_postgresql: str, tmp_path: Path
) -> None:
    url = blank_postgresql
    result = run_cli("db", "upgrade", "--db", url)
    assert result.returncode == 0, result.stderr
    for user in ("alice", "bob"):
        result = run_cli("adduser", user, "--password-stdin", "--db", url, input=PASSWORD + "\n")
        assert result.returncode == 0, result.stderr
    result = run_cli("users", "--db", url)
    assert "alice" in result.stdout, result.stdout
    assert "bob" in result.stdout, result.stdout

    server = ServeProcess(certs_dir, url).start()
    alice: Terminal | None = None
    try:
        alice = _connect(server.port, certs_dir / "ca.pem", "alice", tmp_path / "alice")
        alice.expect(r"\[general\] alice>", timeout=3 * TIMEOUT)  # a cold start, maybe loaded
        alice.line("hello from the terminal")
        alice.expect("alice: hello from the terminal")

        result = run_cli(
            "send", "--port", str(server.port), "--user", "bob", "--ca", str(certs_dir / "ca.pem"),
            "--room", "general", "localhost", "and hello from send",
            env={"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "bob")},
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        alice.expect("bob: and hello from send")  # fanned out live

        alice.line("/history 5")
        alice.expect(r"last 2 message\(s\) and 2 room event\(s\) in #general")  # the joins
        alice.expect("alice: hello from the terminal")
        alice.expect("bob: and hello from send")
        alice.expect("end of history")
    finally:
        if alice is not None:
            alice.child.terminate(force=True)
            alice.child.close()
        server.stop()
    stored = rows(url, "SELECT body FROM messages WHERE kind = 'message' ORDER BY id")
    assert stored == [("hello from the terminal",), ("and hello from send",)]
