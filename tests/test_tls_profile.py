"""The server's TLS against Mozilla's "modern" profile, and what the client refuses.

sslyze pins a ``cryptography`` older than the one securechat uses, so it gets its own
virtual environment, built once per test session and run as a subprocess. Without a
reachable package index that test is skipped, with pip's error as the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securechat.certs import IssuedCert, init_certs, load_ca
from securechat.client import Client
from securechat.config import HashParams, ServerConfig
from securechat.errors import CertificateError
from securechat.server.runner import build_server
from securechat.server.server import ChatServer
from securechat.store.database import Database, open_database
from securechat.tls import server_context
from tests.conftest import PASSWORD, TIMEOUT, CliRunner, RunningServer

# Mozilla's "modern" configuration (https://ssl-config.mozilla.org/guidelines/5.7.json).
MODERN_CIPHERS = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
}
MODERN_GROUPS = {"X25519", "secp256r1", "secp384r1"}
MODERN_CERT_DAYS = 90
#: The one "modern" finding a private CA must produce: no public trust store knows it.
PRIVATE_CA_FINDINGS = {"certificate_path_validation"}
SSLYZE_REQUIREMENT = "sslyze>=6,<7"  # the JSON layout read below is sslyze 6's


# --- sslyze --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sslyze_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with sslyze installed in its own venv; skips if pip cannot get it."""
    home = tmp_path_factory.mktemp("sslyze-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    try:
        result = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             SSLYZE_REQUIREMENT],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install {SSLYZE_REQUIREMENT} took over 600 s")
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        pytest.skip(f"cannot install {SSLYZE_REQUIREMENT}: {' / '.join(errors[-3:]) or result}")
    return python


