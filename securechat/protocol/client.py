"""The client's side of protocol v1 without I/O: the mirror of :class:`ServerSession`.

Theory of operation: a :class:`ClientSession` is one user's login across every
connection it takes. Its driver (a thread that owns a socket, or a probe asking one
question) calls :meth:`~ClientSession.connection_made` once a transport is open, feeds
every byte read to :meth:`~ClientSession.receive_data`, writes what
:meth:`~ClientSession.data_to_send` returns, acts on :meth:`~ClientSession.events_received`,
calls :meth:`~ClientSession.tick` by :meth:`~ClientSession.next_deadline`, and calls
:meth:`~ClientSession.connection_lost` when the transport ends, whoever ended it. Time is
always passed in; nothing here reads a clock, a socket or a random source.

After ``hello`` the session logs in by itself when it has credentials: the password at
first, then the resume token from the last ``welcome`` (the password is dropped at the
first welcome, token or not; with no token, the next ``hello`` is a refused login). A login
on a later connection is a resumption: the session catches up with ``sync``
(:mod:`~securechat.protocol.catch_up`) and resends every send not yet acknowledged under
its original ``ref``, which the server de-duplicates (a first login sends what was
submitted before it; :mod:`~securechat.protocol.sends`). ``rooms`` follows the welcome,
``joined`` and ``left`` (a reply, or pushed on a kick, a ban or the room's deletion), a
``room_event`` ``delete``, and ``member_joined``/``member_left`` naming this user (its
other sessions).

The same rules, as scripted server streams, are tests/vectors/session*.json, which the
page's ``ChatSession`` (securechat/web/session.js) runs too.

Each :meth:`~ClientSession.request` gets a ``ref``; its answer comes back as one
:class:`Reply` (an ``error`` included; :mod:`~securechat.protocol.pending`). A send
refused with ``rate_limited`` or ``server_error`` is retried later under the same ``ref``.
A server event this version cannot decode (a newer server's) is ignored; a frame that
breaks framing, a malformed event, a ``bye`` or an unanswered heartbeat ends the
connection with :class:`ConnectionEnded`, after every event that came before it.
"""

from __future__ import annotations

import dataclasses
import itertools

from securechat.errors import FrameTooLarge, ProtocolError, UnknownMessageType
from securechat.protocol.catch_up import CatchUp
from securechat.protocol.client_events import (
    ConnectionEnded,
    Delivered,
    Greeted,
    LoggedIn,
    LoginRefused,
    Reply,
    SendFailed,
    SessionEvent,
)
from securechat.protocol.client_state import (
    MAY_ASK,
    TRANSITIONS,
    UNCONNECTED,
    State,
    Trigger,
)
from securechat.protocol.credentials import NO_RESUME_TOKEN, Credentials, unsupported_protocol
from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.protocol.heartbeat import PONG_TIMEOUT, Heartbeat
from securechat.protocol.messages import (
    Ack,
    Asked,
    Bye,
    Deleted,
    Edited,
    Error,
    Event,
    Hello,
    Joined,
    Journal,
    Left,
    MemberJoined,
    MemberLeft,
    Message,
    Ping,
    Pong,
    Request,
    RoomEvent,
    Send,
    Synced,
    Welcome,
    decode_event,
    encode,
)
from securechat.protocol.pending import Pending
from securechat.protocol.sends import Sends

#: Largest frame accepted from a server. A server bounds what it accepts by ``max_frame``,
#: but a message event holding a max_body of escaped text can be several times that.
MAX_EVENT_FRAME = 16 * 1024 * 1024


