"""A chat server in memory, for testing :class:`ClientSession` with no network (h11 style).

Each :class:`MemoryConnection` parses what a client sends with the real
:class:`ServerSession` (framing, validation, the login gate) and answers from a tiny model
of users, rooms and stored messages. :func:`exchange` moves bytes both ways between a
client session and its connection until neither has anything left to say. Faults are
switches on the server: refuse the next sends with a code, drop acks, page ``sync``.
"""

from __future__ import annotations

import dataclasses
import itertools

from securechat.errors import ErrorCode, ProtocolError
from securechat.protocol.client import ClientSession, SessionEvent
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import (
    Ack,
    Auth,
    Bye,
    CACertificate,
    Error,
    Event,
    GetCA,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Message,
    Online,
    Ping,
    Pong,
    Request,
    RoomInfo,
    RoomList,
    Send,
    Sync,
    Synced,
    Welcome,
    Who,
    encode,
)
from securechat.protocol.session import ServerSession, State

PASSWORD = "correct horse battery"
TS = "2026-12-04T10:00:00.000Z"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@dataclasses.dataclass
class MemoryServer:
    users: tuple[str, ...] = ("alice", "bob")
    sync_page: int = 1000
    heartbeat: int = 30
    protocol: int = 1
    refuse_sends: list[str] = dataclasses.field(default_factory=list)  # codes, next sends first
    drop_acks: int = 0  # store the next sends but lose their acks
    messages: list[Message] = dataclasses.field(default_factory=list)
    rooms: dict[str, set[str]] = dataclasses.field(default_factory=lambda: {"general": set()})
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)  # token -> user
    refs: dict[tuple[str, str], Message] = dataclasses.field(default_factory=dict)
    connections: list[MemoryConnection] = dataclasses.field(default_factory=list)
    received: list[Request] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        for user in self.users:
            self.rooms["general"].add(user)

    def connect(self) -> MemoryConnection:
        connection = MemoryConnection(self)
        self.connections.append(connection)
        return connection

    def store(
        self, sender: str, body: str, *, room: str | None = None, to: str | None = None
    ) -> Message:
        message = Message(id=next(self._ids), sender=sender, body=body, ts=TS, room=room, to=to)
        self.messages.append(message)
        return message

    def issue_token(self, user: str) -> str:
        token = f"token-{next(self._tokens)}"
        self.tokens[token] = user
        return token

    def deliver(self, message: Message, exclude: MemoryConnection | None = None) -> None:
        for connection in self.connections:
            user = connection.session.user
            if connection is exclude or connection.closed or user is None:
                continue
            if self.visible(message, user):
                connection.push(message)

    def visible(self, message: Message, user: str) -> bool:
        if message.room is not None:
            return user in self.rooms.get(message.room, set())
        return user in (message.sender, message.to)


