"""Shared files (#27) end to end: a real server with its web port, real TLS on 127.0.0.1,
the Client API uploading and downloading, and raw HTTP where the wire itself is tested."""

from __future__ import annotations

import json
import os
import secrets
import socket
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import h11
import pytest

from securechat.attachments.layout import default_files_dir, file_path, new_file_id
from securechat.client import Client
from securechat.errors import (
    FilesDisabled,
    FileTooLarge,
    NoSuchFile,
    QuotaExceeded,
    TooManyUploads,
)
from securechat.protocol.files import AskFileTicket, FileTicket
from securechat.protocol.messages import Asked, Event, Message
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.eventually import eventually

pytestmark = pytest.mark.postgresql

MiB = 1024 * 1024
T = TypeVar("T", bound=Event)
Clients = Callable[[str], Client]


@pytest.fixture
def files_server(
    server_factory: ServerFactory, database_kind: str, tmp_path: Path
) -> RunningServer:
    """PostgreSQL has no default files folder: one is named; SQLite's sits beside it."""
    files_dir = tmp_path / "files" if database_kind == "postgresql" else None
    return server_factory(
        web_port=0, files_dir=files_dir, max_file_size=4 * MiB, file_quota_per_day=64 * MiB
    )


@pytest.fixture
def clients(files_server: RunningServer) -> Iterator[Clients]:
    made: list[Client] = []

    def make(user: str) -> Client:
        client = Client(
            "localhost", files_server.address[1], ca_file=files_server.ca_file, user=user,
            password=PASSWORD, timeout=TIMEOUT,
        )  # fmt: skip
        made.append(client)
        return client.connect()

    yield make
    for client in made:
        client.close()


def _files_root(server: RunningServer) -> Path:
    storage = server.server.parts.files._storage  # the folder the server chose
    assert storage is not None
    return storage.root


def _write(path: Path, size: int) -> bytes:
    data = secrets.token_bytes(size)
    path.write_bytes(data)
    return data


def _message(client: Client, **fields: object) -> Message:
    for event in client.events(timeout=TIMEOUT):
        if isinstance(event, Message) and all(getattr(event, k) == v for k, v in fields.items()):
            return event
    raise AssertionError("no such message")


