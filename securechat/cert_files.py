"""The certificate files of an installation, read and checked for ``serve``, the renewer and ``doctor``.

certs.py issues; this module answers "can the server start with these files?": the
folder holds certificates at all (else :class:`CertificatesMissing`, which says where it
looked), server.key matches server.pem, server.pem was issued by ca.pem and is in date,
no private key is readable by others, and a company's certificate chain leads to the CA
clients trust. Every failure is one line naming the command that fixes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from securechat.certs import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    check_pair,
    fingerprint,
    read_certificate,
    read_file,
    read_key,
    sans,
)
from securechat.errors import CertificateError, CertificatesMissing


@dataclasses.dataclass(frozen=True, slots=True)
class ServerCertInfo:
    """What the server logs about its certificate on start."""

    sans: list[str]
    not_after: dt.datetime
    fingerprint: str


@dataclasses.dataclass(frozen=True, slots=True)
class ServerCertFiles:
    """Server files that exist, match each other and are in date (see check_server_files)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def server_cert_info(cert_file: Path) -> ServerCertInfo:
    """The SANs, expiry and fingerprint of a certificate, for the server to log on start."""
    cert = read_certificate(cert_file)
    return ServerCertInfo(sans(cert), cert.not_valid_after_utc, fingerprint(cert))


def check_server_files(directory: Path) -> ServerCertFiles:
    """Check that the server can start with the files in ``directory``.

    Raises CertificateError (one line, with the command that fixes it) when the folder or a
    file is missing or unreadable, server.key does not match server.pem, server.pem was not
    issued by ca.pem, or server.pem has expired.
    """
    _require_certs(directory)
    files = ServerCertFiles(directory / SERVER_CERT, directory / SERVER_KEY, directory / CA_CERT)
    ca = read_certificate(files.ca_file)
    cert = read_certificate(files.cert_file)
    check_pair(cert, read_key(files.key_file), files.cert_file, files.key_file)
    renew = f"run `securechat init-certs --renew --dir {directory}`"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            f"{files.cert_file} was not issued by {files.ca_file}; {renew}"
        ) from exc
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        expired = f"{cert.not_valid_after_utc:%Y-%m-%d}"
        raise CertificateError(f"{files.cert_file} expired on {expired}; {renew}")
    return files


def ca_fingerprint(directory: Path) -> str:
    """The fingerprint of ca.pem in ``directory``, for ``securechat fingerprint``.

    Raises:
        CertificateError: ca.pem is missing (CertificatesMissing: no certificates there).
    """
    _require_certs(directory)
    return fingerprint(read_certificate(directory / CA_CERT))


def _require_certs(directory: Path) -> None:
    if not directory.is_dir() or not any(
        (directory / name).exists() for name in (CA_CERT, SERVER_CERT)
    ):
        raise _missing(directory)


def _missing(directory: Path) -> CertificatesMissing:
    """Most often the right certificates are elsewhere (another folder, ``sudo`` without
    the environment): making new ones there would be a second CA nobody trusts, so that
    comes last."""
    where = directory.absolute()
    relative = "" if directory.is_absolute() else f", relative to the current folder {Path.cwd()}"
    return CertificatesMissing(
        f"no certificates in {where} (the --certs folder{relative}): if they are elsewhere, "
        "pass --certs DIR or SECURECHAT_CERTS, or run from the folder that holds certs/; "
        f"only for a new installation, make them with `securechat init-certs --dir {where}`"
    )


def exposed_keys(directory: Path, *more: Path) -> list[tuple[Path, int]]:
    """server.key and ca.key (and ``more`` keys), where present, that group or others may
    use, with their modes."""
    found = []
    for key in dict.fromkeys((directory / SERVER_KEY, directory / CA_KEY, *more)):
        try:
            mode = stat.S_IMODE(key.stat().st_mode)
        except FileNotFoundError:
            continue  # ca.key may be kept offline; a missing server.key is reported elsewhere
        except OSError as exc:
            raise CertificateError(f"cannot read {key}: {exc.strerror}") from exc
        if mode & 0o077:
            found.append((key, mode))
    return found


def check_key_modes(directory: Path, *more: Path) -> None:
    """Refuse private keys that other users can read: they would let them pose as the server.

    Raises:
        CertificateError: the first such key, with the ``chmod`` that fixes it.
    """
    exposed = exposed_keys(directory, *more)
    if exposed:
        key, mode = exposed[0]
        raise CertificateError(
            f"{key} can be read by other users (mode {mode:04o}); run `chmod 600 {key}`"
        )


def check_server_pair(cert_file: Path, key_file: Path, ca_file: Path) -> ServerCertFiles:
    """Check a certificate and key from elsewhere (a company CA) as check_server_files does.

    ``cert_file`` may hold intermediates after the server certificate; the chain must lead
    to ``ca_file`` (the CA clients trust) and name what the certificate is for.

    Raises:
        CertificateError: a file is missing or unreadable, the key does not match, the
            chain does not verify against ``ca_file``, or the certificate has expired.
    """
    try:
        chain = x509.load_pem_x509_certificates(read_file(cert_file))
    except ValueError as exc:
        raise CertificateError(f"{cert_file} is not a PEM certificate (chain)") from exc
    leaf, ca = chain[0], read_certificate(ca_file)
    check_pair(leaf, read_key(key_file), cert_file, key_file)
    if leaf.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise CertificateError(f"{cert_file} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    names = sans(leaf)
    if not names:
        raise CertificateError(f"{cert_file} names no host (no subjectAltName)")
    subject: x509.DNSName | x509.IPAddress
    try:
        subject = x509.IPAddress(ipaddress.ip_address(names[0]))
    except ValueError:
        subject = x509.DNSName(names[0])
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(subject)
    try:
        verifier.verify(leaf, chain[1:])
    except VerificationError as exc:
        raise CertificateError(
            f"{cert_file} does not verify against {ca_file} (put the CA that issued it "
            f"there, and any intermediates in {cert_file.name} after the certificate): {exc}"
        ) from exc
    return ServerCertFiles(cert_file, key_file, ca_file)


def read_ca_pem(directory: Path) -> str:
    """The CA certificate in PEM form, as the server offers it to clients (never a key).

    Raises:
        CertificateError: ca.pem is missing or is not a certificate.
    """
    certificate = read_certificate(directory / CA_CERT)
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
