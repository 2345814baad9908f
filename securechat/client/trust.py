"""Trust on first use: fetch a server's CA, check it, let the user compare it, pin it.

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
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import os
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from securechat.certs import fingerprint
from securechat.client.escaping import escape
from securechat.client.link import Endpoint, Greeting, ask, greet
from securechat.client.settings import (
    TrustedCA,
    load_settings,
    save_settings,
    server_key,
)
from securechat.config import DEFAULT_PORT
from securechat.errors import CertificateError, ConfigError, ConnectionLost
from securechat.files import write_atomic
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import Bye, CACertificate, Error, GetCA, encode
from securechat.tls import client_context, probe_context

__all__ = [
    "OfferedCA",
    "check_offer",
    "fetch_ca",
    "forget_ca",
    "pin_ca",
    "pin_file",
    "refusal",
    "verify_server",
]

TRUSTED_DIR = "trusted"
#: The probe verifies nothing, so this CA file is never read; it only fills the Endpoint.
_NO_CA = Path(os.devnull)


class OfferedCA:
    """A CA certificate a server offered, already checked by :func:`check_offer`."""

    def __init__(self, cert: x509.Certificate) -> None:
        self.cert = cert
        # Re-encoded: exactly one certificate is pinned, whatever else came with it.
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self.fingerprint = fingerprint(cert)
        self.subject = cert.subject.rfc4514_string()
        self.not_after = cert.not_valid_after_utc


def fetch_ca(host: str, port: int, *, timeout: float) -> OfferedCA:
    """Ask ``host:port`` for its CA over an unverified probe connection, then check it.

    Raises:
        ConnectionLost: unreachable, or not a securechat server.
        CertificateError: what the server offered cannot be trusted (see check_offer).
    """
    endpoint = Endpoint(host, port, _NO_CA)
    greeting = greet(endpoint, probe_context(), timeout=timeout)
    try:
        reply = ask(greeting, GetCA())
        _say_bye(greeting)
    finally:
        greeting.stream.close()
    if isinstance(reply, Error):
        raise ConnectionLost(
            f"{endpoint.label} did not hand out its CA ({escape(reply.message)}); it may be an "
            "older securechat: get ca.pem from your admin and pass --ca FILE"
        )
    if not isinstance(reply, CACertificate):
        raise ConnectionLost(f"{endpoint.label} answered the CA request with {reply.TYPE!r}")
    return check_offer(reply.pem, greeting.peer_cert, host=host, label=endpoint.label)


def check_offer(pem: str, leaf_der: bytes, *, host: str, label: str) -> OfferedCA:
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
    return OfferedCA(ca)


def verify_server(host: str, port: int, ca_file: Path, *, timeout: float) -> None:
    """Complete a verified TLS handshake and say ``bye``: a check before asking a password.

    Raises:
        CertificateError: the certificate does not verify (``WrongCA``: another CA).
        ConnectionLost: unreachable, or not a securechat server.
    """
    greeting = greet(Endpoint(host, port, ca_file), client_context(ca_file), timeout=timeout)
    try:
        _say_bye(greeting)
    finally:
        greeting.stream.close()


def pin_file(config_dir: Path, host: str, port: int) -> Path:
    """Where the CA pinned for ``host:port`` lives; quoting keeps IPv6 and odd names safe."""
    return config_dir / TRUSTED_DIR / f"{quote(host.lower(), safe='')}-{port}.pem"


def pin_ca(settings_path: Path, host: str, port: int, offered: OfferedCA) -> TrustedCA:
    """Store ``offered`` as the CA for ``host:port`` (0644, atomically) and record it.

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


def _say_bye(greeting: Greeting) -> None:
    greeting.stream.queue(encode_frame(encode(Bye())))
    # A server that hung up first loses nothing: we are done with it either way.
    with contextlib.suppress(ConnectionLost):
        greeting.stream.flush()


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