def test_a_file_goes_up_and_comes_down_byte_for_byte(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    alice, bob = clients("alice"), clients("bob")
    data = _write(tmp_path / "report.bin", 3 * MiB + 17)  # several chunks, past HIGH_WATER
    seen: list[tuple[int, int]] = []
    stored = alice.upload(
        tmp_path / "report.bin", progress=lambda done, total: seen.append((done, total))
    )
    assert (stored.name, stored.size, stored.type) == (
        "report.bin",
        len(data),
        "application/octet-stream",
    )
    assert seen[-1] == (len(data), len(data))
    message_id = alice.send("the numbers", room="general", files=[stored.id])
    got = _message(bob, id=message_id)
    assert got.files is not None
    assert [f.id for f in got.files] == [stored.id]
    # An older client shows the body: the caption, then a line naming the file.
    assert got.body == f"the numbers\n[file: report.bin, 3.0 MiB, id {stored.id}]"
    out = tmp_path / "bob"
    out.mkdir()
    saved = bob.download(stored.id, out)
    assert saved == out / "report.bin"
    assert saved.read_bytes() == data
    again = bob.download(stored.id, out)  # never over an existing file
    assert again == out / "report (1).bin"
    assert again.read_bytes() == data
    root = _files_root(files_server)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(file_path(root, stored.id).stat().st_mode) == 0o600
    assert not [p for p in root.rglob("*.part")]  # nothing half-written left


def test_history_and_sync_carry_a_message_s_files(clients: Clients, tmp_path: Path) -> None:
    alice = clients("alice")
    _write(tmp_path / "a.txt", 10)
    stored = alice.upload(tmp_path / "a.txt")
    message_id = alice.send("", to="bob", files=[stored.id])
    bob = clients("bob")
    page = bob.history(peer="alice")
    found = [m for m in page.messages if m.id == message_id]
    assert found
    assert found[0].files is not None
    assert found[0].files[0].name == "a.txt"
    assert found[0].body == f"[file: a.txt, 10 B, id {stored.id}]"


def test_outsiders_kicked_members_and_guessers_get_the_answer_of_a_missing_id(
    clients: Clients, tmp_path: Path
) -> None:
    alice, bob, carol = clients("alice"), clients("bob"), clients("carol")
    alice.create("ops", private=True)
    alice.invite("ops", "bob")
    bob.join("ops")
    _write(tmp_path / "before.txt", 100)
    before = alice.upload(tmp_path / "before.txt")
    alice.send("before", room="ops", files=[before.id])
    alice.kick("ops", "bob")
    _write(tmp_path / "after.txt", 100)
    after = alice.upload(tmp_path / "after.txt")
    alice.send("after", room="ops", files=[after.id])

    def refusal(client: Client, file_id: str) -> str:
        with pytest.raises(NoSuchFile) as caught:
            client.download(file_id, tmp_path)
        return caught.value.message.replace(file_id, "ID")

    missing = refusal(carol, new_file_id())
    assert refusal(carol, before.id) == missing  # another room's file
    assert refusal(bob, after.id) == missing  # posted after the kick
    assert refusal(alice, new_file_id()) == missing
    kept = bob.download(before.id, tmp_path / "kept.txt")  # what he saw before the kick
    assert kept.read_bytes() == (tmp_path / "before.txt").read_bytes()
    assert refusal(bob, alice.upload(tmp_path / "after.txt").id) == missing  # not yet sent


def test_every_download_is_checked_again_and_a_ticket_opens_one_request(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    alice, bob = clients("alice"), clients("bob")
    _write(tmp_path / "x.txt", 1000)
    stored = alice.upload(tmp_path / "x.txt")
    message_id = alice.send("x", room="general", files=[stored.id])
    ticket = bob._request(AskFileTicket(file=stored.id), FileTicket)
    status, body = _http(files_server, "GET", ticket.path, ticket.ticket)
    assert (status, len(body)) == (200, 1000)
    assert _http(files_server, "GET", ticket.path, ticket.ticket)[0] == 401  # used up
    ticket = bob._request(AskFileTicket(file=stored.id), FileTicket)
    alice.delete(message_id)
    status, body = _http(files_server, "GET", ticket.path, ticket.ticket)
    assert status == 404
    assert json.loads(body)["code"] == "no_such_file"


def test_deleting_a_message_or_a_room_removes_its_files(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    alice = clients("alice")
    root = _files_root(files_server)
    _write(tmp_path / "a.bin", 5000)
    first = alice.upload(tmp_path / "a.bin")
    message_id = alice.send("one", room="general", files=[first.id])
    assert file_path(root, first.id).exists()
    alice.delete(message_id)
    assert not file_path(root, first.id).exists()
    alice.create("scratch")
    second = alice.upload(tmp_path / "a.bin")
    alice.send("two", room="scratch", files=[second.id])
    alice.delete_room("scratch")
    assert not file_path(root, second.id).exists()


def test_a_file_is_sent_once_and_only_by_its_uploader(clients: Clients, tmp_path: Path) -> None:
    alice, bob = clients("alice"), clients("bob")
    _write(tmp_path / "a.txt", 10)
    stored = alice.upload(tmp_path / "a.txt")
    with pytest.raises(NoSuchFile):
        bob.send("mine now", room="general", files=[stored.id])
    alice.send("first", room="general", files=[stored.id])
    with pytest.raises(NoSuchFile):
        alice.send("again", room="general", files=[stored.id])


def test_an_oversize_file_is_refused_before_its_body(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    alice = clients("alice")
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(4 * MiB + 1)
    with pytest.raises(FileTooLarge, match=r"up to 4\.0 MiB"):
        alice.upload(big)
    # A client that lies at the ticket is refused from its Content-Length, body unsent...
    ticket = alice._request(AskFileTicket(name="small.bin", size=10), FileTicket)
    status, body = _http(files_server, "POST", "/files", ticket.ticket, length=4 * MiB + 1)
    assert status == 413
    assert json.loads(body)["code"] == "file_too_large"
    # ...and a body of unknown length (chunked) is not taken at all.
    ticket = alice._request(AskFileTicket(name="small.bin", size=10), FileTicket)
    status, body = _http(files_server, "POST", "/files", ticket.ticket, length=-1)
    assert status == 411


def test_the_daily_quota_holds(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(web_port=0, files_dir=tmp_path / "files", file_quota_per_day=100_000)
    alice = Client(
        "localhost", server.address[1], ca_file=server.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ).connect()  # fmt: skip
    try:
        _write(tmp_path / "a.bin", 60_000)
        alice.upload(tmp_path / "a.bin")
        with pytest.raises(QuotaExceeded):
            alice.upload(tmp_path / "a.bin")
    finally:
        alice.close()


def test_the_hello_announces_the_file_limits_only_when_files_are_on(
    files_server: RunningServer, running_server: RunningServer
) -> None:
    on = files_server.peer().expect("hello")
    assert on["max_file_size"] == 4 * MiB
    assert on["max_files_per_message"] == 10
    off = running_server.peer().expect("hello")  # no web port: files are off
    assert "max_file_size" not in off
    assert "max_files_per_message" not in off


def test_the_client_refuses_a_file_over_the_hellos_limit_without_asking_for_a_ticket(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    alice = clients("alice")
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(4 * MiB + 1)
    asked: list[object] = []
    ask = alice._request

    def noting(request: Asked, kind: type[T]) -> T:  # the real request, written down
        asked.append(request)
        return ask(request, kind)

    alice._request = noting  # type: ignore[method-assign]
    with pytest.raises(FileTooLarge, match=r"4\.0 MiB; this server takes files of up to 4\.0 MiB"):
        alice.upload(big)
    assert asked == []


def test_files_are_off_without_a_web_port(running_server: RunningServer, tmp_path: Path) -> None:
    alice = Client(
        "localhost", running_server.address[1], ca_file=running_server.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ).connect()  # fmt: skip
    try:
        _write(tmp_path / "a.txt", 10)
        with pytest.raises(FilesDisabled):
            alice.upload(tmp_path / "a.txt")
    finally:
        alice.close()


def test_a_download_never_delays_the_session_s_messages(
    clients: Clients, files_server: RunningServer, tmp_path: Path
) -> None:
    """A download that the client does not read stays in its own connection: the same
    user's session still sends and receives at once."""
    alice, bob = clients("alice"), clients("bob")
    _write(tmp_path / "big.bin", 4 * MiB)
    stored = alice.upload(tmp_path / "big.bin")
    alice.send("", room="general", files=[stored.id])
    ticket = bob._request(AskFileTicket(file=stored.id), FileTicket)
    with _stalled_download(files_server, ticket):
        started = time.monotonic()
        message_id = alice.send("still here", room="general")
        assert _message(bob, id=message_id).body == "still here"
        assert time.monotonic() - started < TIMEOUT


def _tls(server: RunningServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    assert server.web_address is not None
    raw = socket.create_connection(server.web_address, timeout=TIMEOUT)
    return context.wrap_socket(raw, server_hostname="localhost")


def _http(
    server: RunningServer, method: str, path: str, ticket: str, *, length: int | None = None,
    origin: str | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    """One raw request (a body of ``length`` announced but never sent); status and body."""
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", "localhost"), ("Authorization", f"Bearer {ticket}")]
    if origin is not None:
        headers.append(("Origin", origin))
    if length is not None:  # -1: chunked
        headers.append(
            ("Transfer-Encoding", "chunked") if length < 0 else ("Content-Length", str(length))
        )
    with _tls(server) as sock:
        sock.sendall(conn.send(h11.Request(method=method, target=path, headers=headers)) or b"")
        if length is None:
            sock.sendall(conn.send(h11.EndOfMessage()) or b"")
        status, body = 0, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, body


class _stalled_download:
    """A download whose client reads its first bytes and then nothing."""

    def __init__(self, server: RunningServer, ticket: FileTicket) -> None:
        self._server, self._ticket = server, ticket
        self._sock: ssl.SSLSocket | None = None

    def __enter__(self) -> None:
        sock = self._sock = _tls(self._server)
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=self._ticket.path, headers=[
            ("Host", "localhost"), ("Authorization", f"Bearer {self._ticket.ticket}"),
        ])  # fmt: skip
        sock.sendall((conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b""))
        assert sock.recv(100)  # the answer has begun

    def __exit__(self, *exc_info: object) -> None:
        assert self._sock is not None
        self._sock.close()


@pytest.mark.sqlite_only(reason="the default folder sits beside a SQLite database")
def test_files_sit_beside_a_sqlite_database_by_default(files_server: RunningServer) -> None:
    expected = default_files_dir(files_server.db_url)
    assert expected is not None
    assert _files_root(files_server) == expected
    assert os.path.isdir(expected)


@pytest.mark.postgresql_only
def test_postgresql_has_no_files_until_a_folder_is_named(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(web_port=0)
    alice = Client(
        "localhost", server.address[1], ca_file=server.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ).connect()  # fmt: skip
    try:
        _write(tmp_path / "a.txt", 10)
        with pytest.raises(FilesDisabled, match="--files"):
            alice.upload(tmp_path / "a.txt")
    finally:
        alice.close()


def test_uploads_in_flight_are_capped_and_a_cut_off_upload_leaves_nothing(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(
        web_port=0, files_dir=tmp_path / "files", max_uploads_per_user=1,
        transfer_idle_timeout=1.0,
    )  # fmt: skip
    alice = Client(
        "localhost", server.address[1], ca_file=server.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ).connect()  # fmt: skip
    try:
        (tmp_path / "a.txt").write_bytes(b"a" * 1000)
        ticket = alice._request(AskFileTicket(name="slow.bin", size=100_000), FileTicket)
        sock = _tls(server)
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(method="POST", target="/files", headers=[
            ("Host", "localhost"), ("Authorization", f"Bearer {ticket.ticket}"),
            ("Content-Length", "100000"),
        ])  # fmt: skip
        sock.sendall((conn.send(request) or b"") + (conn.send(h11.Data(data=b"x" * 5000)) or b""))
        root = _files_root(server)
        eventually(lambda: any(root.rglob("*.part")), "the upload never began")
        with pytest.raises(TooManyUploads):
            alice.upload(tmp_path / "a.txt")
        # Silent for transfer_idle_timeout: the server ends it and drops what it wrote.
        eventually(lambda: not any(root.rglob("*.part")), "the stalled upload was kept")
        sock.close()
        assert alice.upload(tmp_path / "a.txt").size == 1000  # its place is free again
    finally:
        alice.close()


def test_a_file_request_needs_its_ticket_its_method_and_no_foreign_origin(
    files_server: RunningServer,
) -> None:
    missing = f"/files/{new_file_id()}"
    status, body = _http(files_server, "GET", missing, "not-a-ticket")
    assert (status, json.loads(body)["code"]) == (401, "bad_ticket")
    status, _ = _http(files_server, "DELETE", missing, "x")
    assert status == 405
    status, _ = _http(files_server, "GET", missing, "x", origin="https://evil.example")
    assert status == 403
    status, _ = _http(files_server, "GET", "/files/../../etc/passwd", "x")
    assert status == 401  # the ticket first: nothing about paths is told without one


def test_a_hostile_name_is_stored_and_saved_harmlessly(clients: Clients, tmp_path: Path) -> None:
    alice, bob = clients("alice"), clients("bob")
    (tmp_path / "a.txt").write_bytes(b"payload")
    stored = alice.upload(tmp_path / "a.txt", name="../../.ssh/\x1b[31mevil\nname\u202etxt.exe")
    assert stored.name == "[31mevilnametxt.exe"  # no path, no ESC, newline or bidi override
    message_id = alice.send("", room="general", files=[stored.id])
    body = _message(bob, id=message_id).body
    assert "\x1b" not in body
    assert body.count("\n") == 0  # the one line naming the file stays one line
    out = tmp_path / "bob"
    out.mkdir()
    saved = bob.download(stored.id, out)
    assert saved.parent == out
    assert saved.read_bytes() == b"payload"
