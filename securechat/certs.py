"""The private CA and the server certificate, made with ``cryptography``.

securechat trusts no public CA. ``init_certs`` makes a small private CA (ca.pem, ca.key) and
a server certificate signed by it (server.pem, server.key); clients get ca.pem only and check
the server's host name against the certificate's SANs. Keys are ECDSA P-256. Every file is
written to a temporary file in the same folder and renamed into place, so a crash leaves the
old file or the whole new one; all new files are written before the first rename, so a
certificate and its key change within microseconds of each other; key files are created
0600, never readable by others even for a moment. The shape follows trustme:
``CertificateAuthority.create()`` then ``ca.issue_server_cert(hosts)``. The default SANs
(this machine's names and addresses) come from :mod:`securechat.hostnames`. cryptography
and OS errors become :class:`CertificateError`. Checking the files an installation holds
(for ``serve``, the renewer and ``doctor``) is cert_files.py's, on this module's readers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securechat.cert_layout import CA_CERT as CA_CERT
from securechat.cert_layout import CA_DAYS as CA_DAYS
from securechat.cert_layout import CA_DER as CA_DER
from securechat.cert_layout import CA_KEY as CA_KEY
from securechat.cert_layout import SERVER_CERT as SERVER_CERT
from securechat.cert_layout import SERVER_DAYS as SERVER_DAYS
from securechat.cert_layout import SERVER_KEY as SERVER_KEY
from securechat.errors import CertificateError, ConfigError
from securechat.files import write_files_atomic
from securechat.hostnames import default_hosts, is_dns_name

#: Certificates start slightly in the past so a client whose clock lags still accepts them.
_BACKDATE = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedCert:
    """A leaf certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _key_pem(self.key)


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A private CA that can sign server certificates (pathlen 0: no intermediates)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "securechat CA", days: int = CA_DAYS) -> Self:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securechat"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            _builder(name, name, key.public_key(), _not_after(days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert=cert, key=key)

    def issue_server_cert(self, hosts: Sequence[str], days: int = SERVER_DAYS) -> IssuedCert:
        """Sign a TLS server certificate for ``hosts`` (names and IP addresses).

        It never outlives the CA. Raises:
            ConfigError: ``hosts`` is empty or holds something that is neither name nor IP.
        """
        if not hosts:
            raise ConfigError("a server certificate needs at least one host name or IP address")
        names = list(dict.fromkeys(_general_name(host) for host in hosts))
        key = ec.generate_private_key(ec.SECP256R1())
        common_name = hosts[0] if len(hosts[0]) <= 64 else "securechat server"
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        not_after = min(_not_after(days), self.cert.not_valid_after_utc)
        cert = (
            _builder(subject, self.cert.subject, key.public_key(), not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCert(cert=cert, key=key)

    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _key_pem(self.key)


@dataclasses.dataclass(frozen=True, slots=True)
class CertReport:
    """What ``init_certs`` did, for the CLI to print."""

    directory: Path
    written: tuple[Path, ...]
    renewed: bool
    sans: tuple[str, ...]
    #: On renewal, the names the new certificate has that the old one lacked, and back.
    added: tuple[str, ...]
    removed: tuple[str, ...]
    ca_not_after: dt.datetime
    server_not_after: dt.datetime
    ca_fingerprint: str

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_CERT

    @property
    def ca_der_file(self) -> Path:
        return self.directory / CA_DER


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated uppercase hex, as openssl prints it."""
    return ":".join(f"{byte:02X}" for byte in cert.fingerprint(hashes.SHA256()))


def init_certs(
    directory: Path,
    *,
    hosts: Sequence[str] | None,
    days: int = SERVER_DAYS,
    force: bool = False,
    renew: bool = False,
    drop: Sequence[str] = (),
) -> CertReport:
    """Create a CA and a server certificate in ``directory``; with ``renew``, only the latter.

    A new certificate names ``hosts`` (``None``: :func:`securechat.hostnames.default_hosts`).
    A renewed one keeps every name of the current server.pem, adds ``hosts`` and removes
    only ``drop``: a renewal that silently lost a name would cut off everyone using it at
    the next reload. Raises:
        CertificateError: files exist without ``force``, ``renew`` finds no usable CA, or
            neither server.pem nor ``hosts`` says what to name, or a file cannot be written.
        ConfigError: bad ``hosts``, ``drop`` or ``days``, ``force`` together with ``renew``,
            or ``drop`` without ``renew``.
    """
    if force and renew:
        raise ConfigError("--force and --renew cannot be combined: --force replaces the CA")
    if drop and not renew:
        raise ConfigError("--drop-host goes with --renew: a new certificate names only its --host")
    if days < 1:
        raise ConfigError(f"--days must be at least 1, not {days}")
    ca = _existing_ca(directory) if renew else _new_ca(directory, force=force)
    before = _current_names(directory, hosts) if renew else []
    if before or drop:
        names = _renewed_names(before, hosts or [], drop)
    else:
        names = list(hosts or default_hosts())
    server = ca.issue_server_cert(names, days)
    files: list[tuple[str, bytes, int]] = []
    if not renew:
        files += [(CA_KEY, ca.key_pem(), 0o600), (CA_CERT, ca.cert_pem(), 0o644)]
        files += [(CA_DER, ca.cert.public_bytes(serialization.Encoding.DER), 0o644)]
    files += [(SERVER_KEY, server.key_pem(), 0o600), (SERVER_CERT, server.cert_pem(), 0o644)]
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertificateError(f"cannot create {directory}: {exc.strerror}") from exc
    _write_files(directory, files)
    issued = sans(server.cert)
    return CertReport(
        directory=directory,
        written=tuple(directory / name for name, _, _ in files),
        renewed=renew,
        sans=tuple(issued),
        added=tuple(name for name in issued if before and name not in before),
        removed=tuple(name for name in before if name not in issued),
        ca_not_after=ca.cert.not_valid_after_utc,
        server_not_after=server.cert.not_valid_after_utc,
        ca_fingerprint=ca.fingerprint(),
    )


def load_ca(directory: Path) -> CertificateAuthority:
    """Load ca.pem and ca.key. Raises CertificateError if missing, unreadable or mismatched."""
    cert = read_certificate(directory / CA_CERT)
    key = read_key(directory / CA_KEY)
    check_pair(cert, key, directory / CA_CERT, directory / CA_KEY)
    return CertificateAuthority(cert=cert, key=key)


def read_certificate(path: Path) -> x509.Certificate:
    """Load one PEM certificate. Raises CertificateError if missing, unreadable or not PEM."""
    try:
        return x509.load_pem_x509_certificate(read_file(path))
    except ValueError as exc:
        raise CertificateError(f"{path} is not a PEM certificate") from exc


def _general_name(host: str) -> x509.GeneralName:
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError as exc:
        name = host.strip().rstrip(".").lower()
        if not is_dns_name(name):
            raise ConfigError(f"{host!r} is neither a host name nor an IP address") from exc
        return x509.DNSName(name)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ConfigError(f"{host!r}: scoped IPv6 addresses cannot go in a certificate")
    return x509.IPAddress(address)


def sans(cert: x509.Certificate) -> list[str]:
    """The host names and IP addresses a certificate names (its subjectAltName), in order."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in names if isinstance(n, x509.DNSName | x509.IPAddress)]


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - _BACKDATE)
        .not_valid_after(not_after)
    )


