"""Shared files on several nodes (#27): two whole servers on the suite's PostgreSQL and one
shared files folder; a file uploaded through one node is downloaded through the other,
its message delivered there too, and its deletion on one node removes it for both."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from securechat.attachments.layout import file_path
from securechat.client import Client
from securechat.errors import NoSuchFile
from securechat.protocol.messages import Message
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]


def _client(node: RunningServer, user: str) -> Client:
    return Client(
        "localhost", node.address[1], ca_file=node.ca_file, user=user, password=PASSWORD,
        timeout=TIMEOUT,
    ).connect()  # fmt: skip


def test_a_file_uploaded_through_one_node_downloads_through_the_other(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-files"
    node_a = server_factory(web_port=0, files_dir=shared, bus_retry_interval=0.2)
    node_b = server_factory(web_port=0, files_dir=shared, bus_retry_interval=0.2)
    alice, bob = _client(node_a, "alice"), _client(node_b, "bob")
    try:
        data = secrets.token_bytes(700_000)
        (tmp_path / "plan.pdf").write_bytes(data)
        stored = alice.upload(tmp_path / "plan.pdf")
        message_id = alice.send("the plan", room="general", files=[stored.id])
        got = next(
            e for e in bob.events(timeout=TIMEOUT) if isinstance(e, Message) and e.id == message_id
        )
        assert got.files is not None
        assert got.files[0].id == stored.id
        saved = bob.download(stored.id, tmp_path)
        assert saved.read_bytes() == data
        alice.delete(message_id)  # on node A: the file goes from the shared folder
        assert not file_path(shared, stored.id).exists()
        with pytest.raises(NoSuchFile):
            bob.download(stored.id, tmp_path)
    finally:
        alice.close()
        bob.close()
