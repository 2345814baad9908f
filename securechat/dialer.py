"""Opening a client's TLS connection, with errors that tell a new user what to check.

The one place that dials a server (the client, ``doctor``): TCP, then the TLS handshake,
each failure turned into :class:`ConnectionLost` (worth retrying), :class:`HandshakeFailed`
(something answered, but not a TLS 1.3 server) or :class:`CertificateError` with the
step that fixes it. The connected socket is handed over as a :class:`TlsStream`.
"""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

from securechat.errors import CertificateError, ConnectionLost, HandshakeFailed, WrongCA
from securechat.transport import TlsStream, format_address

# OpenSSL X509_V_ERR_* codes that need different advice.
_WRONG_CA = {2, 18, 19, 20, 21}  # unknown issuer, self-signed, not signed by our CA
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = {62, 64}  # host name, IP address


def connect_tls(
    address: tuple[str, int],
    context: ssl.SSLContext,
    *,
    timeout: float,
    server_name: str | None = None,
    ca_file: Path | None = None,
) -> TlsStream:
    """Connect to ``address`` and complete the TLS handshake within ``timeout`` seconds.

    ``server_name`` is the name the certificate must carry (default: the host);
    ``ca_file`` only names the trusted CA in error messages.

    Raises:
        ConnectionLost: unreachable, refused or timed out (worth retrying);
            :class:`HandshakeFailed`: something answered, but not a TLS 1.3 server.
        CertificateError: the certificate does not verify (:class:`WrongCA`: another CA).
    """
    host, where = address[0], format_address(address)
    try:
        raw = socket.create_connection(address, timeout=timeout)
    except socket.gaierror as exc:
        raise ConnectionLost(
            f"cannot find server {host!r}: {exc.strerror or exc}; check the host name"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectionLost(
            f"cannot reach {where}: connection refused; is the server running, "
            "and is the port open in the firewall?"
        ) from exc
    except TimeoutError as exc:
        raise ConnectionLost(
            f"cannot reach {where}: no answer within {timeout:.0f} s; is the host up, "
            "and is the port open in the firewall?"
        ) from exc
    except OSError as exc:
        hint = "check the address and your network"
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            hint = "no route to that host; check the address and your network"
        raise ConnectionLost(f"cannot reach {where}: {exc.strerror or exc}; {hint}") from exc
    name = server_name or host
    try:
        return TlsStream(context.wrap_socket(raw, server_hostname=name))
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise _certificate_error(exc, name, ca_file) from exc
    except (ssl.SSLError, OSError) as exc:  # includes a timeout during the handshake
        raw.close()
        reason = (exc.reason if isinstance(exc, ssl.SSLError) else None) or str(exc) or "closed"
        raise HandshakeFailed(
            f"TLS handshake with {where} failed ({reason.replace('_', ' ').lower()}); "
            "is that a securechat server on that port?"
        ) from exc


def _certificate_error(
    exc: ssl.SSLCertVerificationError, name: str, ca_file: Path | None
) -> CertificateError:
    code = exc.verify_code
    if code in _NAME_MISMATCH:
        return CertificateError(
            f"the server's certificate does not include the name {name!r}: connect with a "
            f"name it has, or ask the admin to add it with "
            f"`securechat init-certs --renew --host {name}` (it keeps the other names)"
        )
    if code in _WRONG_CA:
        return WrongCA(
            f"the server's certificate is not signed by the CA in {ca_file or 'use'}: "
            "get the right ca.pem from your admin"
        )
    if code == _EXPIRED:
        return CertificateError(
            "the server's certificate has expired: ask the admin to run "
            "`securechat init-certs --renew` and `systemctl reload securechat`"
        )
    if code == _NOT_YET_VALID:
        return CertificateError(
            "the server's certificate is not valid yet: check this computer's clock"
        )
    return CertificateError(
        f"cannot verify the server's certificate: {exc.verify_message}; "
        "ask your admin for the right ca.pem"
    )
