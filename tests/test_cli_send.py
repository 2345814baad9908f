"""``securechat send`` as a subprocess against a real server: exit codes and messages."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import PASSWORD, CliRunner, RunningServer


def _stored(db_url: str) -> list[tuple[str, str | None, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT u.name, r.name, m.body FROM messages m JOIN users u ON u.id = m.sender_id "
            "LEFT JOIN rooms r ON r.id = m.room_id WHERE m.kind = 'message' ORDER BY m.id"
        ).fetchall()
    return [tuple(row) for row in rows]


class Send(Protocol):
    """The ``send`` fixture: ``send("--room", "general", "localhost", "hi", password=...)``."""

    def __call__(
        self, *args: str, password: str = PASSWORD, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def send(run_cli: CliRunner, running_server: RunningServer, tmp_path: Path) -> Send:
    """``securechat send`` at the running server as alice; extra args come first."""

    def run(
        *args: str, password: str = PASSWORD, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        options = ["--port", str(running_server.address[1]), "--user", "alice"]
        options += ["--ca", str(running_server.ca_file)]
        env = {"SECURECHAT_PASSWORD": password, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")}
        return run_cli("send", *options, *args, input=input, env=env, timeout=30)

    return run


def test_send_to_a_room_exits_zero_after_the_ack(send: Send, running_server: RunningServer) -> None:
    result = send("--room", "general", "localhost", "build 42 passed ✓")
    assert (result.returncode, result.stderr) == (0, "")
    assert _stored(running_server.db_url) == [("alice", "general", "build 42 passed ✓")]


def test_send_reads_stdin_and_joins_an_existing_room_first(
    send: Send, running_server: RunningServer
) -> None:
    bob = running_server.login("bob")
    bob.send(type="join", room="ops", ref="j")
    bob.expect("joined")
    result = send("--room", "Ops", "localhost", "-", input="backup failed\non db1\n")
    assert result.returncode == 0, result.stderr
    assert _stored(running_server.db_url) == [("alice", "ops", "backup failed\non db1")]
    assert bob.expect("message")["body"] == "backup failed\non db1"


def test_send_direct_message(send: Send, running_server: RunningServer) -> None:
    result = send("--to", "bob", "localhost", "psst")
    assert result.returncode == 0, result.stderr
    assert _stored(running_server.db_url) == [("alice", None, "psst")]


def test_send_with_bad_password_fails_with_one_line(send: Send) -> None:
    result = send("--room", "general", "localhost", "hi", password="wrong password")
    assert result.returncode == 1
    assert result.stderr == (
        "securechat: error: wrong user name or password for 'alice' on localhost:"
        f"{result.args[result.args.index('--port') + 1]} (or the account is disabled)\n"
    )


def test_send_to_unknown_room_fails_without_creating_it(
    send: Send, running_server: RunningServer
) -> None:
    result = send("--room", "genral", "localhost", "hi")
    assert result.returncode == 1
    assert result.stderr.startswith("securechat: error: no room #genral on localhost:")
    assert "(rooms: general)" in result.stderr
    assert _stored(running_server.db_url) == []


def test_send_to_unknown_user_fails(send: Send) -> None:
    result = send("--to", "nobody", "localhost", "hi")
    assert result.returncode == 1
    assert "no user 'nobody'" in result.stderr


def test_send_to_unreachable_server_fails_with_a_hint(run_cli: CliRunner, certs_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        result = run_cli(
            "send", "--port", str(port), "--user", "alice", "--ca", str(certs_dir / "ca.pem"),
            "--room", "general", "127.0.0.1", "hi",
            env={"SECURECHAT_PASSWORD": PASSWORD}, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: cannot reach 127.0.0.1:{port}: connection refused; "
        "is the server running, and is the port open in the firewall?\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["localhost", "hi"], "give exactly one of --room ROOM or --to USER"),
        (["--room", "general", "hi"], "no server given: securechat send HOST"),
        (["--room", "general", "localhost", "   "], "the message is empty"),
    ],
)
def test_send_usage_mistakes_are_explained(
    run_cli: CliRunner, certs_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    env = {"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "empty")}
    result = run_cli("send", "--ca", str(certs_dir / "ca.pem"), *args, env=env)
    assert result.returncode == 1
    assert result.stderr == f"securechat: error: {message}\n"