def _not_after(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_ca(directory: Path, *, force: bool) -> CertificateAuthority:
    for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY):  # a lone ca.crt is overwritten
        if not force and (directory / name).exists():
            raise CertificateError(
                f"{directory / name} already exists; use --renew to re-issue only the server "
                "certificate, or --force to replace the CA too (clients must then get the new ca.pem)"
            )
    return CertificateAuthority.create()


def _current_names(directory: Path, hosts: Sequence[str] | None) -> list[str]:
    """The names of the server certificate being renewed ([] if there is none yet)."""
    path = directory / SERVER_CERT
    if not path.exists():
        return []
    try:
        return sans(read_certificate(path))
    except CertificateError as exc:
        if hosts:
            return []  # the admin names every host; the broken file is replaced
        raise CertificateError(
            f"cannot read the names to keep from {path} ({exc.message}); "
            "name every host with --host"
        ) from exc


def _renewed_names(before: list[str], add: Sequence[str], drop: Sequence[str]) -> list[str]:
    """``before`` plus ``add`` minus ``drop``, in that order, compared as certificates do."""
    kept = {_canonical(name): name for name in before}
    for name in drop:
        if kept.pop(_canonical(name), None) is None:
            raise ConfigError(
                f"the certificate does not name {name!r} (it names {', '.join(before)})"
            )
    for name in add:
        kept.setdefault(_canonical(name), name)
    return list(kept.values())


def _canonical(host: str) -> str:
    """One spelling per certificate name: ``Chat.LAN.`` and ``chat.lan`` are the same SAN."""
    return str(_general_name(host).value)


def _existing_ca(directory: Path) -> CertificateAuthority:
    for name in (CA_CERT, CA_KEY):
        if not (directory / name).exists():
            raise CertificateError(
                f"--renew needs the existing CA but {directory / name} is missing; "
                f"run `securechat init-certs --dir {directory}` first"
            )
    ca = load_ca(directory)
    if ca.cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise CertificateError(
            f"the CA in {directory} has expired; use --force to make a new one "
            "(clients must then get the new ca.pem)"
        )
    return ca


def read_file(path: Path) -> bytes:
    """A certificate or key file's bytes. Raises CertificateError naming the fix."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise CertificateError(
            f"{path} not found; run `securechat init-certs --dir {path.parent}`"
        ) from exc
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from exc


def read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load one unencrypted PEM ECDSA key. Raises CertificateError otherwise."""
    try:
        key = serialization.load_pem_private_key(read_file(path), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path} is not an ECDSA key")
    return key


def check_pair(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_file: Path, key_file: Path
) -> None:
    """Raises CertificateError unless ``key`` is the private half of ``cert``."""
    if cert.public_key() != key.public_key():
        raise CertificateError(f"{key_file} does not match {cert_file}")


def _write_files(directory: Path, files: list[tuple[str, bytes, int]]) -> None:
    """Write every file, then rename them all (see files.py)."""
    try:
        write_files_atomic([(directory / name, data, mode) for name, data, mode in files])
    except OSError as exc:
        raise CertificateError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
