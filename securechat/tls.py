"""The only place that builds an :class:`ssl.SSLContext`.

Both sides speak TLS 1.3 only, with no compression and no renegotiation. The client trusts
exactly one CA, the server's private ca.pem, never the system store, and always checks the
host name. The one context that verifies nothing, :func:`probe_context`, exists for trust
on first use: it fetches the CA certificate to show its fingerprint, sends no password and
never carries a chat. ``ssl`` and OS errors while loading files become
:class:`CertificateError`.

Contexts are built with ``SSLContext(PROTOCOL_TLS_SERVER/CLIENT)``, which sets the same
defaults as ``create_default_context`` minus one: that function opens the file named by
``SSLKEYLOGFILE`` and appends every session's secrets to it, before a caller could say no.
No securechat context ever writes a key log.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from securechat.errors import CertificateError

__all__ = [
    "check_server_context",
    "client_context",
    "directory_context",
    "identify_context",
    "probe_context",
    "server_context",
]

#: Rounds of check_server_context's in-memory handshake; TLS 1.3 completes in two.
_HANDSHAKE_FLIGHTS = 4


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.3 server context presenting ``cert_file``.

    Raises:
        CertificateError: a file is missing, unreadable, or the key does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context)
    # No TLS 1.3 session tickets: no client of ours resumes a TLS session (a reconnect
    # logs in with a resume token over a full handshake), and tickets are post-handshake
    # messages a client reads while it may already be writing: a client that reads and
    # writes one TLS socket from two threads (websockets' threaded client does) could lose
    # its first request that way, seen as an opening that waited 30 s for nothing.
    context.num_tickets = 0
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise CertificateError(
            f"cannot use {cert_file} with {key_file}: {exc.reason or exc}"
        ) from exc
    except OSError as exc:
        raise CertificateError(f"cannot read {cert_file} or {key_file}: {exc.strerror}") from exc
    return context


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A TLS 1.3 client context that trusts only the CA in ``ca_file`` and checks host names.

    Raises:
        CertificateError: ``ca_file`` is missing, unreadable or holds no certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise CertificateError(f"{ca_file} holds no usable CA certificate") from exc
    except OSError as exc:
        raise CertificateError(f"cannot read {ca_file}: {exc.strerror}") from exc
    _harden(context)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    # Reject certificates that break RFC 5280 (Python 3.13 sets this by default).
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def directory_context(ca_file: Path) -> ssl.SSLContext:
    """A client context for the office directory (LDAP over TLS): only the CA in ``ca_file``,
    host names checked, never unverified. TLS 1.2 is allowed: most domain controllers
    offer no TLS 1.3 yet.

    Raises:
        CertificateError: as :func:`client_context`.
    """
    context = client_context(ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def identify_context(ca_file: Path) -> ssl.SSLContext:
    """Like :func:`client_context`, without the host-name check: for ``doctor``, which asks
    whether the server on a port is this deployment's, not whether to trust a name.

    Raises:
        CertificateError: as :func:`client_context`.
    """
    context = client_context(ca_file)
    context.check_hostname = False
    return context


def probe_context() -> ssl.SSLContext:
    """TLS 1.3 that verifies nothing: only for fetching the CA on first use (client/trust.py)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(context)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _harden(context: ssl.SSLContext) -> None:
    # Whatever SSLKEYLOGFILE says (see the module docstring). typeshed has it as str only,
    # but None is how ssl turns key logging off.
    context.keylog_filename = None  # type: ignore[assignment]
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION
    # One key-exchange group. OpenSSL would also offer X448 and secp521r1, which Mozilla's
    # "modern" profile rejects, and Python before 3.15 cannot set a list of groups. P-256 is
    # the group every TLS 1.3 stack must support (RFC 8446, 9.1), FIPS builds included; with
    # both sides set alike there is no HelloRetryRequest round trip.
    context.set_ecdh_curve("prime256v1")
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):  # OpenSSL >= 1.1.0h
        context.options |= ssl.OP_NO_RENEGOTIATION


def check_server_context(context: ssl.SSLContext, ca_pem: str) -> bytes:
    """Handshake in memory with a client that trusts only ``ca_pem``; the certificate served.

    This is what a client will check, minus the host name: the key matches the certificate,
    the certificate chains to the CA the server offers and is in date. Returns DER.

    Raises:
        CertificateError: the handshake fails.
    """
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(client)
    client.check_hostname = False  # names are doctor's business (and a client's)
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        client.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError as exc:
        raise CertificateError("the CA certificate is not a usable PEM certificate") from exc
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    ends = [
        client.wrap_bio(to_client, to_server, server_side=False),
        context.wrap_bio(to_server, to_client, server_side=True),
    ]
    pending = list(ends)
    for _ in range(_HANDSHAKE_FLIGHTS):
        for end in list(pending):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLCertVerificationError as exc:
                raise CertificateError(f"a client would refuse it: {exc.verify_message}") from exc
            except ssl.SSLError as exc:
                raise CertificateError(f"TLS handshake failed: {exc.reason or exc}") from exc
            pending.remove(end)
        if not pending:
            served = ends[0].getpeercert(binary_form=True)
            assert served is not None, "a verified handshake has a peer certificate"
            return served
    raise CertificateError("the TLS handshake did not complete")
