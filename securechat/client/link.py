"""The blocking steps between a TLS stream and a :class:`ClientSession`.

:func:`converse` writes what a session has to say and yields what it hears, until the
caller has what it waited for or a deadline passes; :func:`log_in` uses it to connect and
log in; :func:`probe` asks one question before login (the trust-on-first-use probe's
``ca``, or nothing: ``doctor``'s check that a securechat server answers); and
:func:`login_error` turns a refused login into the exception a new user can act on (what
went wrong, what to do; text the server chose is quoted only escaped, see
client/escaping.py). Whoever holds the stream afterwards owns it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

from securechat.client.escaping import escape
from securechat.dialer import connect_tls
from securechat.errors import (
    AuthenticationError,
    ConnectionLost,
    ErrorCode,
    RateLimited,
    SecureChatError,
    ServerError,
    UnexpectedMessage,
)
from securechat.protocol.client import (
    ClientSession,
    ConnectionEnded,
    Greeted,
    LoggedIn,
    LoginRefused,
    Reply,
    SessionEvent,
)
from securechat.protocol.messages import PROTOCOL_VERSION, Asked, Error, Event, Hello
from securechat.transport import TlsStream, format_address

ClientEvent = SessionEvent | Event
T = TypeVar("T")
BYE_GRACE = 1.0  # how long a bye may take to leave before the socket is closed


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect and whom to trust; ``server_name`` defaults to ``host``."""

    host: str
    port: int
    ca_file: Path
    server_name: str | None = None

    @property
    def label(self) -> str:
        return format_address((self.host, self.port))

    def connect(self, context: ssl.SSLContext, *, timeout: float) -> TlsStream:
        """TCP and TLS to this endpoint (see :func:`securechat.dialer.connect_tls`)."""
        return connect_tls(
            (self.host, self.port), context, timeout=timeout,
            server_name=self.server_name, ca_file=self.ca_file,
        )  # fmt: skip


