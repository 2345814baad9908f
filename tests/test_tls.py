"""Real TLS handshakes on loopback between tls.server_context() and tls.client_context()."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securechat import certs, tls
from securechat.errors import CertificateError
from tests.conftest import PASSWORD, TIMEOUT, CliRunner
from tests.serve_process import ServeProcess


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    certs.init_certs(directory, hosts=None)
    return directory


@pytest.fixture(scope="module")
def server_ctx(cert_dir: Path) -> ssl.SSLContext:
    return tls.server_context(cert_dir / certs.SERVER_CERT, cert_dir / certs.SERVER_KEY)


@pytest.fixture(scope="module")
def client_ctx(cert_dir: Path) -> ssl.SSLContext:
    return tls.client_context(cert_dir / certs.CA_CERT)


def handshake(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    server_hostname: str,
    address: str = "127.0.0.1",
) -> tuple[str | None, list[OSError]]:
    """Connect once over loopback; return the client's TLS version and the server's errors.

    The client's own failure propagates, after the server thread has finished.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server_errors: list[OSError] = []
    with socket.create_server((address, 0), family=family) as listener:
        listener.settimeout(TIMEOUT)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(TIMEOUT)
                with conn, server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.sendall(b"hello")
            except OSError as exc:  # recorded for the test to assert on
                server_errors.append(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            port = listener.getsockname()[1]
            with (
                socket.create_connection((address, port), timeout=TIMEOUT) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as conn,
            ):
                assert conn.recv(5) == b"hello"
                version = conn.version()
        finally:
            thread.join(TIMEOUT)
            assert not thread.is_alive()
    return version, server_errors


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_client_completes_tls13_handshake_and_verifies_hostname(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str
) -> None:
    version, server_errors = handshake(server_ctx, client_ctx, hostname)
    assert version == "TLSv1.3"
    assert server_errors == []


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_client_verifies_ipv6_loopback_address(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    version, server_errors = handshake(server_ctx, client_ctx, "::1", address="::1")
    assert version == "TLSv1.3"
    assert server_errors == []


def test_client_rejects_certificate_for_another_host(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=["other.example"])
    server_ctx = tls.server_context(tmp_path / certs.SERVER_CERT, tmp_path / certs.SERVER_KEY)
    client_ctx = tls.client_context(tmp_path / certs.CA_CERT)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(server_ctx, client_ctx, "localhost")


def test_client_trusting_another_ca_rejects_server(
    server_ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    certs.init_certs(tmp_path, hosts=None)
    stranger = tls.client_context(tmp_path / certs.CA_CERT)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(server_ctx, stranger, "localhost")


def test_strict_client_rejects_server_cert_without_key_identifiers(tmp_path: Path) -> None:
    ca = certs.CertificateAuthority.create()
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    bare = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    leaf = certs.IssuedCert(cert=bare, key=key)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem())
    (tmp_path / "leaf.key").write_bytes(leaf.key_pem())
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    server_ctx = tls.server_context(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)authority key"):
        handshake(server_ctx, tls.client_context(tmp_path / "ca.pem"), "localhost")


def test_server_refuses_tls12_client(server_ctx: ssl.SSLContext, cert_dir: Path) -> None:
    old_client = ssl.create_default_context(cafile=cert_dir / certs.CA_CERT)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match=r"(?i)protocol version|unsupported protocol"):
        handshake(server_ctx, old_client, "localhost")


def test_client_context_trusts_only_the_given_ca(cert_dir: Path) -> None:
    context = tls.client_context(cert_dir / certs.CA_CERT)
    assert context.cert_store_stats()["x509_ca"] == 1
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_flags & ssl.VERIFY_X509_STRICT


def test_server_context_disables_compression_and_renegotiation(
    server_ctx: ssl.SSLContext,
) -> None:
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert server_ctx.options & ssl.OP_NO_COMPRESSION
    assert server_ctx.options & ssl.OP_NO_RENEGOTIATION


def test_server_context_rejects_key_that_does_not_match(cert_dir: Path) -> None:
    with pytest.raises(CertificateError, match="cannot use"):
        tls.server_context(cert_dir / certs.SERVER_CERT, cert_dir / certs.CA_KEY)


def test_server_context_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot read"):
        tls.server_context(tmp_path / "server.pem", tmp_path / "server.key")


def test_client_context_rejects_missing_or_empty_ca_file(cert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot read"):
        tls.client_context(tmp_path / "ca.pem")
    shutil.copy(cert_dir / certs.SERVER_KEY, tmp_path / "ca.pem")
    with pytest.raises(CertificateError, match="no usable CA certificate"):
        tls.client_context(tmp_path / "ca.pem")


def test_no_tls_secrets_are_logged_even_with_sslkeylogfile_set(
    monkeypatch: pytest.MonkeyPatch,
    run_cli: CliRunner,
    certs_dir: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))  # inherited by both subprocesses
    server = ServeProcess(certs_dir, db_url)
    try:
        server.start()
        sent = run_cli(
            "send", "--room", "general", "--port", str(server.port), "--user", "alice",
            "--ca", str(certs_dir / certs.CA_CERT), "localhost", "no secrets on disk",
            env={"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")},
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    finally:
        server.stop()
    assert not keylog.exists()


def test_every_context_ignores_sslkeylogfile(
    monkeypatch: pytest.MonkeyPatch, cert_dir: Path, tmp_path: Path
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    contexts = [
        tls.server_context(cert_dir / certs.SERVER_CERT, cert_dir / certs.SERVER_KEY),
        tls.client_context(cert_dir / certs.CA_CERT),
        tls.probe_context(),
    ]
    assert [context.keylog_filename for context in contexts] == [None, None, None]
    assert not keylog.exists()


def test_check_server_context_returns_the_certificate_a_client_would_accept(
    server_ctx: ssl.SSLContext, cert_dir: Path
) -> None:
    served = tls.check_server_context(server_ctx, (cert_dir / certs.CA_CERT).read_text())
    on_disk = certs.read_certificate(cert_dir / certs.SERVER_CERT)
    assert x509.load_der_x509_certificate(served) == on_disk


def test_check_server_context_refuses_a_certificate_from_another_ca(
    server_ctx: ssl.SSLContext,
) -> None:
    stranger = certs.CertificateAuthority.create().cert_pem().decode()
    with pytest.raises(CertificateError, match="a client would refuse it"):
        tls.check_server_context(server_ctx, stranger)
