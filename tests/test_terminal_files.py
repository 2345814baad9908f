"""Shared files (#27) in the real ``securechat connect``, in a pseudo-terminal, against a real
server with its web port: /upload, /download, hostile names and refusals as a user sees them."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from securechat.client import Client
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory, StartTerminal

MiB = 1024 * 1024
FILE_ID = r"([a-z2-7]{26})"


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0, max_file_size=1 * MiB)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The terminals' HOME, so that their downloads folder is ``home/Downloads``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    return home


def test_an_uploaded_file_shows_once_with_its_caption_and_downloads_under_a_numbered_name(
    server: RunningServer, terminal: StartTerminal, home: Path, tmp_path: Path
) -> None:
    data = secrets.token_bytes(600_000)
    (tmp_path / "q3 report.bin").write_bytes(data)
    alice = terminal(server, "alice")
    bob = terminal(server, "bob")
    alice.expect("bob is online")
    alice.line(f'/upload "{tmp_path / "q3 report.bin"}" the Q3 numbers')
    shown = rf"alice: the Q3 numbers\s+\[file: q3 report\.bin, 585\.9 KiB, id {FILE_ID}\]"
    file_id = alice.expect(shown).group(1)
    assert bob.expect(shown).group(1) == file_id
    bob.settle()
    assert bob.text.count(f"id {file_id}]") == 1  # the server's fallback line is not repeated
    taken = home / "Downloads" / "q3 report.bin"
    taken.parent.mkdir()
    taken.write_bytes(b"bob's own file")
    bob.line(f"/download {file_id}")
    saved = home / "Downloads" / "q3 report (1).bin"
    bob.expect(re.escape(f"saved {file_id} to {saved}"))
    assert saved.read_bytes() == data
    assert taken.read_bytes() == b"bob's own file"


def test_a_hostile_file_name_is_stored_shown_and_saved_harmlessly(
    server: RunningServer, terminal: StartTerminal, tmp_path: Path
) -> None:
    alice = terminal(server, "alice")
    (tmp_path / "payload").write_bytes(b"harmless bytes")
    with Client(
        "localhost", server.address[1], ca_file=server.ca_file, user="bob",
        password=PASSWORD, timeout=TIMEOUT,
    ).connect() as bob:  # fmt: skip
        stored = bob.upload(
            tmp_path / "payload", name="../../\x1b]0;pwned\x07\nreport\u202etxt.exe"
        )
        bob.send("look", room="general", files=[stored.id])
    assert stored.name == "]0;pwnedreporttxt.exe"  # cleaned by the server
    alice.expect(rf"bob: look\s+\[file: \]0;pwnedreporttxt\.exe, 14 B, id {stored.id}\]")
    assert "\x1b]0;pwned" not in alice.raw
    assert "\u202e" not in alice.raw
    out = tmp_path / "saved"
    out.mkdir()
    alice.line(f"/download {stored.id} {out}")
    alice.expect(re.escape(f"saved {stored.id} to {out / ']0;pwnedreporttxt.exe'}"))
    assert [p.name for p in out.iterdir()] == ["]0;pwnedreporttxt.exe"]
    assert (out / "]0;pwnedreporttxt.exe").read_bytes() == b"harmless bytes"


def test_refusals_are_one_clear_line_each(
    server: RunningServer, terminal: StartTerminal, tmp_path: Path
) -> None:
    big = tmp_path / "disk.img"
    with big.open("wb") as out:
        out.truncate(3 * MiB)
    alice = terminal(server, "alice")
    alice.line(f"/upload {big} the image")
    alice.expect(
        r"not uploaded: disk\.img: the file is 3\.0 MiB; this server takes files of up to 1\.0 MiB"
    )
    alice.line(f"/upload {tmp_path / 'missing.txt'}")
    alice.expect(re.escape(f"cannot upload {tmp_path / 'missing.txt'}: no such file"))
    alice.line(f"/upload {tmp_path}")
    alice.expect(re.escape(f"cannot upload {tmp_path}: not a file you can read"))
    alice.line("/download ../../etc/passwd")
    alice.expect(r"usage: /download ID \[PATH\]")
    alice.line(f"/download {'a' * 26}")
    alice.expect(r"not downloaded: no file a{26}")
    (tmp_path / "mine.txt").write_text("precious")
    alice.line(f"/download {'a' * 26} {tmp_path / 'mine.txt'}")
    alice.expect(r"mine\.txt exists already: give a folder, or a new file name")
    alice.line("/cancel")
    alice.expect("no upload or download under way")
    alice.line("still chatting")
    alice.expect("alice: still chatting")
    assert "Traceback" not in alice.settle()
    assert "Traceback" not in alice.text
    assert (tmp_path / "mine.txt").read_text() == "precious"
