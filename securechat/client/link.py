"""Open one logged-in connection: TCP, TLS, ``hello``, ``auth``, ``welcome``.

This is the client's boundary with ``socket`` and ``ssl``: every failure on the way in
becomes a :class:`SecureChatError` whose message is one line a new user can act on (what
went wrong and what to do), e.g. a wrong CA file versus a certificate that does not name
the host; text the server chose is quoted in them only escaped (client/escaping.py). Runs
in whichever thread calls it; the returned stream then belongs to the client's I/O thread.
:func:`greet` (TCP, TLS, ``hello``) and :func:`ask` (one request, one answer) are also used
before login, by the trust-on-first-use probe.
"""

from __future__ import annotations

import dataclasses
import errno
import select
import socket
import ssl
import time
from pathlib import Path

from securechat.client.escaping import escape
from securechat.config import PROTOCOL_VERSION
from securechat.errors import (
    AuthenticationError,
    CertificateError,
    ConnectionLost,
    ErrorCode,
    RateLimited,
    SecureChatError,
    ServerError,
    UnexpectedMessage,
    WrongCA,
)
from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.protocol.messages import (
    Auth,
    Error,
    Event,
    Hello,
    Request,
    Welcome,
    decode_event,
    encode,
)
from securechat.transport import POLLIN, TlsStream

#: Largest frame accepted from a server. A server bounds what it accepts by ``max_frame``,
#: but a message event holding a max_body of escaped text can be several times that.
MAX_EVENT_FRAME = 16 * 1024 * 1024

#: ``TlsStream.receive(limit)`` stops after ``limit`` bytes. One read per call, because
#: when a read in the same call hits end-of-stream it raises and the bytes read before are
#: lost, and a server's last words (an ``auth_failed`` error, ``bye``) come just before EOF.
ONE_READ = 1