def with_port(address: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port).

    Raises:
        ValueError: the port is not a number.
    """
    if address.startswith("[") and "]" in address:
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, int(port)
    return address, default_port


def nodes(
    host: str, port: int, also: Sequence[str], ca_file: Path, server_name: str | None = None
) -> list[Endpoint]:
    """``host:port``, then each of ``also`` (``host`` or ``host:port``, the port defaulting
    to ``port``): the nodes of one service, which share a CA.

    Raises:
        ValueError: a port in ``also`` is not a number.
    """
    return [Endpoint(*with_port(address, port), ca_file, server_name) for address in (host, *also)]


def first_answering(endpoints: Sequence[Endpoint], attempt: Callable[[Endpoint], T]) -> T:
    """``attempt`` on each endpoint in turn; the result of the first that is not lost.

    Raises:
        ConnectionLost: every attempt was; with several endpoints, one message naming each
            with its reason, so that the user sees the whole list was tried.
        Others: as ``attempt`` (a wrong password on one node is not worth another try).
    """
    failures: list[ConnectionLost] = []
    for endpoint in endpoints:
        try:
            return attempt(endpoint)
        except ConnectionLost as exc:
            if len(endpoints) == 1:
                raise
            failures.append(exc)
    reasons = "".join(f"\n  {failure.message}" for failure in failures)
    raise ConnectionLost(f"none of the {len(endpoints)} servers answered:{reasons}") from (
        failures[-1] if failures else None
    )


def converse(
    stream: TlsStream,
    session: ClientSession,
    *,
    deadline: float,
    label: str,
    guard: AbstractContextManager[object] | None = None,
) -> Iterator[ClientEvent]:
    """Write what ``session`` says, yield what it hears; stop when the caller stops.

    ``guard`` (a lock) is held around every call into the session, for a session that
    other threads use too.

    Raises:
        ConnectionLost: the connection ended or nothing came before ``deadline``; the
            session is told (connection_lost) before this is raised.
    """
    guard = guard or contextlib.nullcontext()
    try:
        while True:
            with guard:
                out = session.data_to_send()
                events = session.events_received()
            if out:
                stream.queue(out)
                stream.flush_until(deadline)
            yield from events
            data = stream.receive_until(deadline)
            with guard:
                session.receive_data(data, time.monotonic())
    except ConnectionLost as exc:
        with guard:
            session.connection_lost(exc.message)
        raise ConnectionLost(f"{label}: {exc.message}") from exc


def log_in(
    endpoint: Endpoint,
    context: ssl.SSLContext,
    session: ClientSession,
    *,
    timeout: float,
    guard: AbstractContextManager[object] | None = None,
) -> tuple[TlsStream, list[ClientEvent]]:
    """Connect, verify the server and log ``session`` in; the stream and the events so far.

    Raises:
        ConnectionLost: unreachable, reset, or not a securechat server (worth retrying).
        CertificateError: the server's certificate does not verify against the CA file.
        AuthenticationError: wrong user or password, or a resume token no longer valid.
        RateLimited: too many login attempts; ``retry_after`` says how long to wait.
        UnexpectedMessage: the server speaks another protocol version.
    """
    stream = endpoint.connect(context, timeout=timeout)
    guard = guard or contextlib.nullcontext()
    with guard:
        session.connection_made(time.monotonic())
    seen: list[ClientEvent] = []
    try:
        conversation = converse(
            stream, session, deadline=time.monotonic() + timeout, label=endpoint.label,
            guard=guard,
        )  # fmt: skip
        for event in conversation:
            seen.append(event)
            if isinstance(event, LoggedIn):
                with guard:  # what came with the welcome is the caller's to handle
                    seen.extend(session.events_received())
                return stream, seen
            if isinstance(event, LoginRefused):
                raise login_error(event.error, session.user or "", endpoint.label,
                                  with_token=event.with_token)  # fmt: skip
            if isinstance(event, ConnectionEnded):
                raise ConnectionLost(f"{endpoint.label}: {escape(event.reason)}")
    except BaseException:
        stream.close()
        raise
    raise AssertionError("unreachable: converse() only ends by raising")  # pragma: no cover


def ask(
    stream: TlsStream, session: ClientSession, request: Asked, *, deadline: float, label: str
) -> Event:
    """Send one request on a session nobody else drives, and return its answer.

    Raises:
        ConnectionLost: the connection ended, or no answer came before ``deadline``.
    """
    ref = session.request(request)
    for event in converse(stream, session, deadline=deadline, label=label):
        if isinstance(event, Reply) and event.ref == ref:
            return event.event
        if isinstance(event, ConnectionEnded):
            raise ConnectionLost(f"{label}: {escape(event.reason)}")
    raise AssertionError("unreachable: converse() only ends by raising")  # pragma: no cover


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """What a connection that never logs in learned: the greeting, and the one answer."""

    hello: Hello
    reply: Event | None
    peer_certificate: bytes  # the server's certificate (DER), as presented in this session


def probe(stream: TlsStream, *, label: str, timeout: float, request: Asked | None = None) -> Probe:
    """Read ``hello``, ask ``request`` (if any) before login, say ``bye``; close ``stream``.

    Raises:
        ConnectionLost: the server closed, broke the connection or did not answer in time.
        UnexpectedMessage: the server speaks another protocol version.
    """
    session = ClientSession(None)
    session.connection_made(time.monotonic())
    deadline = time.monotonic() + timeout
    try:
        for event in converse(stream, session, deadline=deadline, label=label):
            if isinstance(event, Greeted):
                reply = None
                if request is not None:
                    reply = ask(stream, session, request, deadline=deadline, label=label)
                return Probe(event.hello, reply, stream.peer_certificate())
            if isinstance(event, LoginRefused):
                raise login_error(event.error, "", label, with_token=False)
            if isinstance(event, ConnectionEnded):
                raise ConnectionLost(f"{label}: {escape(event.reason)}")
    finally:
        _say_bye(stream, session)
    raise AssertionError("unreachable: converse() only ends by raising")  # pragma: no cover


def _say_bye(stream: TlsStream, session: ClientSession) -> None:
    session.close()
    stream.queue(session.data_to_send())
    # A server that hung up first loses nothing: we are done with it either way.
    with contextlib.suppress(ConnectionLost):
        stream.flush_until(time.monotonic() + BYE_GRACE)
    stream.close()


def login_error(error: Error, user: str, label: str, *, with_token: bool) -> SecureChatError:
    """The exception for an ``error`` reply to ``auth`` (or a ``hello`` of another version)."""
    if error.code == ErrorCode.AUTH_FAILED and with_token:
        return AuthenticationError(
            f"{label} no longer accepts this session for {user!r} (password changed, "
            "account disabled, or the session expired): connect again and log in"
        )
    if error.code == ErrorCode.AUTH_FAILED:
        return AuthenticationError(
            f"wrong user name or password for {user!r} on {label} (or the account is disabled)"
        )
    if error.code == ErrorCode.RATE_LIMITED:
        wait = max(error.retry_after or 1.0, 0.1)
        return RateLimited(
            f"too many login attempts: wait {wait:.0f} s and try again", retry_after=wait
        )
    if error.code == ErrorCode.UNSUPPORTED_PROTOCOL:
        return UnexpectedMessage(
            f"{label}: {escape(error.message)}: upgrade securechat so both sides match"
            if "protocol version" in error.message
            else f"{label} does not speak protocol version {PROTOCOL_VERSION}: "
            "upgrade securechat so both sides match",
            code=ErrorCode.UNSUPPORTED_PROTOCOL,
        )
    if error.code == ErrorCode.SHUTTING_DOWN:
        return ConnectionLost(f"{label} is shutting down")
    return ServerError(f"{label} refused the login: {escape(error.message)} ({escape(error.code)})")
