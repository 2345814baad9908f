"""The blocking ``Client``: one user's chat session, usable from any thread.

Each method asks the server one thing and waits for the answer (or raises); ``submit``
queues a message and returns at once. The work happens elsewhere: the protocol in the
sans-I/O :class:`ClientSession` (securechat/protocol/client.py), the socket in the I/O
thread of a :class:`Connection` (client/connection.py).
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self, TypeVar

from securechat.client.connection import Connection, SessionView, view_of
from securechat.client.events import Backoff, ClientEvent
from securechat.client.link import Endpoint, nodes
from securechat.client.outgoing import Outgoing, Slot, request_error
from securechat.client.paging import every_page
from securechat.client.shared_files import SharedFiles
from securechat.client.team_rooms import TeamRooms
from securechat.client.trust import trusted_context
from securechat.config import DEFAULT_PORT
from securechat.errors import ConnectionLost
from securechat.protocol.client import ClientSession
from securechat.protocol.messages import (
    Ack,
    Asked,
    Conversation,
    ConversationList,
    Delete,
    Edit,
    Event,
    GetConversations,
    GetPeople,
    GetUnread,
    History,
    HistoryPage,
    Join,
    Joined,
    Journal,
    Leave,
    Left,
    ListRooms,
    MarkRead,
    Online,
    PeopleList,
    Person,
    ReadMarker,
    RoomInfo,
    RoomList,
    Search,
    SearchResults,
    Sync,
    Synced,
    UnreadList,
    Who,
)

__all__ = ["Client"]

T = TypeVar("T", bound=Event)


class Client(TeamRooms, SharedFiles):
    """A blocking client. ``connect()``, then call methods from any thread.

    Raises (from the methods): :class:`ConnectionLost` when not connected or no reply came
    in time, and the :class:`RequestError` subclass matching a server refusal.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        ca_file: Path,
        ca_fingerprint: str | None = None,
        user: str,
        password: str,
        reconnect: bool = False,
        timeout: float = 10.0,
        server_name: str | None = None,
        heartbeat: float | None = None,
        backoff: Backoff | None = None,
        also: Sequence[str] = (),
    ) -> None:
        """``also``: more nodes of the same service (``host`` or ``host:port``, the port
        defaulting to ``port``), tried in turn when one cannot be reached."""
        self._endpoints = nodes(host, port, also, Path(ca_file), server_name)
        self._endpoint = self._endpoints[0]
        self._ca_fingerprint = ca_fingerprint
        self._reconnect = reconnect
        self._timeout = timeout
        self._backoff = backoff or Backoff()
        self._session = ClientSession(
            user, password=password, send_prefix=secrets.token_hex(8), heartbeat=heartbeat
        )
        self._connection: Connection | None = None
        self._context: ssl.SSLContext | None = None  # also dials the web port for files

    # --- what callers may read --------------------------------------------------------

    # The session is shared with the I/O thread once connected: read it under the lock
    # its Connection holds for it (Connection.view), never directly.

    @property
    def user(self) -> str:
        """The canonical user name (as the server spelled it in ``welcome``)."""
        return self._view().user

    @property
    def rooms(self) -> tuple[str, ...]:
        return self._view().rooms

    @property
    def last_id(self) -> int:
        """The newest message id this client has seen."""
        return self._view().last_id

    @property
    def server(self) -> str:
        """The server's free-form ``hello`` string, e.g. ``securechat 0.1.0``."""
        return self._view().server

    @property
    def address(self) -> str:
        """``host:port`` of the node connected to (or tried last), one of several given."""
        return self._connection.endpoint.label if self._connection else self._endpoint.label

    @property
    def is_connected(self) -> bool:
        return self._view().is_ready

    @property
    def unacknowledged(self) -> list[Outgoing]:
        """Sends not yet acknowledged, oldest first."""
        return self._connection.unacknowledged if self._connection else []

    def _view(self) -> SessionView:
        if self._connection is None:  # not started: no other thread has the session yet
            return view_of(self._session)
        return self._connection.view()

    # --- lifecycle -------------------------------------------------------------------

    def connect(self) -> Self:
        """Connect and log in, then start the I/O thread. Returns ``self``.

        Raises:
            CertificateError: ``ca_file`` is not exactly one CA certificate (the one with
                ``ca_fingerprint``, when given): see ``trust.trusted_context``.
            ConnectionLost, CertificateError, AuthenticationError, RateLimited,
            UnexpectedMessage: see :func:`securechat.client.link.log_in`.
        """
        if self._connection is not None:
            raise ConnectionLost("this client has already connected once; make a new Client")
        context = self._context = trusted_context(
            self._endpoint.ca_file, ca_fingerprint=self._ca_fingerprint
        )
        self._connection = Connection(
            self._endpoints, self._session, context,
            reconnect=self._reconnect, timeout=self._timeout, backoff=self._backoff,
        )  # fmt: skip
        self._connection.start()
        return self

    def close(self) -> None:
        """Say ``bye`` and stop the I/O thread; pending requests fail. Idempotent."""
        if self._connection is not None:
            self._connection.close()

    def __enter__(self) -> Self:
        return self.connect() if self._connection is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------------

    def join(self, room: str, *, create: bool = True) -> Joined:
        """Join ``room``, creating it (ownerless) if needed; with ``create=False`` only if
        it exists (:meth:`create` makes a room you own).

        Raises:
            NoSuchRoom: not ``create`` and no such room, or a private one you are not in.
        """
        return self._request(Join(room=room, create=None if create else False), Joined)

    def leave(self, room: str) -> Left:
        return self._request(Leave(room=room), Left)

    def list_rooms(self) -> tuple[RoomInfo, ...]:
        """Every room on the server, with member counts and whether we are in it."""

        def page(after: str | None) -> tuple[tuple[RoomInfo, ...], bool]:
            reply = self._request(ListRooms(after=after), RoomList)
            return reply.rooms, reply.more

        return every_page(page, key=lambda room: room.name)

    def who(self) -> tuple[str, ...]:
        """Every user online now."""
        return self._request(Who(), Online).online

    def history(
        self,
        room: str | None = None,
        *,
        peer: str | None = None,
        before: int | None = None,
        limit: int | None = None,
        after: int | None = None,
        events: bool = False,
    ) -> HistoryPage:
        """The newest ``limit`` messages (oldest first) of a room or of a conversation with
        ``peer``; with ``after`` (e.g. a read marker), the oldest ``limit`` after that id.
        Messages come as they are now: ``edited`` set, or a ``deleted`` tombstone. With
        ``events``, a room's page holds its room events too, in id order."""
        request = History(
            room=room, peer=peer, before=before, limit=limit, after=after, events=events or None
        )
        return self._request(request, HistoryPage)

    # --- #16: edits and read state (rooms a team runs: team_rooms.py) -----------------

    def edit(self, message_id: int, body: str) -> Ack:
        """Replace the text of our own message; the ack's ``id`` is the edit's place in
        the journal.

        Raises:
            NoSuchMessage: no message of that id that we can see. Forbidden: not ours.
        """
        return self._request(Edit(id=message_id, body=body), Ack)

    def delete(self, message_id: int) -> Ack:
        """Delete a message: ours, or any in a room we moderate. It becomes a tombstone.

        Raises:
            NoSuchMessage: no message of that id that we can see. Forbidden: not allowed.
        """
        return self._request(Delete(id=message_id), Ack)

    def mark_read(
        self, message_id: int, *, room: str | None = None, peer: str | None = None
    ) -> ReadMarker:
        """Everything up to ``message_id`` in a room or the conversation with ``peer`` is
        read (on every device); returns the marker as it is now (it never moves back)."""
        if (room is None) == (peer is None):
            raise ValueError("give exactly one of room= or peer=")
        return self._request(MarkRead(id=message_id, room=room, peer=peer), ReadMarker)

    def unread(self) -> tuple[Conversation, ...]:
        """Every conversation with unread messages: counts, mentions and read markers."""

        def page(after: str | None) -> tuple[tuple[Conversation, ...], bool]:
            reply = self._request(GetUnread(after=after), UnreadList)
            return reply.conversations, reply.more

        return every_page(page, key=lambda conversation: conversation.key)

    def conversations(self) -> tuple[Conversation, ...]:
        """Every conversation you have, read or not, with its counts and newest message:
        the same list on every device (``unread`` lists only those with news)."""

        def page(after: str | None) -> tuple[tuple[Conversation, ...], bool]:
            reply = self._request(GetConversations(after=after), ConversationList)
            return reply.conversations, reply.more

        return every_page(page, key=lambda conversation: conversation.key)

    def people(self) -> tuple[Person, ...]:
        """Everyone who may log in, by name: online, or when last seen."""

        def page(after: str | None) -> tuple[tuple[Person, ...], bool]:
            reply = self._request(GetPeople(after=after), PeopleList)
            return reply.people, reply.more

        return every_page(page, key=lambda person: person.name)

    def search(
        self, query: str, *, before: int | None = None, limit: int | None = None
    ) -> SearchResults:
        """Messages you may read whose text holds ``query`` (3 to 200 characters, any case),
        newest first, each with its room or peer and time. For the next page, pass
        ``next_before`` as ``before`` while ``more`` is true (older than the last message
        when ``cut``: the server's work limit for one search ended the page early).

        Raises:
            MalformedMessage: ``query`` is too short or too long (code ``bad_request``).
        """
        return self._request(Search(query=query, before=before, limit=limit), SearchResults)

    def sync(self, since: int | None = None) -> list[Journal]:
        """Everything visible after ``since`` (default: the last id seen), in id order:
        messages, and the edits, deletions and room events that share their id sequence.

        What is returned is not repeated on :meth:`events`.
        """
        since = self.last_id if since is None else since
        found: dict[int, Journal] = {}
        while True:
            slot = self._live().ask(Sync(since=since), collect=True)
            reply = self._reply(slot, Synced)
            found.update((m.id, m) for m in slot.messages if m.id > since and m.id not in found)
            if not reply.more:
                return list(found.values())
            since = reply.last_id

    def submit(
        self, body: str, *, room: str | None = None, to: str | None = None,
        files: Sequence[str] = (),
    ) -> Outgoing:  # fmt: skip
        """Queue a message to a room or a user and return at once; see :class:`Outgoing`.
        ``files``: ids from :meth:`upload` it carries (``body`` is then its caption).

        With ``reconnect=True`` it is kept, and resent, until the server acknowledges it.
        """
        if (room is None) == (to is None):
            raise ValueError("give exactly one of room= or to=")
        return self._live().submit(body, room=room, to=to, files=tuple(files))

    def send(
        self, body: str, *, room: str | None = None, to: str | None = None,
        files: Sequence[str] = (), timeout: float = 30.0,
    ) -> int:  # fmt: skip
        """Send and wait for the server's ack; returns the stored message's id."""
        return self.submit(body, room=room, to=to, files=files).wait(timeout).id

    def events(self, timeout: float | None = None) -> Iterator[ClientEvent]:
        """Yield pushed and local events until the client closes (or ``timeout`` passes idle)."""
        while (event := self.next_event(timeout)) is not None:
            yield event

    def next_event(self, timeout: float | None = None) -> ClientEvent | None:
        """The next event, or None after ``timeout`` seconds or once the client has closed."""
        return self._connection.next_event(timeout) if self._connection else None

    # --- inside ------------------------------------------------------------------------

    def _live(self) -> Connection:
        if self._connection is None:
            raise ConnectionLost("the client is not connected")
        return self._connection

    def _request(self, request: Asked, kind: type[T]) -> T:
        """Ask the server ``request`` and wait for its reply, of type ``kind``."""
        return self._reply(self._live().ask(request), kind)

    def _web_route(self) -> tuple[Endpoint, ssl.SSLContext, float]:
        connection = self._live()
        assert self._context is not None  # set with the connection
        return connection.endpoint, self._context, self._timeout

    def _max_file_size(self) -> int | None:
        return self._view().max_file_size

    def _reply(self, slot: Slot, kind: type[T]) -> T:
        if not slot.done.wait(self._timeout):
            self._live().forget(slot)
            raise ConnectionLost(f"no reply from the server within {self._timeout:.0f} s")
        if slot.error is not None:
            raise request_error(slot.error)
        reply = slot.reply
        assert isinstance(reply, kind), reply
        return reply
