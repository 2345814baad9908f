"""Which CA the client trusts: trust on first use, CA files, and the pins that remember them.

Theory of operation: a user who has no ``ca.pem`` for a server can still connect safely
once, if they compare a fingerprint. :func:`fetch_ca` opens a *probe* connection that
verifies nothing (the only unverified TLS connection securechat ever makes; it carries no
password and is closed at once), reads ``hello``, asks for the CA with ``ca`` and says
``bye``. :func:`check_offer` then insists that the offered certificate is a CA, that it
signed the certificate the server presented in that same TLS session, and that this
certificate names the host, so a server cannot show one CA and use another. The CLI shows
the fingerprint; only after the user confirms does :func:`pin_ca` store the CA under
``<config dir>/trusted/`` and record it in ``client.json``, and every later connection
verifies against it as if the admin had handed out ``ca.pem``. A different CA later is a
loud refusal (:func:`refusal`), never a question: the user forgets the pin explicitly
(:func:`forget_ca`) once the admin confirms the CA was replaced.

A CA file the admin handed out (``--ca FILE``) ends up the same way: the CLI copies its one
certificate into ``trusted/`` and pins it after the first successful login, so later runs
depend neither on the original file nor on where it lives. Every read of a CA file goes
through :func:`read_ca_file` (exactly one certificate, and a CA) and, when it is pinned, a
fingerprint check; :func:`trusted_context` repeats both on the very certificates the TLS
context loaded, so a file swapped between the check and the use is caught too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import re
import ssl
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from securechat.certs import fingerprint
from securechat.client.escaping import escape
from securechat.client.link import Endpoint, first_answering, nodes, probe
from securechat.client.settings import (
    TrustedCA,
    load_settings,
    save_settings,
    server_key,
)
from securechat.config import DEFAULT_PORT
from securechat.errors import CertificateError, ConfigError, ConnectionLost
from securechat.files import write_atomic
from securechat.protocol.messages import CACertificate, Error, GetCA
from securechat.tls import client_context, probe_context

__all__ = [
    "CandidateCA",
    "changed_pin",
    "check_offer",
    "fetch_ca",
    "forget_ca",
    "pin_ca",
    "pin_file",
    "read_ca_file",
    "refusal",
    "trusted_context",
    "verify_server",
]

TRUSTED_DIR = "trusted"
#: The probe verifies nothing, so this CA file is never read; it only fills the Endpoint.
_NO_CA = Path(os.devnull)
#: Any PEM block holding a certificate ("CERTIFICATE", "TRUSTED CERTIFICATE", ...).
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN [A-Z0-9 ]*CERTIFICATE-----")


class CandidateCA:
    """A CA certificate about to be trusted: offered by a server and checked by
    :func:`check_offer`, or read from a CA file by :func:`read_ca_file`; ``source`` says
    which (the server's ``host:port``, or the file)."""

    def __init__(self, cert: x509.Certificate, source: str) -> None:
        self.cert = cert
        self.source = source
        # Re-encoded: exactly one certificate is pinned, whatever else came with it.
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self.fingerprint = fingerprint(cert)
        self.subject = cert.subject.rfc4514_string()
        self.not_after = cert.not_valid_after_utc


def fetch_ca(host: str, port: int, *, timeout: float, also: Sequence[str] = ()) -> CandidateCA:
    """Ask ``host:port`` for its CA over an unverified probe connection, then check it.
    With ``also`` (more nodes of the service), the first node that answers is asked.

    Raises:
        ConnectionLost: unreachable, or not a securechat server (every node, with ``also``).
        CertificateError: what the server offered cannot be trusted (see check_offer).
    """

    def ask(endpoint: Endpoint) -> CandidateCA:
        stream = endpoint.connect(probe_context(), timeout=timeout)
        answer = probe(stream, label=endpoint.label, timeout=timeout, request=GetCA())
        reply = answer.reply
        assert reply is not None
        if isinstance(reply, Error):
            raise ConnectionLost(
                f"{endpoint.label} did not hand out its CA ({escape(reply.message)}); it may "
                "be an older securechat: get ca.pem from your admin and pass --ca FILE"
            )
        if not isinstance(reply, CACertificate):
            raise ConnectionLost(f"{endpoint.label} answered the CA request with {reply.TYPE!r}")
        return check_offer(
            reply.pem, answer.peer_certificate, host=endpoint.host, label=endpoint.label
        )

    return first_answering(nodes(host, port, also, _NO_CA), ask)


def check_offer(pem: str, leaf_der: bytes, *, host: str, label: str) -> CandidateCA:
    """Check that ``pem`` is a CA in date that signed ``leaf_der``, and the leaf names ``host``.

    Raises:
        CertificateError: one of those is not so; nothing may be trusted.
    """
    something_wrong = (
        "something is wrong (someone may be intercepting the connection): nothing was "
        "trusted; ask your admin for ca.pem"
    )
    try:
        ca = x509.load_pem_x509_certificate(pem.encode("ascii"))
        leaf = x509.load_der_x509_certificate(leaf_der)
    except ValueError as exc:
        raise CertificateError(
            f"{label} sent a certificate that cannot be read: {something_wrong}"
        ) from exc
    if not _is_ca(ca):
        raise CertificateError(f"the certificate {label} offers is not a CA: {something_wrong}")
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            f"the certificate {label} presented is not signed by the CA it offers: "
            f"{something_wrong}"
        ) from exc
    if not _names_host(leaf, host):
        raise CertificateError(
            f"the certificate {label} presented does not include the name {host!r}: "
            f"connect with a name it has, or ask your admin for ca.pem"
        )
    if ca.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise CertificateError(
            f"the CA {label} offers expired on {ca.not_valid_after_utc:%Y-%m-%d}: "
            "ask your admin to create a new one"
        )
    return CandidateCA(ca, label)


