"""A shared file's life after its upload (#27): its thumbnail, an edit of its message, search
by its name, and what ``deluser`` keeps and removes. Real server, real TLS on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from securechat.accounts import Accounts
from securechat.attachments.layout import file_path, thumbnail_path
from securechat.client import Client
from securechat.config import HashParams
from securechat.errors import NoSuchFile
from securechat.protocol.files import AskFileTicket, FileTicket
from securechat.store.attachments import file_lines
from securechat.store.database import open_database
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.test_attachments_thumbnails import encoded, png_bomb


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0)


@pytest.fixture
def alice(server: RunningServer) -> Iterator[Client]:
    client = _client(server, "alice")
    yield client
    client.close()


def _client(server: RunningServer, user: str) -> Client:
    return Client(
        "localhost", server.address[1], ca_file=server.ca_file, user=user, password=PASSWORD,
        timeout=TIMEOUT,
    ).connect()  # fmt: skip


def _root(server: RunningServer) -> Path:
    storage = server.server.parts.files._storage
    assert storage is not None
    return storage.root


def test_an_image_gets_a_thumbnail_and_its_size(
    server: RunningServer, alice: Client, tmp_path: Path
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(out, "PNG")
    (tmp_path / "shot.png").write_bytes(out.getvalue())
    stored = alice.upload(tmp_path / "shot.png")
    assert stored.type == "image/png"
    message_id = alice.send("look", room="general", files=[stored.id])
    root = _root(server)
    eventually(lambda: thumbnail_path(root, stored.id).exists(), "no thumbnail was made")

    def described() -> bool:
        [message] = [m for m in alice.history(room="general").messages if m.id == message_id]
        file = (message.files or ())[0]
        return (file.width, file.height, file.thumbnail) == (640, 480, True)

    eventually(described, "the message never learnt its image's size")
    ticket = alice._request(AskFileTicket(file=stored.id, thumbnail=True), FileTicket)
    assert ticket.path == f"/files/{stored.id}/thumbnail"
    assert alice.download(stored.id, tmp_path / "full.png").read_bytes() == out.getvalue()


def test_a_png_bomb_and_a_truncated_jpeg_get_no_thumbnail_stay_downloadable_and_chat_goes_on(
    server: RunningServer, alice: Client, tmp_path: Path
) -> None:
    """Through the real server: the thumbnail worker refuses both, and chat is answered."""
    bomb = png_bomb(20_000, 20_000)  # 400 megapixels in about 50 KB
    assert len(bomb) < 100_000
    noise = Image.frombytes("RGB", (256, 256), bytes(range(256)) * 768)
    jpeg = encoded(noise, "JPEG")
    images = {"bomb.png": bomb, "cut.jpg": jpeg[: len(jpeg) // 2], "fine.png": _png(64, 48)}
    for name, data in images.items():
        (tmp_path / name).write_bytes(data)
    bob = server.login("bob")
    stored = {name: alice.upload(tmp_path / name) for name in images}  # queued in this order
    assert stored["bomb.png"].type == "image/png"
    message_id = alice.send("three", room="general", files=[f.id for f in stored.values()])
    bob.expect("message", body=f"three\n{file_lines(stored.values())}")  # chat meanwhile
    alice.send("still here", room="general")
    bob.expect("message", body="still here")
    root = _root(server)

    def previews() -> dict[str, bool | None] | None:
        [message] = [m for m in alice.history(room="general").messages if m.id == message_id]
        shown = {file.name: file.thumbnail for file in message.files or ()}
        return shown if shown["fine.png"] else None

    # The worker takes files in the order queued: once the last has its thumbnail (on disk,
    # then recorded with the message), the two before it were decided.
    assert eventually(previews, "no thumbnail") == {
        "bomb.png": None, "cut.jpg": None, "fine.png": True,
    }  # fmt: skip
    for name in ("bomb.png", "cut.jpg"):
        assert not thumbnail_path(root, stored[name].id).exists()
        with pytest.raises(NoSuchFile):
            alice._request(AskFileTicket(file=stored[name].id, thumbnail=True), FileTicket)
        assert (
            alice.download(stored[name].id, tmp_path / f"got-{name}").read_bytes() == images[name]
        )
    assert alice.send("after the thumbnails", room="general") > message_id


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_an_edit_keeps_the_file_lines_and_search_finds_the_file_name(
    alice: Client, tmp_path: Path
) -> None:
    (tmp_path / "quarterly-figures.ods").write_bytes(b"x" * 100)
    stored = alice.upload(tmp_path / "quarterly-figures.ods")
    message_id = alice.send("draft", room="general", files=[stored.id])
    alice.edit(message_id, "final")
    [message] = [m for m in alice.history(room="general").messages if m.id == message_id]
    assert message.body == f"final\n[file: quarterly-figures.ods, 100 B, id {stored.id}]"
    found = alice.search("quarterly-figures")
    assert [m.id for m in found.messages] == [message_id]


def test_deluser_keeps_the_files_of_messages_and_removes_uploads_never_sent(
    server: RunningServer, alice: Client, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"kept")
    sent = alice.upload(tmp_path / "a.txt")
    alice.send("", room="general", files=[sent.id])
    unsent = alice.upload(tmp_path / "a.txt")
    alice.close()
    database = open_database(server.db_url)
    try:
        Accounts(database, hash_params=HashParams.for_tests()).delete("alice")
    finally:
        database.dispose()
    assert server.server.parts.files.collect() == 1
    root = _root(server)
    assert file_path(root, sent.id).exists()
    assert not file_path(root, unsent.id).exists()
    bob = _client(server, "bob")
    try:
        assert bob.download(sent.id, tmp_path / "got.txt").read_bytes() == b"kept"
        with pytest.raises(NoSuchFile):
            bob.download(unsent.id, tmp_path)
    finally:
        bob.close()