class ClientSession:
    """Bytes in, events out, bytes to send: one user's login, across reconnects."""

    def __init__(
        self,
        user: str | None,
        *,
        password: str | None = None,
        token: str | None = None,
        send_prefix: str = "s",
        heartbeat: float | None = None,
    ) -> None:
        """``user`` None: a probe that never logs in (it may ask for the CA after hello).

        ``send_prefix`` makes send refs unique across this user's clients (the driver
        passes a random one); ``heartbeat`` overrides the server's interval.
        """
        self.user = user
        self._credentials = Credentials(password, token)
        self.state = State.DISCONNECTED
        self.hello: Hello | None = None
        self.rooms: tuple[str, ...] = ()
        self._decoder = FrameDecoder(MAX_EVENT_FRAME)
        self._out: list[bytes] = []
        self._events: list[SessionEvent | Event] = []
        self._refs = itertools.count(1)  # the caller's requests and catch-ups
        self._pending = Pending()
        self._journal = CatchUp()
        self._sends = Sends(send_prefix)
        self._heartbeat = Heartbeat(heartbeat)

    # --- the driver's calls ---------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """A new transport is open: expect ``hello`` on it."""
        self._move(Trigger.CONNECTED)
        self._decoder = FrameDecoder(MAX_EVENT_FRAME)
        self._out.clear()
        self._heartbeat.heard(now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Take bytes read from the transport; the events they make wait in events_received()."""
        if self.state in UNCONNECTED or not data:
            return
        self._heartbeat.heard(now)
        self._decoder.feed(data)
        while self.state not in UNCONNECTED:
            try:
                payload = self._decoder.next_frame()
                if payload is None:
                    return
                event = decode_event(payload)
            except UnknownMessageType:
                continue  # a newer server's event: ignore it, as the protocol promises
            except FrameTooLarge as exc:
                self._end(f"the server sent an oversized frame ({exc.message})")
                return
            except ProtocolError as exc:  # MalformedMessage
                self._end(f"the server sent an invalid message ({exc.message})")
                return
            self._dispatch(event, now)

    def data_to_send(self) -> bytes:
        """Everything queued for the transport since the last call."""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def events_received(self) -> list[SessionEvent | Event]:
        """Events since the last call, in order: ours and the server's pushed ones."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (monotonic seconds), or None for never."""
        due = self._heartbeat.next_deadline()
        if self.state is not State.READY or due is None:
            return None
        retry = self._sends.next_due()
        return due if retry is None else min(due, retry)

    def tick(self, now: float) -> None:
        """Send the heartbeat and retries that are due; end a connection gone silent."""
        if self.state is not State.READY:
            return
        if self._heartbeat.is_dead(now):
            self._end(f"the server stopped answering for {PONG_TIMEOUT:.0f} s")
            return
        if self._heartbeat.ping_due(now):
            self._queue(Ping(ref="hb"))
        self._out.extend(self._sends.due(now))

    def connection_lost(self, reason: str) -> None:
        """The transport ended: fail requests in flight; sends wait for the next login."""
        if self.state is State.DISCONNECTED:
            return
        self._move(Trigger.LOST)
        self._journal.cancel()
        self._sends.cancel_retries()  # the next login resends every unacknowledged send
        self._out.clear()
        self._events.extend(self._pending.fail_all(reason))

    # --- the caller's calls ---------------------------------------------------------

    @property
    def last_id(self) -> int:
        """The last journal id seen: where the next catch-up starts."""
        return self._journal.last_id

    @last_id.setter
    def last_id(self, message_id: int) -> None:
        self._journal.last_id = message_id

    @property
    def is_ready(self) -> bool:
        return self.state is State.READY

    @property
    def can_log_in(self) -> bool:
        """Whether a new connection could log in: a password not used yet, or a token."""
        return self.user is not None and self._credentials.is_usable

    @property
    def holds_password(self) -> bool:
        """Whether the password is still kept (until the first ``welcome``)."""
        return self._credentials.holds_password

    @property
    def token(self) -> str | None:
        """The resume token from the last ``welcome``."""
        return self._credentials.token

    def request(self, request: Asked, *, collect: bool = False) -> str:
        """Queue ``request`` under a new ``ref`` and return the ref its Reply will carry.

        Allowed when logged in, and before login when greeted without credentials (a
        probe's ``ca``). ``collect``: the messages arriving until the reply (a ``sync``'s)
        go into it instead of out as events.
        """
        assert self.state in MAY_ASK, self.state
        ref = f"c-{next(self._refs)}"
        self._pending.add(ref, collect=collect)
        self._queue(dataclasses.replace(request, ref=ref))
        return ref

    def submit(
        self, body: str, *, room: str | None = None, to: str | None = None,
        files: tuple[str, ...] = (),
    ) -> Send:  # fmt: skip
        """Queue a chat message (carrying the uploads ``files``); it is kept, and resent,
        until acknowledged or refused."""
        if (room is None) == (to is None):
            raise ValueError("give exactly one of room= or to=")
        send, frame = self._sends.add(body, room=room, to=to, files=files)
        if self.state is State.READY:
            self._out.append(frame)
        return send

    @property
    def unacknowledged(self) -> list[Send]:
        """Sends not yet acknowledged, oldest first."""
        return self._sends.unacknowledged

    def close(self) -> None:
        """Say ``bye``; the driver flushes it briefly, closes, then calls connection_lost()."""
        if self.state not in UNCONNECTED:
            self._queue(Bye(ref="bye"))
        self._move(Trigger.CLOSE)

    def abandon(self) -> list[Send]:
        """Give up every unacknowledged send (the client is closing); returns them."""
        return self._sends.abandon()

    # --- inside -----------------------------------------------------------------------

    def _move(self, trigger: Trigger) -> None:
        next_state = TRANSITIONS[self.state].get(trigger)
        assert next_state is not None, f"{trigger} in {self.state}"
        self.state = next_state

    def _queue(self, message: Request) -> None:
        self._out.append(encode_frame(encode(message)))

    def _end(self, reason: str) -> None:
        self.connection_lost(reason)  # answers the requests in flight...
        self._events.append(ConnectionEnded(reason))  # ...so that this comes last

    def _dispatch(self, event: Event, now: float) -> None:
        if isinstance(event, Message | RoomEvent | Edited | Deleted):
            self._receive_journal(event)
        elif isinstance(event, Ping):
            self._queue(Pong(ref=event.ref))
        elif isinstance(event, Bye):
            why = "the server is restarting" if event.reason == "shutting_down" else event.reason
            self._end(why or "the server closed the connection")
        elif self.state is State.AWAITING_HELLO:
            self._on_hello(event)
        elif self.state is State.AUTHENTICATING:
            self._on_login(event)
        elif isinstance(event, Ack):
            self._acknowledge(event)
        elif isinstance(event, Error):
            self._refused(event, now)
        elif isinstance(event, Synced) and self._journal.is_answered_by(event):
            if (more_from := self._journal.synced(event)) is not None:
                self._catch_up(more_from)
        elif not self._answer(event) and not isinstance(event, Pong):  # a heartbeat's pong
            self._follow_rooms(event)
            self._events.append(event)  # pushed: presence, joins, and what later versions add

    def _on_hello(self, event: Event) -> None:
        if not isinstance(event, Hello):
            self._end("the server did not greet like a securechat server")
            return
        self.hello = event
        self._heartbeat.greeted(event)
        if (unsupported := unsupported_protocol(event)) is not None:
            self._refuse(LoginRefused(unsupported, with_token=False), unsupported.message)
            return
        self._events.append(Greeted(event))
        if self.user is None:
            self._move(Trigger.GREETED)
            return
        if not self.can_log_in:  # the password went at a welcome that brought no token
            self._refuse(LoginRefused(NO_RESUME_TOKEN, with_token=False), NO_RESUME_TOKEN.message)
            return
        self._move(Trigger.LOGIN_SENT)
        self._queue(self._credentials.auth(self.user))

    def _on_login(self, event: Event) -> None:
        if isinstance(event, Error):
            self._refuse(self._credentials.refused(event), f"login refused: {event.message}")
            return
        if not isinstance(event, Welcome):
            self._end(f"the server answered the login with {event.TYPE!r}")
            return
        resumed = self._credentials.welcomed(event)
        self.user, self.rooms = event.user, event.rooms
        if not resumed:
            self.last_id = event.last_id
        self._move(Trigger.WELCOMED)
        self._events.append(LoggedIn(event, resumed))
        if resumed:
            self._catch_up(self.last_id)
        self._out.extend(self._sends.frames())  # resends, or early sends

    def _refuse(self, refused: LoginRefused, reason: str) -> None:
        self._events.append(refused)
        self._end(reason)

    def _follow_rooms(self, pushed: Event) -> None:
        """Removed from a room (kicked, banned, deleted: ``left``), or joined or left it
        in another session of this user (``member_joined``/``member_left`` naming us)."""
        if isinstance(pushed, Left) or (
            isinstance(pushed, MemberLeft) and pushed.user == self.user
        ):
            self.rooms = tuple(r for r in self.rooms if r != pushed.room)
        elif isinstance(pushed, MemberJoined) and pushed.user == self.user:
            self.rooms = tuple(sorted({*self.rooms, pushed.room}))

    def _catch_up(self, since: int) -> None:
        self._queue(self._journal.start(since, f"catch-up-{next(self._refs)}"))

    def _receive_journal(self, event: Journal) -> None:
        """A message, an edit, a deletion or a room event: each has its id in one sequence."""
        is_new = self._journal.receive(event)
        if isinstance(event, RoomEvent) and is_new and event.action == "delete":
            self.rooms = tuple(r for r in self.rooms if r != event.room)
        if not self._pending.collect(event) and is_new:
            self._events.append(event)

    def _acknowledge(self, ack: Ack) -> None:
        delivered = self._sends.delivered(ack, self.user)
        if delivered is None:
            # An edit's or a deletion's: its id is the change's, which a catch-up would
            # repeat. Else a duplicate ack after a resend, or a stray one: dropped.
            if self._answer(ack):
                self._journal.mark_seen(ack.id)
            return
        self._journal.mark_seen(ack.id)
        self._events.append(delivered)

    def _refused(self, error: Error, now: float) -> None:
        send = self._sends.get(error.ref)
        if send is None:
            if not self._answer(error):
                self._events.append(error)
            return
        if (failed := self._sends.refused(send, error, now)) is not None:
            self._events.append(failed)

    def _answer(self, event: Event) -> bool:
        """Hand ``event`` to the request its ``ref`` names; False if none is waiting."""
        reply = self._pending.answer(event)
        if reply is None:
            return False
        if isinstance(event, Joined):
            self.rooms = tuple(sorted({*self.rooms, event.room}))
        elif isinstance(event, Left):
            self.rooms = tuple(r for r in self.rooms if r != event.room)
        self._events.append(reply)
        return True


__all__ = [
    "MAX_EVENT_FRAME",
    "MAY_ASK",
    "TRANSITIONS",
    "ClientSession",
    "ConnectionEnded",
    "Delivered",
    "Greeted",
    "LoggedIn",
    "LoginRefused",
    "Reply",
    "SendFailed",
    "SessionEvent",
    "State",
    "Trigger",
]