def read_ca_file(path: Path) -> CandidateCA:
    """The one CA certificate in the PEM file ``path``.

    Raises:
        ConfigError: the file is missing or unreadable.
        CertificateError: it holds no certificate, several, or one that is not a CA.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"CA file {path} does not exist: get ca.pem from your admin") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read CA file {path}: {exc.strerror or exc}") from exc
    found = len(_PEM_CERTIFICATE.findall(data))
    if found != 1:
        raise CertificateError(
            f"{path} holds {found or 'no'} certificate{'' if found == 1 else 's'}: a CA file "
            "must hold exactly one, the server's CA (ca.pem from your admin)"
        )
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"{path} is not a readable PEM certificate") from exc
    if not _is_ca(cert):
        raise CertificateError(
            f"{path} holds a certificate that is not a CA (the server's own certificate?): "
            "get ca.pem from your admin"
        )
    return CandidateCA(cert, str(path))


def trusted_context(ca_file: Path, *, ca_fingerprint: str | None = None) -> ssl.SSLContext:
    """:func:`client_context` for ``ca_file``, checked to trust exactly one CA, and the one
    with ``ca_fingerprint`` when given.

    Raises:
        CertificateError: the file is unusable, holds other than exactly one certificate,
            or not the certificate with ``ca_fingerprint``.
    """
    context = client_context(ca_file)
    loaded = context.get_ca_certs(binary_form=True)  # what the context trusts, CAs only
    count = context.cert_store_stats()["x509"]  # every certificate, CA or not
    if count != 1 or len(loaded) != 1:
        raise CertificateError(
            f"{ca_file} must hold exactly one certificate, the server's CA; it holds {count}"
        )
    actual = fingerprint(x509.load_der_x509_certificate(loaded[0]))
    if ca_fingerprint is not None and actual != ca_fingerprint:
        raise CertificateError(
            f"{ca_file} holds the CA with fingerprint {actual}, not the expected "
            f"{ca_fingerprint}: was it changed after it was checked?"
        )
    return context


def verify_server(
    host: str, port: int, ca_file: Path, *, ca_fingerprint: str | None, timeout: float,
    also: Sequence[str] = (),
) -> None:  # fmt: skip
    """Complete a verified TLS handshake and say ``bye``: a check before asking a password.
    With ``also`` (more nodes of the service), the first node that answers is checked.

    Raises:
        CertificateError: the CA file is not the one expected (see trusted_context), or the
            server's certificate does not verify (``WrongCA``: another CA).
        ConnectionLost: unreachable, or not a securechat server (every node, with ``also``).
    """
    context = trusted_context(ca_file, ca_fingerprint=ca_fingerprint)

    def check(endpoint: Endpoint) -> None:
        stream = endpoint.connect(context, timeout=timeout)
        probe(stream, label=endpoint.label, timeout=timeout)

    first_answering(nodes(host, port, also, ca_file), check)


def pin_file(config_dir: Path, host: str, port: int) -> Path:
    """Where the CA pinned for ``host:port`` lives; quoting keeps IPv6 and odd names safe."""
    return config_dir / TRUSTED_DIR / f"{quote(host.lower(), safe='')}-{port}.pem"


def pin_ca(settings_path: Path, host: str, port: int, offered: CandidateCA) -> TrustedCA:
    """Store ``offered`` as the CA for ``host:port`` (0644, atomically) and record it.

    A pin already there for ``host:port`` is replaced.

    Raises:
        ConfigError: the file or the settings cannot be written.
    """
    path = pin_file(settings_path.parent, host, port)
    _write_atomic(path, offered.pem.encode("ascii"))
    pin = TrustedCA(path, offered.fingerprint, dt.datetime.now(dt.UTC).replace(microsecond=0))
    settings = load_settings(settings_path)
    trusted = {**settings.trusted, server_key(host, port): pin}
    save_settings(settings_path, dataclasses.replace(settings, trusted=trusted))
    return pin


def forget_ca(settings_path: Path, host: str, port: int) -> TrustedCA:
    """Remove the CA pinned for ``host:port`` (file and record); returns what was forgotten.

    Raises:
        ConfigError: nothing is pinned for that server, or the settings cannot be written.
    """
    settings = load_settings(settings_path)
    trusted = dict(settings.trusted)
    pin = trusted.pop(server_key(host, port), None)
    if pin is None:
        pinned = ", ".join(sorted(settings.trusted)) or "none"
        raise ConfigError(f"no CA is pinned for {server_key(host, port)} (pinned: {pinned})")
    remembered_ca = None if settings.ca_file == pin.ca_file else settings.ca_file
    save_settings(
        settings_path, dataclasses.replace(settings, trusted=trusted, ca_file=remembered_ca)
    )
    try:
        pin.ca_file.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot remove {pin.ca_file}: {exc.strerror or exc}") from exc
    return pin


def refusal(pin: TrustedCA, host: str, port: int) -> str:
    """The loud, several-line refusal when a pinned server presents another CA's certificate."""
    label = server_key(host, port)
    port_option = "" if port == DEFAULT_PORT else f" --port {port}"
    return "\n".join(
        [
            f"REFUSING TO CONNECT to {label}: its certificate is from a DIFFERENT CA",
            f"  than the one you trusted for it on {pin.trusted_on:%Y-%m-%d}",
            f"  (fingerprint {pin.fingerprint}).",
            "  Someone may be intercepting the connection, or the admin re-created the CA.",
            "  Do not continue and do not type your password there. Ask your admin whether the",
            "  CA was replaced; `securechat fingerprint` on the server shows the current one.",
            "  Only if it really was replaced, forget the old one and connect again to compare:",
            f"      securechat connect {host}{port_option} --forget-ca",
        ]
    )


def changed_pin(pin: TrustedCA, host: str, port: int, found: CandidateCA) -> str:
    """The refusal when the file of a pinned CA no longer holds that CA."""
    port_option = "" if port == DEFAULT_PORT else f" --port {port}"
    return (
        f"{pin.ca_file}, the CA you trusted for {server_key(host, port)} on "
        f"{pin.trusted_on:%Y-%m-%d} (fingerprint {pin.fingerprint}), now holds another "
        f"certificate (fingerprint {found.fingerprint}): something changed it. Do not type "
        f"your password; run `securechat connect {host}{port_option} --forget-ca`, then "
        "connect again and compare the fingerprint with your admin's"
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _names_host(cert: x509.Certificate, host: str) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        wanted = host.lower().rstrip(".")
        return any(name.lower() == wanted for name in names.get_values_for_type(x509.DNSName))
    return address in names.get_values_for_type(x509.IPAddress)


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, data, mode=0o644)  # a CA certificate is public
    except OSError as exc:
        raise ConfigError(f"cannot save the trusted CA to {path}: {exc.strerror or exc}") from exc
