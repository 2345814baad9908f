"""``serve`` renews its own certificate before expiry, without dropping connections."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from securechat.certs import CertificateAuthority, load_ca, read_certificate
from securechat.config import HashParams, Limits, ServerConfig
from securechat.server.server import ChatServer
from securechat.store.database import open_database
from securechat.tls import server_context
from tests.conftest import PASSWORD
from tests.peer import Peer


@pytest.fixture
def own_certs(tmp_path: Path, certs_dir: Path) -> Path:
    directory = tmp_path / "certs"
    shutil.copytree(certs_dir, directory)
    return directory


@pytest.fixture
def server(own_certs: Path, db_url: str) -> Iterator[ChatServer]:
    config = ServerConfig(
        host="127.0.0.1", port=0, certs_dir=own_certs, db_url=db_url,
        limits=Limits(certificate_check_interval=0.1), hash_params=HashParams.for_tests(),
    )  # fmt: skip
    database = open_database(db_url)
    chat = ChatServer(
        config,
        tls=server_context(own_certs / "server.pem", own_certs / "server.key"),
        database=database,
    )
    chat.start()
    yield chat
    chat.shutdown()
    database.dispose()


def _make_short_lived(directory: Path, ca: CertificateAuthority | None = None) -> x509.Certificate:
    """Replace the server certificate with one that expires tomorrow (as if 89 days passed)."""
    ca = ca or load_ca(directory)
    issued = ca.issue_server_cert(["localhost", "127.0.0.1", "::1"], days=1)
    (directory / "server.key").write_bytes(issued.key_pem())
    (directory / "server.pem").write_bytes(issued.cert_pem())
    return issued.cert


def _served_certificate(server: ChatServer, ca_file: Path) -> x509.Certificate:
    with Peer(server.address, ca_file) as peer:
        der = peer.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


def _wait_for_renewal(path: Path, old: x509.Certificate) -> x509.Certificate:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = read_certificate(path)
        if current.serial_number != old.serial_number:
            return current
        time.sleep(0.05)
    raise AssertionError("the certificate was not renewed")


def test_server_renews_expiring_certificate_and_keeps_connections(
    server: ChatServer, own_certs: Path
) -> None:
    ca_file = own_certs / "ca.pem"
    alice = Peer(server.address, ca_file)
    try:
        alice.login("alice", PASSWORD)
        short = _make_short_lived(own_certs)
        renewed = _wait_for_renewal(own_certs / "server.pem", short)
        left = renewed.not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=89) < left <= dt.timedelta(days=90)
        assert _served_certificate(server, ca_file).serial_number == renewed.serial_number
        alice.send(type="ping", ref="still-here")  # the established connection was kept
        assert alice.expect("pong")["ref"] == "still-here"
    finally:
        alice.close()


def test_server_without_ca_key_warns_instead_of_renewing(
    server: ChatServer, own_certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = load_ca(own_certs)
    (own_certs / "ca.key").unlink()
    with caplog.at_level(logging.WARNING, logger="securechat.server"):
        short = _make_short_lived(own_certs, ca)
        deadline = time.monotonic() + 10
        while "init-certs --renew" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "expires" in caplog.text
    assert "securechat init-certs --renew" in caplog.text
    assert read_certificate(own_certs / "server.pem").serial_number == short.serial_number
    assert caplog.text.count("init-certs --renew") == 1  # once a day, not every check


def test_server_loads_a_certificate_replaced_on_disk_without_restart(
    server: ChatServer, own_certs: Path
) -> None:
    ca_file = own_certs / "ca.pem"
    before = _served_certificate(server, ca_file)
    fresh = load_ca(own_certs).issue_server_cert(["localhost", "127.0.0.1", "::1"], days=60)
    (own_certs / "server.key").write_bytes(fresh.key_pem())
    (own_certs / "server.pem").write_bytes(fresh.cert_pem())
    deadline = time.monotonic() + 10
    while _served_certificate(server, ca_file).serial_number == before.serial_number:
        assert time.monotonic() < deadline, "the new certificate was never served"
        time.sleep(0.05)
    assert _served_certificate(server, ca_file).serial_number == fresh.cert.serial_number