# OpenSSL X509_V_ERR_* codes that need different advice.
_WRONG_CA = {2, 18, 19, 20, 21}  # unknown issuer, self-signed, not signed by our CA
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = {62, 64}  # host name, IP address


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect and whom to trust; ``server_name`` defaults to ``host``."""

    host: str
    port: int
    ca_file: Path
    server_name: str | None = None

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclasses.dataclass(slots=True)
class Greeting:
    """A connection that has read ``hello`` and sent nothing yet; ``deadline`` is monotonic."""

    endpoint: Endpoint
    stream: TlsStream
    decoder: FrameDecoder
    hello: Hello
    peer_cert: bytes  # the server's certificate (DER) as presented in this TLS session
    deadline: float


@dataclasses.dataclass(slots=True)
class Link:
    """A logged-in connection, ready for the I/O thread."""

    stream: TlsStream
    decoder: FrameDecoder
    hello: Hello
    welcome: Welcome


def open_link(
    endpoint: Endpoint,
    context: ssl.SSLContext,
    *,
    user: str,
    password: str | None = None,
    token: str | None = None,
    timeout: float,
) -> Link:
    """Connect, verify the server, log in with the password or a resume token.

    Raises:
        ConnectionLost: unreachable, reset, or not a securechat server (worth retrying).
        CertificateError: the server's certificate does not verify against the CA file.
        AuthenticationError: wrong user or password.
        RateLimited: too many login attempts; ``retry_after`` says how long to wait.
        UnexpectedMessage: the server speaks another protocol version.
    """
    greeting = greet(endpoint, context, timeout=timeout)
    try:
        reply = ask(greeting, Auth(user=user, password=password, token=token))
        if isinstance(reply, Error):
            raise login_error(reply, user, endpoint, with_token=token is not None)
        if not isinstance(reply, Welcome):
            raise ConnectionLost(f"{endpoint.label} answered the login with {reply.TYPE!r}")
        return Link(greeting.stream, greeting.decoder, greeting.hello, reply)
    except BaseException:
        greeting.stream.close()
        raise


def greet(endpoint: Endpoint, context: ssl.SSLContext, *, timeout: float) -> Greeting:
    """Connect, complete TLS with ``context`` and read the server's ``hello``.

    Raises:
        ConnectionLost, CertificateError (:class:`WrongCA` for an unknown issuer),
        UnexpectedMessage: as for :func:`open_link`.
    """
    deadline = time.monotonic() + timeout
    sock = _tls_connect(endpoint, context, timeout)
    peer_cert = sock.getpeercert(binary_form=True) or b""
    stream = TlsStream(sock)
    try:
        decoder = FrameDecoder(MAX_EVENT_FRAME)
        hello = _read(stream, decoder, deadline, endpoint)
        if not isinstance(hello, Hello):
            raise ConnectionLost(f"{endpoint.label} did not greet like a securechat server")
        if hello.protocol != PROTOCOL_VERSION:
            raise UnexpectedMessage(
                f"{endpoint.label} speaks protocol version {hello.protocol} "
                f"({escape(hello.server)}), "
                f"this client speaks version {PROTOCOL_VERSION}: "
                "upgrade securechat so both sides match",
                code=ErrorCode.UNSUPPORTED_PROTOCOL,
            )
        return Greeting(endpoint, stream, decoder, hello, peer_cert, deadline)
    except BaseException:
        stream.close()
        raise


def ask(greeting: Greeting, request: Request) -> Event:
    """Send ``request`` and return the next event, all before the greeting's deadline.

    Raises:
        ConnectionLost: the server closed, broke the connection or did not answer in time.
    """
    stream, deadline, endpoint = greeting.stream, greeting.deadline, greeting.endpoint
    stream.queue(encode_frame(encode(request)))
    _flush(stream, deadline, endpoint)
    return _read(stream, greeting.decoder, deadline, endpoint)


def login_error(
    error: Error, user: str, endpoint: Endpoint, *, with_token: bool = False
) -> SecureChatError:
    """The exception for an ``error`` reply to ``auth``."""
    if error.code == ErrorCode.AUTH_FAILED and with_token:
        return AuthenticationError(
            f"{endpoint.label} no longer accepts this session for {user!r} (password changed, "
            "account disabled, or the session expired): connect again and log in"
        )
    if error.code == ErrorCode.AUTH_FAILED:
        return AuthenticationError(
            f"wrong user name or password for {user!r} on {endpoint.label} "
            "(or the account is disabled)"
        )
    if error.code == ErrorCode.RATE_LIMITED:
        wait = max(error.retry_after or 1.0, 0.1)
        return RateLimited(
            f"too many login attempts: wait {wait:.0f} s and try again", retry_after=wait
        )
    if error.code == ErrorCode.UNSUPPORTED_PROTOCOL:
        return UnexpectedMessage(
            f"{endpoint.label} does not speak protocol version {PROTOCOL_VERSION}: "
            "upgrade securechat so both sides match",
            code=ErrorCode.UNSUPPORTED_PROTOCOL,
        )
    if error.code == ErrorCode.SHUTTING_DOWN:
        return ConnectionLost(f"{endpoint.label} is shutting down")
    return ServerError(
        f"{endpoint.label} refused the login: {escape(error.message)} ({escape(error.code)})"
    )


def _tls_connect(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    where = endpoint.label
    try:
        raw = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror as exc:
        raise ConnectionLost(
            f"cannot find server {endpoint.host!r}: {exc.strerror or exc}; check the host name"
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
    name = endpoint.server_name or endpoint.host
    try:
        return context.wrap_socket(raw, server_hostname=name)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise _certificate_error(exc, endpoint, name) from exc
    except (ssl.SSLError, OSError) as exc:  # includes a timeout during the handshake
        raw.close()
        reason = (exc.reason if isinstance(exc, ssl.SSLError) else None) or str(exc) or "closed"
        raise ConnectionLost(
            f"TLS handshake with {where} failed ({reason.replace('_', ' ').lower()}); "
            "is that a securechat server on that port?"
        ) from exc


def _certificate_error(
    exc: ssl.SSLCertVerificationError, endpoint: Endpoint, name: str
) -> CertificateError:
    code = exc.verify_code
    if code in _NAME_MISMATCH:
        return CertificateError(
            f"the server's certificate does not include the name {name!r}: connect with a "
            f"name it has, or ask the admin to run `securechat init-certs --host {name} --renew`"
        )
    if code in _WRONG_CA:
        return WrongCA(
            f"the server's certificate is not signed by the CA in {endpoint.ca_file}: "
            "get the right ca.pem from your admin"
        )
    if code == _EXPIRED:
        return CertificateError(
            "the server's certificate has expired: ask the admin to run "
            "`securechat init-certs --renew` and restart the server"
        )
    if code == _NOT_YET_VALID:
        return CertificateError(
            "the server's certificate is not valid yet: check this computer's clock"
        )
    return CertificateError(
        f"cannot verify the server's certificate: {exc.verify_message}; "
        "ask your admin for the right ca.pem"
    )


def _flush(stream: TlsStream, deadline: float, endpoint: Endpoint) -> None:
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLOUT)
    while not stream.flush():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise ConnectionLost(f"{endpoint.label} did not accept our request in time")


def _read(stream: TlsStream, decoder: FrameDecoder, deadline: float, endpoint: Endpoint) -> Event:
    """The next event, waiting until ``deadline``."""
    poller = select.poll()
    poller.register(stream.fileno(), POLLIN)
    while True:
        payload = decoder.next_frame()
        if payload is not None:
            return decode_event(payload)
        if not stream.has_buffered_input:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                raise ConnectionLost(f"{endpoint.label} did not answer in time")
        try:
            decoder.feed(stream.receive(ONE_READ))
        except ConnectionLost as exc:
            raise ConnectionLost(f"{endpoint.label} closed the connection: {exc.message}") from exc