def _run_sslyze(python: Path, port: int, out: Path) -> tuple[dict[str, Any], list[str]]:
    """Scan 127.0.0.1:port; the JSON results and the "modern" compliance findings."""
    result = subprocess.run(
        [python, "-W", "ignore", "-m", "sslyze", f"127.0.0.1:{port}", "--sni", "localhost",
         "--mozilla_config=modern", f"--json_out={out}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.exists(), result.stdout + result.stderr
    compliance = result.stdout.partition("COMPLIANCE AGAINST TLS CONFIGURATION")[2]
    assert "modern" in compliance, result.stdout + result.stderr
    findings = re.findall(r"^\s+\* (\w+): (.*)$", compliance, flags=re.MULTILINE)
    if not findings:
        assert result.returncode == 0, result.stdout
    print(compliance)  # the verdict, for docs/security.md and whoever reads the log
    return json.loads(out.read_text()), [f"{name}: {text}" for name, text in findings]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_server_meets_mozilla_modern_profile_per_sslyze(
    sslyze_python: Path, running_server: RunningServer, tmp_path: Path
) -> None:
    report, findings = _run_sslyze(sslyze_python, running_server.address[1], tmp_path / "s.json")
    [server] = report["server_scan_results"]
    assert server["scan_status"] == "COMPLETED", server.get("connectivity_error_trace")
    scan = server["scan_result"]

    for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2"):
        assert scan[f"{version}_cipher_suites"]["result"]["accepted_cipher_suites"] == [], version
    tls13 = scan["tls_1_3_cipher_suites"]["result"]["accepted_cipher_suites"]
    assert {s["cipher_suite"]["name"] for s in tls13} == MODERN_CIPHERS
    assert scan["tls_compression"]["result"]["supports_compression"] is False
    reneg = scan["session_renegotiation"]["result"]
    assert reneg["is_vulnerable_to_client_renegotiation_dos"] is False
    assert reneg["client_renegotiations_success_count"] == 0
    assert scan["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False
    assert scan["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"] is False

    [deployment] = scan["certificate_info"]["result"]["certificate_deployments"]
    leaf = deployment["received_certificate_chain"][0]
    assert leaf["public_key"]["algorithm"] == "ECPublicKey"
    assert leaf["public_key"]["ec_curve_name"] == "secp256r1"
    assert leaf["signature_algorithm_oid"]["name"] == "ecdsa-with-SHA256"
    lifetime = dt.datetime.fromisoformat(leaf["not_valid_after"]) - dt.datetime.fromisoformat(
        leaf["not_valid_before"]
    )
    assert lifetime.days <= MODERN_CERT_DAYS

    # Checked last so that everything above is known to hold even when this fails.
    groups = {c["name"] for c in scan["elliptic_curves"]["result"]["supported_curves"]}
    assert groups <= MODERN_GROUPS, f"key-exchange groups beyond modern: {groups - MODERN_GROUPS}"
    unexpected = [f for f in findings if f.split(":")[0] not in PRIVATE_CA_FINDINGS]
    assert unexpected == [], findings


# --- the client refuses what it must, and says why ----------------------------------------


def _expired_cert(certs_dir: Path, out: Path) -> tuple[Path, Path]:
    """A leaf for localhost from the test CA, valid from 100 to 10 days ago."""
    ca = load_ca(certs_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=100))
        .not_valid_after(now - dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )
    issued = IssuedCert(cert=cert, key=key)
    out.mkdir()
    (out / "server.pem").write_bytes(issued.cert_pem())
    (out / "server.key").write_bytes(issued.key_pem())
    return out / "server.pem", out / "server.key"


@pytest.fixture
def server_with_cert(
    certs_dir: Path, db_url: str, tmp_path: Path
) -> Iterator[Callable[[Path, Path], tuple[str, int]]]:
    """Start real ChatServers presenting the given certificate and key; stop them after.

    Each gets a certificate folder of its own with the test CA's ca.pem but not its key,
    so the server's renewer cannot replace the certificate under test.
    """
    started: list[tuple[ChatServer, Database]] = []

    def start(cert: Path, key: Path) -> tuple[str, int]:
        folder = tmp_path / f"served-{len(started)}"
        folder.mkdir()
        shutil.copy(certs_dir / "ca.pem", folder / "ca.pem")
        shutil.copy(cert, folder / "server.pem")
        shutil.copy(key, folder / "server.key")
        config = ServerConfig(
            host="127.0.0.1",
            port=0,
            certs_dir=folder,
            db_url=db_url,
            hash_params=HashParams.for_tests(),
        )
        tls = server_context(folder / "server.pem", folder / "server.key")
        database = open_database(db_url)
        server = build_server(config, tls=tls, database=database)
        started.append((server, database))
        server.start()
        return server.address

    yield start
    for server, database in started:
        server.shutdown()
        database.dispose()


@pytest.fixture
def expired_server(
    server_with_cert: Callable[[Path, Path], tuple[str, int]], certs_dir: Path, tmp_path: Path
) -> tuple[str, int]:
    """A server presenting an expired certificate signed by the right CA."""
    return server_with_cert(*_expired_cert(certs_dir, tmp_path / "expired"))


def test_client_refuses_an_expired_server_certificate(
    expired_server: tuple[str, int], certs_dir: Path
) -> None:
    client = Client(
        "localhost", expired_server[1], ca_file=certs_dir / "ca.pem", user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    )  # fmt: skip
    with pytest.raises(CertificateError, match=r"certificate has expired.*init-certs --renew"):
        client.connect()


SendCli = Callable[[str, int, Path], subprocess.CompletedProcess[str]]


@pytest.fixture
def send_cli(run_cli: CliRunner, tmp_path: Path) -> SendCli:
    """``securechat send --room general HOST hi`` as alice; give --port and --ca."""

    def run(host: str, port: int, ca_file: Path) -> subprocess.CompletedProcess[str]:
        env = {"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")}
        return run_cli(
            "send", "--port", str(port), "--user", "alice", "--ca", str(ca_file),
            "--room", "general", host, "hi", env=env, timeout=30,
        )  # fmt: skip

    return run


def test_send_refuses_a_server_from_another_ca(
    send_cli: SendCli, running_server: RunningServer, tmp_path: Path
) -> None:
    init_certs(tmp_path / "other", hosts=["localhost"])
    result = send_cli("localhost", running_server.address[1], tmp_path / "other" / "ca.pem")
    assert result.returncode == 1
    assert result.stderr == (
        "securechat: error: the server's certificate is not signed by the CA in "
        f"{tmp_path / 'other' / 'ca.pem'}: get the right ca.pem from your admin\n"
    )


def test_send_refuses_an_expired_server_certificate(
    send_cli: SendCli, expired_server: tuple[str, int], certs_dir: Path
) -> None:
    result = send_cli("localhost", expired_server[1], certs_dir / "ca.pem")
    assert result.returncode == 1
    assert result.stderr.startswith("securechat: error: the server's certificate has expired")
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_send_refuses_a_host_name_the_certificate_does_not_name(
    send_cli: SendCli,
    server_with_cert: Callable[[Path, Path], tuple[str, int]],
    certs_dir: Path,
    tmp_path: Path,
) -> None:
    only_localhost = load_ca(certs_dir).issue_server_cert(["localhost"])
    (tmp_path / "server.pem").write_bytes(only_localhost.cert_pem())
    (tmp_path / "server.key").write_bytes(only_localhost.key_pem())
    _, port = server_with_cert(tmp_path / "server.pem", tmp_path / "server.key")
    result = send_cli("127.0.0.1", port, certs_dir / "ca.pem")
    assert result.returncode == 1, result.stdout
    assert result.stderr == (
        "securechat: error: the server's certificate does not include the name '127.0.0.1': "
        "connect with a name it has, or ask the admin to add it with "
        "`securechat init-certs --renew --host 127.0.0.1` (it keeps the other names)\n"
    )
