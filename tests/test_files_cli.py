"""``securechat send --file`` and ``securechat download`` as subprocesses against a real
server with its web port (#27): what scripts see, exit codes and one-line errors."""

from __future__ import annotations

import re
import secrets
import sqlite3
import subprocess
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import PASSWORD, CliRunner, RunningServer, ServerFactory

MiB = 1024 * 1024


class Run(Protocol):
    def __call__(self, command: str, *args: str) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0, max_file_size=1 * MiB)


@pytest.fixture
def run(run_cli: CliRunner, server: RunningServer, tmp_path: Path) -> Run:
    """A client command at the server as alice, HOME in ``tmp_path/home``."""
    home = tmp_path / "home"
    home.mkdir()

    def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        options = ["--port", str(server.address[1]), "--user", "alice"]
        options += ["--ca", str(server.ca_file)]
        env = {
            "SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg"),
            "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        }  # fmt: skip
        return run_cli(command, *options, *args, env=env, timeout=60)

    return run


def _file_ids(db_url: str) -> list[str]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        return [row[0] for row in db.execute("SELECT id FROM files ORDER BY created_at")]


def test_send_a_file_then_download_it_to_a_folder_and_to_the_downloads_folder(
    run: Run, server: RunningServer, tmp_path: Path
) -> None:
    data = secrets.token_bytes(300_000)
    (tmp_path / "db1.log").write_bytes(data)
    sent = run(
        "send", "--room", "general", "--file", str(tmp_path / "db1.log"), "localhost", "the log"
    )
    assert (sent.returncode, sent.stderr) == (0, "")
    [file_id] = _file_ids(server.db_url)
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        [(body,)] = db.execute("SELECT body FROM messages WHERE files IS NOT NULL").fetchall()
    assert body == f"the log\n[file: db1.log, 293.0 KiB, id {file_id}]"
    out = tmp_path / "out"
    out.mkdir()
    got = run("download", "localhost", file_id, "--out", str(out))
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == f"{out / 'db1.log'}\n"
    assert (out / "db1.log").read_bytes() == data
    default = run("download", "localhost", file_id)
    assert default.returncode == 0, default.stderr
    saved = Path(default.stdout.strip())
    assert saved.parent == tmp_path / "home" / "Downloads"
    assert saved.read_bytes() == data


def test_download_never_replaces_a_file_unless_asked(
    run: Run, server: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("new")
    assert (
        run("send", "--to", "bob", "--file", str(tmp_path / "a.txt"), "localhost", "").returncode
        == 0
    )
    [file_id] = _file_ids(server.db_url)
    target = tmp_path / "mine.txt"
    target.write_text("precious")
    refused = run("download", "localhost", file_id, "--out", str(target))
    assert refused.returncode == 1
    assert "exists already; give --overwrite" in refused.stderr
    assert target.read_text() == "precious"
    replaced = run("download", "localhost", file_id, "--out", str(target), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_an_oversize_file_is_refused_before_it_is_sent_with_a_clear_message(
    run: Run, server: RunningServer, tmp_path: Path
) -> None:
    big = tmp_path / "disk.img"
    with big.open("wb") as out:
        out.truncate(3 * MiB)
    result = run("send", "--room", "general", "--file", str(big), "localhost", "image")
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: {big}: the file is 3.0 MiB; this server takes files of up to 1.0 MiB\n"
    )
    assert _file_ids(server.db_url) == []


def test_download_of_a_file_one_may_not_see_says_no_such_file(run: Run, tmp_path: Path) -> None:
    result = run("download", "localhost", "a" * 26)
    assert result.returncode == 1
    assert re.fullmatch(r"securechat: error: no file a{26}\n", result.stderr)
    bad = run("download", "localhost", "../../etc/passwd")
    assert bad.returncode == 1
    assert "is not a file id" in bad.stderr
