"""``serve --cert/--key``: a certificate from the company's own CA, checked like ours, and
``ca.crt``, the DER copy of the CA that browsers and operating systems import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securechat import cert_files, certs
from securechat.errors import CertificateError


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool,
    pathlen: int | None = None, sans: tuple[str, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(*chain: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


def _key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def company(tmp_path: Path) -> Path:
    """A company root, an intermediate, and a server certificate with the chain in one file."""
    root, root_key = _cert("Example Corp Root", None, ca=True, pathlen=1)
    middle, middle_key = _cert("Example Corp Issuing", (root.subject, root_key), ca=True, pathlen=0)
    leaf, leaf_key = _cert(
        "chat.corp.example", (middle.subject, middle_key), ca=False, sans=("chat.corp.example",)
    )
    (tmp_path / "ca.pem").write_bytes(_pem(root))
    (tmp_path / "chat.pem").write_bytes(_pem(leaf, middle))
    (tmp_path / "chat.key").write_bytes(_key(leaf_key))
    (tmp_path / "leaf-only.pem").write_bytes(_pem(leaf))
    return tmp_path


def test_check_server_pair_accepts_a_company_chain(company: Path) -> None:
    files = cert_files.check_server_pair(
        company / "chat.pem", company / "chat.key", company / "ca.pem"
    )
    assert files.cert_file == company / "chat.pem"


def test_check_server_pair_accepts_what_init_certs_made(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=["localhost"])
    cert_files.check_server_pair(
        tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    )


def test_check_server_pair_needs_the_intermediate_in_the_file(company: Path) -> None:
    with pytest.raises(CertificateError, match="does not verify against"):
        cert_files.check_server_pair(
            company / "leaf-only.pem", company / "chat.key", company / "ca.pem"
        )


def test_check_server_pair_refuses_another_ca_and_a_foreign_key(
    company: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ours = tmp_path_factory.mktemp("ours")
    certs.init_certs(ours, hosts=["localhost"])
    with pytest.raises(CertificateError, match="does not verify against"):
        cert_files.check_server_pair(company / "chat.pem", company / "chat.key", ours / "ca.pem")
    with pytest.raises(CertificateError, match="does not match"):
        cert_files.check_server_pair(company / "chat.pem", ours / "server.key", company / "ca.pem")


def test_init_certs_writes_the_ca_as_der_for_double_click_import(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=["localhost"])
    der = x509.load_der_x509_certificate((tmp_path / certs.CA_DER).read_bytes())
    assert der == certs.read_certificate(tmp_path / certs.CA_CERT)