class MemoryConnection:
    """The server's end of one connection: bytes in, answers out."""

    def __init__(self, server: MemoryServer) -> None:
        self.server = server
        self.session = ServerSession(max_frame=65536)
        self.closed = False
        self._out: list[bytes] = []
        self.push(Hello(protocol=server.protocol, server="memory", max_frame=65536,
                        heartbeat=server.heartbeat))  # fmt: skip

    def push(self, event: Event) -> None:
        self._out.append(encode_frame(encode(event)))

    def push_raw(self, payload: bytes) -> None:
        self._out.append(encode_frame(payload))

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> None:
        self.session.receive_data(data)
        while (item := self.session.next_request()) is not None:
            if isinstance(item, ProtocolError):
                self.push(Error(code=item.code, message=item.message, ref=item.ref))
                continue
            self.server.received.append(item)
            self._answer(item)
        if self.session.state is State.CLOSED:
            self.closed = True

    def _answer(self, request: Request) -> None:
        server = self.server
        if isinstance(request, Auth):
            self._login(request)
            return
        user = self.session.user or ""
        if isinstance(request, Send):
            self._send(request, user)
        elif isinstance(request, Join):
            server.rooms.setdefault(request.room, set()).add(user)
            members = tuple(sorted(server.rooms[request.room]))
            self.push(Joined(room=request.room, members=members, online=(user,), ref=request.ref))
        elif isinstance(request, Leave):
            if user not in server.rooms.get(request.room, set()):
                self.push(Error(code=ErrorCode.NOT_MEMBER, message="not in it", ref=request.ref))
                return
            server.rooms[request.room].discard(user)
            self.push(Left(room=request.room, ref=request.ref))
        elif isinstance(request, ListRooms):
            infos = tuple(
                RoomInfo(name=name, members=len(members), joined=user in members)
                for name, members in sorted(server.rooms.items())
            )
            self.push(RoomList(rooms=infos, ref=request.ref))
        elif isinstance(request, Who):
            self.push(Online(online=tuple(sorted(server.users)), ref=request.ref))
        elif isinstance(request, History):
            self._history(request, user)
        elif isinstance(request, Sync):
            self._sync(request, user)
        elif isinstance(request, Ping):
            self.push(Pong(ref=request.ref))
        elif isinstance(request, GetCA):
            self.push(CACertificate(pem=CA_PEM, ref=request.ref))
        elif isinstance(request, Bye):
            self.push(Bye(reason="bye", ref=request.ref))
            self.closed = True

    def _login(self, request: Auth) -> None:
        server = self.server
        if request.token is not None:
            ok = server.tokens.get(request.token) == request.user
        else:
            ok = request.user in server.users and request.password == PASSWORD
        if not ok:
            self.session.login_failed()
            self.push(Error(code=ErrorCode.AUTH_FAILED, message="invalid user name or password"))
            self.closed = True
            return
        self.session.login_succeeded(request.user)
        rooms = tuple(sorted(r for r, members in server.rooms.items() if request.user in members))
        last_id = server.messages[-1].id if server.messages else 0
        token = request.token or server.issue_token(request.user)
        self.push(Welcome(user=request.user, rooms=rooms, last_id=last_id, token=token))

    def _send(self, request: Send, user: str) -> None:
        server = self.server
        assert request.ref is not None
        if server.refuse_sends:
            code = server.refuse_sends.pop(0)
            retry = 0.5 if code == ErrorCode.RATE_LIMITED else None
            self.push(Error(code=code, message=f"refused: {code}", ref=request.ref,
                            retry_after=retry))  # fmt: skip
            return
        if request.to is not None and request.to not in server.users:
            self.push(Error(code=ErrorCode.NO_SUCH_USER, message="no such user", ref=request.ref))
            return
        if request.room is not None and user not in server.rooms.get(request.room, set()):
            self.push(Error(code=ErrorCode.NOT_MEMBER, message="join it", ref=request.ref))
            return
        key = (user, request.ref)
        stored = server.refs.get(key)
        if stored is None:
            stored = server.refs[key] = server.store(user, request.body, room=request.room,
                                                     to=request.to)  # fmt: skip
            server.deliver(stored, exclude=self)
        if server.drop_acks:
            server.drop_acks -= 1
            return
        self.push(Ack(id=stored.id, ts=stored.ts, ref=request.ref))

    def _history(self, request: History, user: str) -> None:
        server = self.server
        if request.room is not None:
            found = [m for m in server.messages if m.room == request.room]
        else:
            found = [
                m
                for m in server.messages
                if m.room is None and {m.sender, m.to} == {user, request.peer}
            ]
        found = [m for m in found if request.before is None or m.id < request.before]
        limit = request.limit or 50
        page = found[-limit:]
        self.push(HistoryPage(messages=tuple(page), more=len(found) > limit, ref=request.ref))

    def _sync(self, request: Sync, user: str) -> None:
        server = self.server
        found = [m for m in server.messages if m.id > request.since and server.visible(m, user)]
        page = found[: server.sync_page]
        for message in page:
            self.push(message)
        more = len(found) > len(page)
        last_id = page[-1].id if more else (server.messages[-1].id if server.messages else 0)
        self.push(Synced(last_id=max(last_id, request.since), more=more, ref=request.ref))


def exchange(
    client: ClientSession, connection: MemoryConnection, *, now: float = 0.0
) -> list[SessionEvent | Event]:
    """Move bytes both ways until both ends are quiet; return the client's events."""
    events: list[SessionEvent | Event] = []
    for _ in range(1000):
        to_server = client.data_to_send()
        if to_server and not connection.closed:
            connection.receive_data(to_server)
        to_client = connection.data_to_send()
        if to_client:
            client.receive_data(to_client, now)
        events.extend(client.events_received())
        if not to_server and not to_client:
            return events
    raise AssertionError("the two ends never stopped talking")


def connect(
    client: ClientSession, server: MemoryServer, *, now: float = 0.0
) -> tuple[MemoryConnection, list[SessionEvent | Event]]:
    """Open a new in-memory connection for ``client`` and run it until quiet."""
    connection = server.connect()
    client.connection_made(now)
    return connection, exchange(client, connection, now=now)


def drop(
    client: ClientSession, connection: MemoryConnection, reason: str = "reset"
) -> list[SessionEvent | Event]:
    """The transport breaks (nothing more is delivered either way)."""
    connection.closed = True
    client.connection_lost(reason)
    return client.events_received()
