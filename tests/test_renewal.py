"""``serve`` renews its own certificate before expiry, without dropping connections."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from securechat.certs import CertificateAuthority, init_certs, load_ca, read_certificate
from securechat.config import HashParams, Limits, ServerConfig
from securechat.files import write_files_atomic
from securechat.server.runner import build_server
from securechat.server.server import ChatServer
from securechat.store.database import open_database
from securechat.tls import server_context
from tests.conftest import PASSWORD, TIMEOUT
from tests.eventually import eventually
from tests.peer import Peer
from tests.serve_process import ServeProcess


@pytest.fixture
def own_certs(tmp_path: Path, certs_dir: Path) -> Path:
    directory = tmp_path / "certs"
    shutil.copytree(certs_dir, directory)
    return directory


@contextlib.contextmanager
def _server(certs: Path, db_url: str, limits: Limits) -> Iterator[ChatServer]:
    config = ServerConfig(
        host="127.0.0.1", port=0, certs_dir=certs, db_url=db_url, limits=limits,
        hash_params=HashParams.for_tests(),
    )  # fmt: skip
    database = open_database(db_url)
    chat = build_server(
        config, tls=server_context(certs / "server.pem", certs / "server.key"), database=database
    )
    chat.start()
    try:
        yield chat
    finally:
        chat.shutdown()
        database.dispose()


@pytest.fixture
def server(own_certs: Path, db_url: str) -> Iterator[ChatServer]:
    with _server(own_certs, db_url, Limits(certificate_check_interval=0.1)) as chat:
        yield chat


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

    def renewed() -> x509.Certificate | None:
        current = read_certificate(path)
        return current if current.serial_number != old.serial_number else None

    return eventually(renewed, "the certificate was renewed")


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
        # The file is written first, then checked and loaded: new handshakes get it soon.
        eventually(
            lambda: _served_certificate(server, ca_file).serial_number == renewed.serial_number,
            "the renewed certificate was served",
        )
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
        eventually(lambda: "init-certs --renew" in caplog.text, "the renewer warned")
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
    eventually(
        lambda: _served_certificate(server, ca_file).serial_number != before.serial_number,
        "the new certificate was served",
    )
    assert _served_certificate(server, ca_file).serial_number == fresh.cert.serial_number


def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.INFO) -> None:
    eventually(
        lambda: any(text in r.getMessage() and r.levelno >= level for r in caplog.records),
        lambda: f"the server logged {text!r}: {caplog.text}",
    )


def test_a_mismatched_key_is_refused_and_the_old_certificate_keeps_serving(
    server: ChatServer, own_certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca_file = own_certs / "ca.pem"
    before = _served_certificate(server, ca_file)
    ca = load_ca(own_certs)
    new, stranger = (ca.issue_server_cert(["localhost", "127.0.0.1"]) for _ in range(2))
    with caplog.at_level(logging.ERROR, logger="securechat.server"):
        write_files_atomic([
            (own_certs / "server.key", stranger.key_pem(), 0o600),
            (own_certs / "server.pem", new.cert_pem(), 0o644),
        ])  # fmt: skip
        _wait_for_log(caplog, "", logging.ERROR)  # the renewer saw the new files and said no
    for _ in range(3):  # every new handshake still gets the old, whole pair
        assert _served_certificate(server, ca_file).serial_number == before.serial_number
    assert "server.key does not match" in caplog.text
    assert "the old one keeps serving" in caplog.text


def test_a_refused_pair_is_retried_soon_and_loaded_once_it_is_whole(
    own_certs: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    limits = Limits(certificate_check_interval=3600, certificate_retry_interval=0.1)
    with _server(own_certs, db_url, limits) as server:
        ca = load_ca(own_certs)
        new, stranger = (ca.issue_server_cert(["localhost", "127.0.0.1"]) for _ in range(2))
        (own_certs / "server.pem").write_bytes(new.cert_pem())
        (own_certs / "server.key").write_bytes(stranger.key_pem())  # a copy not finished yet
        with caplog.at_level(logging.INFO, logger="securechat.server"):
            server.reload_certificates()
            _wait_for_log(caplog, "does not match")
            (own_certs / "server.key").write_bytes(new.key_pem())  # the copy completes
            _wait_for_log(caplog, "loaded the server certificate")
        served = _served_certificate(server, own_certs / "ca.pem")
        assert served.serial_number == new.cert.serial_number


def test_the_ca_reply_offers_a_replaced_ca(server: ChatServer, own_certs: Path) -> None:
    old_ca = (own_certs / "ca.pem").read_text()
    init_certs(own_certs, hosts=["localhost", "127.0.0.1"], force=True)  # a new CA and pair
    new_ca = (own_certs / "ca.pem").read_text()
    assert new_ca != old_ca

    def connected() -> Peer | None:
        try:
            return Peer(server.address, own_certs / "ca.pem")
        except ssl.SSLCertVerificationError:  # still the old pair
            return None

    with eventually(connected, "the new pair was served") as peer:
        peer.send(type="ca", ref="c")
        assert peer.expect("ca", ref="c")["pem"] == new_ca


def test_handshakes_never_fail_while_the_certificate_is_renewed_again_and_again(
    server: ChatServer, own_certs: Path
) -> None:
    stop = threading.Event()

    def renew_repeatedly() -> None:
        while not stop.is_set():
            init_certs(own_certs, hosts=["localhost", "127.0.0.1"], renew=True)

    renewer = threading.Thread(target=renew_repeatedly)
    renewer.start()
    serials = set()
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            serials.add(_served_certificate(server, own_certs / "ca.pem").serial_number)
    finally:
        stop.set()
        renewer.join(TIMEOUT)
    assert len(serials) > 1  # the server did follow the renewals


def test_sighup_makes_serve_load_a_new_pair_at_once(own_certs: Path, db_url: str) -> None:
    server = ServeProcess(own_certs, db_url)  # checks its files hourly: only SIGHUP is fast
    try:
        server.start()
        ca_file = own_certs / "ca.pem"
        fresh = init_certs(own_certs, hosts=["localhost", "127.0.0.1"], renew=True)
        assert fresh.server_not_after > dt.datetime.now(dt.UTC)
        new = read_certificate(own_certs / "server.pem")
        server.signal(signal.SIGHUP)
        server.wait_for(r"received SIGHUP, loading the certificate files")
        server.wait_for(r"loaded the server certificate from .*server\.pem")
        with Peer(server.address, ca_file) as peer:
            der = peer.sock.getpeercert(binary_form=True)
            assert der is not None
            assert x509.load_der_x509_certificate(der).serial_number == new.serial_number
            peer.login("alice", PASSWORD)
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_a_new_key_that_others_can_read_is_refused_like_at_start(
    server: ChatServer, own_certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _served_certificate(server, own_certs / "ca.pem")
    fresh = load_ca(own_certs).issue_server_cert(["localhost", "127.0.0.1"])
    with caplog.at_level(logging.ERROR, logger="securechat.server"):
        write_files_atomic([
            (own_certs / "server.key", fresh.key_pem(), 0o644),
            (own_certs / "server.pem", fresh.cert_pem(), 0o644),
        ])  # fmt: skip
        _wait_for_log(caplog, f"run `chmod 600 {own_certs / 'server.key'}`", logging.ERROR)
    assert _served_certificate(server, own_certs / "ca.pem").serial_number == before.serial_number
