"""``securechat doctor``'s network check: what listens on the server's port on 127.0.0.1.

When something listens on the port, a TLS handshake against the deployment's own CA and
the ``hello`` frame tell a running securechat apart from another program. That probe
skips the host-name check on purpose, because it identifies a server rather than trusting
it, and it sends no credentials. The certificate's names are checked separately against
``--host`` (certificates.py).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator

from cryptography import x509

from securechat import certs
from securechat.client.link import probe
from securechat.dialer import connect_tls
from securechat.doctor.certificates import LOADS_IT, server_cert
from securechat.doctor.findings import Check, Finding, Installation, Status
from securechat.errors import CertificateError, ConnectionLost, HandshakeFailed, SecureChatError
from securechat.tls import identify_context, probe_context
from securechat.transport import TlsStream

#: Bound on each network step of the port probe, in seconds.
PROBE_TIMEOUT = 3.0


def _port(inst: Installation) -> Iterator[Finding]:
    name, where = "port", f"127.0.0.1 port {inst.port}"
    other = (
        f"stop that program, or run securechat on another port (`serve --port`, not {inst.port})"
    )
    ca_file = inst.certs_dir / certs.CA_CERT
    try:
        context = identify_context(ca_file)  # identify the server, do not trust a name
    except CertificateError as error:
        context = None
        no_ca = error
    try:
        stream = connect_tls(
            ("127.0.0.1", inst.port), context or probe_context(), timeout=PROBE_TIMEOUT
        )
    except HandshakeFailed:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    except ConnectionLost as error:
        if isinstance(error.__cause__, ConnectionRefusedError):
            yield _free_port(inst.port)
        else:
            yield Finding(Status.FAIL, name, f"cannot connect to {where}: {error.message}")
        return
    except CertificateError:
        yield Finding(
            Status.FAIL,
            name,
            f"a TLS server on {where} has a certificate not signed by {ca_file}: another "
            "program, or a securechat using other certificates",
            other,
        )
        return
    if context is None:
        stream.close()
        detail = f"something listens on {where}, but without a CA it cannot tell what"
        yield Finding(Status.WARN, name, f"{detail} ({no_ca.message})", "fix --certs")
        return
    yield _identify(stream, inst, where, other)


def _web_port(inst: Installation) -> Iterator[Finding]:
    """The web port answers TLS with our CA's certificate and serves the page with its CSP."""
    if inst.web_port is None:
        return
    name, port = "web port", inst.web_port
    where = f"127.0.0.1 port {port}"
    other = f"stop that program, or give securechat another one (`serve --web-port`, not {port})"
    try:
        context = identify_context(inst.certs_dir / certs.CA_CERT)  # identify, not trust
    except CertificateError as error:
        yield Finding(Status.WARN, name, f"cannot check {where} without a CA ({error.message})")
        return
    try:
        stream = connect_tls(("127.0.0.1", port), context, timeout=PROBE_TIMEOUT)
    except HandshakeFailed:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    except CertificateError:
        detail = f"a TLS server on {where} has a certificate not signed by {certs.CA_CERT}"
        yield Finding(Status.FAIL, name, detail, other)
        return
    except ConnectionLost as error:
        if isinstance(error.__cause__, ConnectionRefusedError):
            yield _free_port(port, name)
        else:
            yield Finding(Status.FAIL, name, f"cannot connect to {where}: {error.message}")
        return
    try:
        status, headers = _get_page(stream, port)
    except ConnectionLost:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    finally:
        stream.close()
    if status != 200 or "content-security-policy" not in headers:
        detail = f"{where} answers HTTPS but not with securechat's page ({status})"
        yield Finding(Status.FAIL, name, detail, other)
        return
    yield Finding(Status.OK, name, f"the web client is served on {where}, with its CSP")


def _get_page(stream: TlsStream, port: int) -> tuple[int, set[str]]:
    """``GET /`` over ``stream``: the status and the names of the headers (lowercase).

    Raises:
        ConnectionLost: no HTTP answer came before the probe's deadline.
    """
    deadline = time.monotonic() + PROBE_TIMEOUT
    stream.queue(f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
    stream.flush_until(deadline)
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        answer += stream.receive_until(deadline)
    status_line, *lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionLost("not an HTTP answer")
    return int(parts[1]), {line.split(":", 1)[0].strip().lower() for line in lines if ":" in line}


def _free_port(port: int, check: str = "port") -> Finding:
    """Nothing answers on loopback; a bind tells "free" from "taken on another address"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return Finding(
                    Status.WARN,
                    check,
                    f"port {port} is in use on an address other than 127.0.0.1; doctor only "
                    "looks at 127.0.0.1, so it cannot tell whether that is securechat",
                    "check with `ss -ltnp`",
                )
            return Finding(
                Status.FAIL,
                check,
                f"securechat could not listen on port {port}: {error.strerror or error}",
                "use a port above 1023 (`serve --port`)",
            )
    return Finding(Status.OK, check, f"port {port} is free; securechat is not running")


def _identify(stream: TlsStream, inst: Installation, where: str, other: str) -> Finding:
    """Read ``hello`` from a TLS server our CA vouches for, then say ``bye``."""
    try:
        answer = probe(stream, label=where, timeout=PROBE_TIMEOUT)
    except SecureChatError:
        return Finding(
            Status.FAIL, "port", f"a TLS server on {where} does not speak securechat", other
        )
    hello = answer.hello
    detail = f"securechat is running on {where} ({hello.server}, protocol {hello.protocol})"
    on_disk = server_cert(inst)
    presented = answer.peer_certificate
    if presented and on_disk and x509.load_der_x509_certificate(presented) != on_disk:
        return Finding(
            Status.WARN,
            "port",
            f"{detail}, but with another certificate than {inst.certs_dir / certs.SERVER_CERT}",
            LOADS_IT,
        )
    return Finding(Status.OK, "port", detail)


CHECKS: tuple[Check, ...] = (_port, _web_port)
