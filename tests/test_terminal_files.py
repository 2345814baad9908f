"""Shared files (#27) in the real ``securechat connect``, in a pseudo-terminal, against a real
server with its web port: /upload, /download, hostile names and refusals as a user sees them."""

from __future__ import annotations

import re
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.client import Client
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory, StartTerminal

MiB = 1024 * 1024
FILE_ID = r"([a-z2-7]{26})"


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0, max_file_size=1 * MiB, file_quota_per_day=2 * MiB)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The terminals' HOME, so that their downloads folder is ``home/Downloads``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    return home


#: How a StallingRelay passes what it holds: this many bytes, then a pause this long.
_TRICKLE_BYTES, _TRICKLE_EVERY = 1024, 0.2


class StallingRelay:
    """A TCP relay in front of the web port that passes ``allowance`` bytes of each request
    (``upload``) or answer (``download``), then trickles the rest (a kilobyte every fifth of
    a second) until :meth:`release`: a slow network, made to order, so that a transfer is
    surely under way while the test looks. A trickle, not a stop: the client gives up on a
    socket silent for its I/O timeout (10 s), and a loaded machine may take that long over
    what the test does meanwhile."""

    def __init__(self, upstream: tuple[str, int], allowance: int, stalls: str) -> None:
        self._upstream, self._allowance, self._stalls = upstream, allowance, stalls
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        # A small receive buffer (inherited by accepted sockets) keeps the client's bytes
        # in the client, where its progress counts them, rather than in this relay's kernel.
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed by close()
            server = socket.create_connection(self._upstream, timeout=TIMEOUT)
            self._sockets += [client, server]
            stalled = self._allowance
            up, down = (stalled, None) if self._stalls == "upload" else (None, stalled)
            self._spawn(self._pump, client, server, up)
            self._spawn(self._pump, server, client, down)

    def _pump(self, source: socket.socket, sink: socket.socket, allowance: int | None) -> None:
        passed = 0
        try:
            while data := source.recv(64 * 1024):
                if allowance is not None and passed + len(data) > allowance:
                    self._trickle(sink, memoryview(data))
                else:
                    sink.sendall(data)
                passed += len(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the other side went away: the transfer was cancelled, or close()

    def _trickle(self, sink: socket.socket, data: memoryview) -> None:
        while data and not self._released.is_set():
            sink.sendall(data[:_TRICKLE_BYTES])
            data = data[_TRICKLE_BYTES:]
            self._released.wait(_TRICKLE_EVERY)
        sink.sendall(data)

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.listener.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(TIMEOUT)


@pytest.fixture(params=["upload"])
def stalled_web_port(
    server_factory: ServerFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[RunningServer, StallingRelay]]:
    """A server whose file tickets send clients through a :class:`StallingRelay`; it stalls
    uploads, or downloads with ``@pytest.mark.parametrize("stalled_web_port", ["download"],
    indirect=True)``."""
    server = server_factory(web_port=0)
    assert server.web_address is not None
    relay = StallingRelay(server.web_address, allowance=1 * MiB, stalls=request.param)
    server.server.parts.files.set_port(relay.port)  # the port tickets name
    yield server, relay
    relay.close()


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
    (tmp_path / "part.bin").write_bytes(secrets.token_bytes(900 * 1024))
    for caption in ("first", "second"):
        alice.line(f"/upload {tmp_path / 'part.bin'} {caption}")
        alice.expect(rf"alice: {caption}\s+\[file: part\.bin, 900\.0 KiB, id {FILE_ID}\]")
    alice.line(f"/upload {tmp_path / 'part.bin'} third")
    alice.expect(
        r"not uploaded: part\.bin: the file \(900\.0 KiB\) would take your uploads of the"
        r" last 24 hours past 2\.0 MiB \(1\.8 MiB used\)"
    )
    alice.line("still chatting")
    alice.expect("alice: still chatting")
    assert "Traceback" not in alice.settle()
    assert "Traceback" not in alice.text
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_an_upload_shows_its_progress_in_place_keeps_chat_flowing_and_ctrl_c_cancels_it(
    stalled_web_port: tuple[RunningServer, StallingRelay], terminal: StartTerminal,
    tmp_path: Path,
) -> None:  # fmt: skip
    server, relay = stalled_web_port
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(20 * MiB)
    alice = terminal(server, "alice")
    bob = terminal(server, "bob")
    alice.expect("bob is online")
    alice.line(f"/upload {big} all of it")
    alice.expect(r"↑ upload big\.bin  starting…  /cancel or Ctrl-C stops it")
    # Redrawn in place (prompt_toolkit rewrites only what changed, the rest is skipped
    # over with cursor moves, so only part of the new text shows here).
    alice.expect(r"\(\d+%\)")
    bob.line("meanwhile, in the chat")
    alice.expect("bob: meanwhile, in the chat")  # the upload holds neither the screen nor chat
    alice.type("\x03")  # Ctrl-C
    alice.expect("cancelling the transfers under way; Ctrl-C again quits")
    relay.release()
    alice.expect("upload of big.bin cancelled; nothing was sent")
    alice.line("/cancel")
    alice.expect("no upload or download under way")  # and the screen is still there
    assert "all of it" not in bob.settle()
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)


@pytest.mark.parametrize("stalled_web_port", ["download"], indirect=True)
def test_a_cancelled_download_keeps_nothing(
    stalled_web_port: tuple[RunningServer, StallingRelay], terminal: StartTerminal,
    home: Path, tmp_path: Path,
) -> None:  # fmt: skip
    server, relay = stalled_web_port
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(20 * MiB)
    alice = terminal(server, "alice")
    bob = terminal(server, "bob")
    alice.line(f"/upload {big}")
    file_id = bob.expect(rf"alice: \[file: big\.bin, 20\.0 MiB, id {FILE_ID}\]").group(1)
    bob.line(f"/download {file_id}")
    bob.expect(rf"↓ download {file_id}  ")
    bob.expect(r"\(\d+%\)")  # held after the first MiB
    bob.line("/cancel")
    bob.expect(r"cancelling 1 transfer\(s\)")
    relay.release()
    bob.expect(f"download of {file_id} cancelled; nothing was kept")
    assert list((home / "Downloads").iterdir()) == []


def test_a_server_without_files_says_so_in_one_line(
    running_server: RunningServer, terminal: StartTerminal, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    alice = terminal(running_server, "alice")  # no web port: no files
    alice.line(f"/upload {tmp_path / 'a.txt'}")
    alice.expect(r"not uploaded: a\.txt: this server keeps no files")
    alice.line(f"/download {'a' * 26}")
    alice.expect(r"not downloaded: this server keeps no files")
