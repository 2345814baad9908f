"""The server's view of one connection, without I/O.

Theory of operation: the connection's thread feeds every byte it reads to
:meth:`ServerSession.receive_data` (or, on a message-based transport such as a WebSocket,
every whole message to :meth:`ServerSession.receive_message`) and then pulls requests with
:meth:`ServerSession.next_request` until it returns None. Each item is either a valid
request that the current state allows, or a :class:`ProtocolError` to answer with an
``error`` frame. A fatal error (lost framing, anything before login) moves the session to
CLOSED; the caller sends the error and closes. When an ``auth`` request comes out, the
session pauses (AUTHENTICATING) and yields nothing more, even if the client pipelined
further frames, until the caller reports the outcome with :meth:`login_succeeded` or
:meth:`login_failed`. A caller that meters frames before paying for their JSON takes the
two steps of ``next_request`` itself: :meth:`next_frame`, then :meth:`decode`. Everything
that decides what a peer may send lives in ``ALLOWED``.
"""

from __future__ import annotations

import collections
import enum

from securechat.errors import ErrorCode, FrameTooLarge, ProtocolError, UnexpectedMessage
from securechat.protocol.devices import ListDevices, SignOutDevice, SignOutEverywhere
from securechat.protocol.files import AskFileTicket
from securechat.protocol.frames import FrameDecoder
from securechat.protocol.membership import GetInvitations, GetMembers
from securechat.protocol.messages import (
    Auth,
    Bye,
    Create,
    Delete,
    Edit,
    GetCA,
    GetConversations,
    GetPeople,
    GetUnread,
    History,
    Join,
    Leave,
    ListRooms,
    MarkRead,
    Moderate,
    Ping,
    Pong,
    Request,
    Search,
    Send,
    Sync,
    Who,
    decode_request,
)


class State(enum.Enum):
    AWAITING_AUTH = "awaiting_auth"
    AUTHENTICATING = "authenticating"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


ALLOWED: dict[State, frozenset[type[Request]]] = {
    State.AWAITING_AUTH: frozenset({Auth, Bye, GetCA}),
    State.AUTHENTICATING: frozenset(),
    State.AUTHENTICATED: frozenset(
        {Join, Leave, ListRooms, Send, History, Sync, Who, Ping, Pong, Bye}
        | {Create, Moderate, Edit, Delete, MarkRead, GetUnread, Search}  # #16
        | {GetConversations, GetPeople, ListDevices, SignOutDevice, SignOutEverywhere}  # #26
        | {AskFileTicket}  # #27
        | {GetInvitations, GetMembers}  # #26
    ),
    State.CLOSED: frozenset(),
}


class ServerSession:
    """Frames in, validated requests out, with the login state machine."""

    __slots__ = ("_decoder", "_max_frame", "_payloads", "state", "user")

    def __init__(self, *, max_frame: int) -> None:
        self._decoder = FrameDecoder(max_frame)
        self._max_frame = max_frame
        self._payloads: collections.deque[bytes] = collections.deque()  # receive_message()'s
        self.state = State.AWAITING_AUTH
        self.user: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.state is State.AUTHENTICATED

    @property
    def buffered(self) -> int:
        return self._decoder.buffered + sum(map(len, self._payloads))

    def receive_data(self, data: bytes) -> None:
        self._decoder.feed(data)

    def receive_message(self, payload: bytes) -> None:
        """Take one whole payload from a message-based transport (no length prefix).

        It is judged like a frame: empty or over ``max_frame`` is ``frame_too_large``.
        """
        self._payloads.append(payload)

    def next_request(self) -> Request | ProtocolError | None:
        """The next request or error, or None when more bytes are needed or login is pending."""
        frame = self.next_frame()
        return self.decode(frame) if isinstance(frame, bytes) else frame

    def next_frame(self) -> bytes | ProtocolError | None:
        """The next frame's payload, not yet decoded; None as for :meth:`next_request`.

        A :class:`FrameTooLarge` comes back as an item, as from :meth:`next_request`.
        """
        if self.state in (State.AUTHENTICATING, State.CLOSED):
            return None
        try:
            return self._next_payload()
        except ProtocolError as exc:  # FrameTooLarge: framing is lost
            self.state = State.CLOSED
            return exc

    def _next_payload(self) -> bytes | None:
        if not self._payloads:
            return self._decoder.next_frame()
        payload = self._payloads.popleft()
        if not 0 < len(payload) <= self._max_frame:
            self._payloads.clear()
            raise FrameTooLarge(
                f"message length {len(payload)} is outside 1..{self._max_frame} bytes"
            )
        return payload

    def decode(self, payload: bytes) -> Request | ProtocolError:
        """The request in a payload from :meth:`next_frame`, or the error it makes."""
        assert self.state in (State.AWAITING_AUTH, State.AUTHENTICATED), self.state
        try:
            request = decode_request(payload)
        except ProtocolError as exc:
            if exc.is_fatal or self.state is State.AWAITING_AUTH:
                self.state = State.CLOSED
            return exc
        if type(request) not in ALLOWED[self.state]:
            return self._refuse(request)
        if isinstance(request, Auth):
            self.state = State.AUTHENTICATING
        elif isinstance(request, Bye):
            self.state = State.CLOSED
        return request

    def _refuse(self, request: Request) -> ProtocolError:
        if self.state is State.AWAITING_AUTH:
            self.state = State.CLOSED
            return UnexpectedMessage(
                f"log in first: {request.TYPE!r} is not allowed before 'auth'",
                code=ErrorCode.AUTH_REQUIRED,
                ref=getattr(request, "ref", None),
            )
        return UnexpectedMessage(
            f"{request.TYPE!r} is not allowed now", ref=getattr(request, "ref", None)
        )

    def login_succeeded(self, user: str) -> None:
        assert self.state is State.AUTHENTICATING, self.state
        self.state, self.user = State.AUTHENTICATED, user

    def login_failed(self) -> None:
        self.state = State.CLOSED

    def close(self) -> None:
        self.state = State.CLOSED
