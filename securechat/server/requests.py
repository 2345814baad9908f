"""What a connection does with each frame it receives: meter, decode, log in, answer.

A :class:`RequestHandler` belongs to one connection and runs in that connection's thread
only. It holds the sans-I/O :class:`ServerSession` (which decides what may be sent in
which state), the two token buckets that meter the peer, and who logged in. Each frame
costs a token before it is decoded; so does each control frame the framing answers
itself (a WebSocket ping, see webframing.py). ``auth`` logs in
through the service (or, with ``device``, the cookie the upgrade carried: devicerequests.py)
and the server's session caps, ``get_ca``, ``bye`` and the device requests are answered
here, and every other request goes to :class:`ChatService`. Replies go to the ``reply``
callable (the connection queues them on its own stream); a reason to end the connection
is raised as :class:`Closing`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import (
    AuthenticationError,
    ErrorCode,
    ProtocolError,
    RateLimited,
    RequestError,
    SecureChatError,
    TooManySessions,
)
from securechat.protocol.devices import (
    DeviceRequest,
    ListDevices,
    SignOutDevice,
    SignOutEverywhere,
)
from securechat.protocol.messages import (
    Auth,
    Bye,
    CACertificate,
    Error,
    Event,
    GetCA,
    Pong,
    Request,
    request_ref,
)
from securechat.protocol.session import ServerSession, State
from securechat.server.devicerequests import DeviceSessions
from securechat.server.peer import PeerAddress
from securechat.server.ratelimit import TokenBucket
from securechat.server.service import Caller, ChatService

log = logging.getLogger("securechat.server")

#: What a client is told of a failure on the server's side (a database locked, unreachable
#: or full): the reason names the database (its file, or its user, host and port), so it
#: goes to the server's log, once, and never to a client.
SERVER_ERROR_TEXT = "the server could not do that just now; try again later"


class Closing(Exception):
    """End the connection, sending ``final`` first if the peer can still be told."""

    def __init__(self, reason: str, final: Event | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


class RequestHandler:
    def __init__(
        self,
        caller: Caller,
        *,
        peer: PeerAddress,
        accepted_at: float,
        auth_deadline: float,
        service: ChatService,
        limits: Limits,
        ca_pem: str,
        on_authenticated: Callable[[Account], None],
        reply: Callable[[Event], None],
        devices: DeviceSessions | None = None,
    ) -> None:
        """``caller`` is the connection; ``peer`` its address (a trusted proxy's header
        may replace it before the first request); ``devices``: "stay signed in" (the web
        port's)."""
        self._caller = caller
        self.peer = peer
        self._auth_deadline = auth_deadline
        self._service = service
        self._ca_pem = ca_pem
        self._on_authenticated = on_authenticated
        self._reply = reply
        self.session = ServerSession(max_frame=limits.max_frame)
        # Every frame costs a token before it is decoded. A frame that finds none is
        # refused with rate_limited, which costs a token of the second bucket; a peer that
        # empties both (twice the rate, sustained) is closed: it never gets unlimited answers.
        self._bucket = TokenBucket(
            rate=limits.rate_per_second, burst=limits.rate_burst, now=accepted_at
        )
        self._refusals = TokenBucket(
            rate=limits.rate_per_second, burst=limits.rate_burst, now=accepted_at
        )
        self.account: Account | None = None
        self._token: str | None = None  # the resume token this session logged in with or got
        self._devices = devices
        self._user_agent: str | None = None  # set at a WebSocket upgrade
        self._device_credential: str | None = None  # a valid cookie the upgrade carried
        self._device_id: int | None = None  # the device this session signed in as

    def answer_next(self) -> bool:
        """Answer the next complete request; False if none is waiting.

        Raises:
            Closing: the request ends the connection (a failed login, ``bye``, a protocol
                error that closes the session, far too many requests).
        """
        frame = self.session.next_frame()
        if frame is None:
            return False
        item = frame if isinstance(frame, ProtocolError) else self._metered(frame)
        if item is None:
            pass  # refused unread: too many requests
        elif isinstance(item, ProtocolError):
            reply = Error(code=item.code, message=item.message, ref=item.ref)
            if self.session.state is State.CLOSED:
                raise Closing(f"protocol error: {item.code}", reply)
            self._reply(reply)
        elif isinstance(item, Auth):
            self._login(item)
        elif isinstance(item, GetCA):
            self._reply(CACertificate(pem=self._ca_pem, ref=item.ref))
        elif isinstance(item, ListDevices | SignOutDevice | SignOutEverywhere):
            self._device_request(item)
        elif isinstance(item, Bye):
            if self._token is not None:
                self._service.end_session(self._token)
            raise Closing("client said bye", Bye(reason="bye", ref=item.ref))
        elif not isinstance(item, Pong):
            self._answer(item)
        return True

    def upgraded(self, credential: str | None, user_agent: str) -> None:
        """The WebSocket opened (webframing.py): the valid device cookie it carried, if
        any, and the browser's User-Agent (which names a new device)."""
        self._device_credential, self._user_agent = credential, user_agent

    def disconnect(self) -> None:
        """The connection is closing: a logged-in caller leaves the hub."""
        if self.account is not None:
            self._service.disconnect(self._caller)

    def who(self) -> str:
        """``user@address`` once logged in, else the address: for the log."""
        return f"{self.account.name}@{self.peer}" if self.account else str(self.peer)

    def charge_control_frame(self) -> bool:
        """Charge a control frame the framing answers itself (a WebSocket ping, or a
        pong) like a request. False: refused, leave it unanswered.

        Raises:
            Closing: refused before login, or the refusals themselves ran out.
        """
        return not self._charge(time.monotonic())

    def _metered(self, payload: bytes) -> Request | ProtocolError | None:
        """Charge a frame to the token bucket, then decode it; None if it was refused.

        Raises:
            Closing: refused before login, or the refusals themselves ran out.
        """
        wait = self._charge(time.monotonic())
        if not wait:
            return self.session.decode(payload)
        self._reply(Error(
            code=ErrorCode.RATE_LIMITED, message="too many requests; slow down",
            ref=request_ref(payload), retry_after=round(wait, 3),
        ))  # fmt: skip
        return None

    def _charge(self, now: float) -> float:
        """Spend a token on one frame: 0.0 if it may be answered, else the seconds until
        the next token (the refusal's ``retry_after``).

        Raises:
            Closing: refused before login, or the refusals themselves ran out.
        """
        wait = self._bucket.take(now)
        if not wait:
            return 0.0
        authenticated = self.session.is_authenticated
        out_of_refusals = authenticated and self._refusals.take(now) > 0
        retry_after = round(wait, 3)
        if not authenticated:  # like any other error before login
            raise Closing("too many requests before login", Error(
                code=ErrorCode.RATE_LIMITED, message="too many requests", retry_after=retry_after,
            ))  # fmt: skip
        if out_of_refusals:
            log.warning("closing %s: requests at twice the rate limit", self.who())
            raise Closing("too many requests", Error(
                code=ErrorCode.RATE_LIMITED, message="far too many requests; closing",
                retry_after=retry_after,
            ))  # fmt: skip
        return wait

    def _answer(self, request: Request) -> None:
        ref = getattr(request, "ref", None)
        try:
            events = self._service.handle(self._caller, request)
        except RequestError as exc:
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            self._reply(Error(code=exc.code, message=exc.message, ref=ref, retry_after=retry))
        except SecureChatError as exc:  # the server's trouble: the detail is for its log only
            log.error("request from %s failed: %s", self.who(), exc.message)
            self._reply(Error(code=ErrorCode.SERVER_ERROR, message=SERVER_ERROR_TEXT, ref=ref))
        else:
            for event in events:
                self._reply(event)

    def _device_request(self, request: DeviceRequest) -> None:
        """Answer "your devices", or end one device or all of them.

        Raises:
            Closing: after ``signout_everywhere``, this session ends too.
        """
        account, devices, ref = self.account, self._devices, request.ref
        assert account is not None  # the session table allows these after login only
        if devices is None:
            message = "devices are signed in from the web client"
            self._reply(Error(code=ErrorCode.BAD_REQUEST, message=message, ref=ref))
        elif isinstance(request, SignOutEverywhere):
            devices.sign_out_everywhere(account)
            log.info("%s signed out everywhere", self.who())
            raise Closing("signed out everywhere", Bye(reason="signed_out", ref=ref))
        else:
            try:
                if isinstance(request, SignOutDevice):
                    self._reply(devices.sign_out(account, request, self._device_id))
                else:
                    self._reply(devices.listing(account, self._device_id, ref))
            except RequestError as exc:
                self._reply(Error(code=exc.code, message=exc.message, ref=ref))
            except SecureChatError as exc:  # the database's trouble: for the log only
                log.error("device request from %s failed: %s", self.who(), exc.message)
                self._reply(Error(code=ErrorCode.SERVER_ERROR, message=SERVER_ERROR_TEXT, ref=ref))

    def _check_login(self, request: Auth) -> tuple[Account, str]:
        """Raises: see :meth:`ChatService.login` and :meth:`DeviceSessions.login`."""
        if not request.device:
            timeout = self._auth_deadline - time.monotonic()
            return self._service.login(request, address=self.peer.host, timeout=timeout)
        if self._devices is None:
            raise AuthenticationError("no device sign-in on this port")
        account, token, self._device_id = self._devices.login(request.user, self._device_credential)
        self._service.resumed(account, address=self.peer.host)
        return account, token

    def _login(self, request: Auth) -> None:
        session = self.session
        try:
            account, token = self._check_login(request)
        except (AuthenticationError, RateLimited) as exc:
            session.login_failed()
            log.warning(
                "login failed for %r from %s: %s",
                request.user[:40],
                self.peer.described(),
                exc.code,
            )
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            raise Closing(
                "login failed", Error(code=exc.code, message=exc.message, retry_after=retry)
            ) from None
        except SecureChatError as exc:  # the server's trouble (its database), not the user's
            session.login_failed()
            log.error(
                "login of %r from %s failed: %s",
                request.user[:40],
                self.peer.described(),
                exc.message,
            )
            raise Closing(
                "login failed", Error(code=ErrorCode.SERVER_ERROR, message=SERVER_ERROR_TEXT)
            ) from None
        try:
            self._on_authenticated(account)
        except TooManySessions as exc:
            session.login_failed()
            log.warning(
                "login refused for %s from %s: %s", account.name, self.peer.described(), exc.message
            )
            raise Closing("too many sessions", Error(code=exc.code, message=exc.message)) from None
        self.account, self._token = account, token
        session.login_succeeded(account.name)
        self._reply(self._service.welcome(self._caller, token))
        how = "resume token" if request.token is not None else "password"
        how = "device" if request.device else how
        log.info("login %s from %s (%s)", account.name, self.peer.described(), how)
        if request.remember and self._devices is not None and self._user_agent is not None:
            self._reply(self._devices.grant(account, self._user_agent))
