"""Rooms, memberships and message history: the queries the chat server runs.

Every method opens its own session, so one ``ChatStore`` may be shared by all threads.
Results are frozen values; ORM rows never leave ``store``. :meth:`ChatStore.save_messages`
is the group commit's write (``messages.py``); :meth:`ChatStore.perform` runs one team
operation (``rooms.py``, ``moderation.py``, ``edits.py``, ``reads.py``) in a transaction
of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.config import Limits
from securechat.store import reads, rooms, roster, search, sync, users
from securechat.store.commit_order import lock_commit_order
from securechat.store.database import Database
from securechat.store.journal import Actor, Tx
from securechat.store.message_rows import MESSAGES, NewMessage, SaveResult, StoredMessage, stored
from securechat.store.messages import MessageWriter
from securechat.store.models import AuditEntry, ChatMessage, Membership, Room, User, utcnow
from securechat.store.news import News, announce, last_news_id, news_after, news_of
from securechat.store.search import SearchPage

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: dt.datetime
    actor: str
    action: str
    room: str | None
    target: str | None
    message_id: int | None
    detail: str | None


_LAST_ID = select(func.max(ChatMessage.id))


class ChatStore:
    def __init__(
        self,
        database: Database,
        *,
        sqlite_cursor: bool | None = None,
        origin: str | None = None,
        ref_window: float | None = None,
    ) -> None:
        """``sqlite_cursor``: how the group commit adds rows (see :class:`MessageWriter`);
        ``origin``: the writer's name on every journal row (NULL: the command line);
        ``ref_window``: how long a send's ref names its first copy (default:
        ``Limits.send_ref_window``)."""
        self._db = database
        self.origin = origin
        # Room ids by name, shared with the writer, which forgets those of a batch whose
        # room may have been deleted.
        self._room_ids: dict[str, int] = {}
        self._writer = MessageWriter(
            database, self._room_ids, sqlite_cursor=sqlite_cursor, origin=origin,
            ref_window=Limits().send_ref_window if ref_window is None else ref_window,
        )  # fmt: skip

    # --- team operations -------------------------------------------------------------

    def perform(self, operation: Callable[[Tx], T], *, connection: Connection | None = None) -> T:
        """Run one team operation in a transaction of its own (on ``connection`` if given).

        Raises:
            RequestError: the operation was refused; nothing was written.
            StoreError: the transaction could not be committed.
        """
        with self._db.transaction(connection) as conn:
            # First, before any row lock: journal ids commit in order (commit_order.py).
            lock_commit_order(conn, self.origin)
            result = operation(Tx(conn, origin=self.origin, now_ms=int(time.time() * 1000)))
            if (news := news_of(result)) is not None:
                announce(conn, self.origin, news)
            if conn.dialect.name == "postgresql":  # perhaps one node of several
                result = _with_members(conn, result)
        if isinstance(result, rooms.Outcome) and result.meta is None:
            self.forget_room(result.room)
        return result

    def forget_room(self, room: str) -> None:
        """``room`` was deleted: its cached id must not reach a room made later."""
        self._room_ids.pop(room, None)

    def room_states(self) -> dict[str, rooms.RoomState]:
        """Every room, its settings and its members."""
        with self._db.transaction() as conn:
            return rooms.room_states(conn)

    def room_state(self, room: str) -> rooms.RoomState | None:
        with self._db.transaction() as conn:
            return rooms.room_state(conn, room)

    def unread(
        self, user_id: int, *, after: str | None, limit: int, cap: int
    ) -> tuple[list[reads.UnreadCount], bool]:
        """See :func:`reads.unread`."""
        with self._db.transaction() as conn:
            return reads.unread(conn, user_id, after=after, limit=limit, cap=cap)

    def conversations(
        self, user_id: int, *, after: str | None, limit: int, cap: int
    ) -> tuple[list[reads.ConversationState], bool]:
        """See :func:`reads.conversations`."""
        with self._db.transaction() as conn:
            return reads.conversations(conn, user_id, after=after, limit=limit, cap=cap)

    def people(self, *, after: str | None, limit: int) -> tuple[list[users.Person], bool]:
        """See :func:`users.people`."""
        with self._db.transaction() as conn:
            return users.people(conn, after=after, limit=limit)

    def room_members(
        self, actor: Actor, room: str, *, after: str | None, limit: int
    ) -> tuple[list[roster.RosterEntry], bool]:
        """See :func:`roster.members`."""
        with self._db.transaction() as conn:
            return roster.members(conn, actor, room, after=after, limit=limit)

    def invitations(
        self, user_id: int, *, after: str | None, limit: int
    ) -> tuple[list[roster.PendingInvite], bool]:
        """See :func:`roster.invitations`."""
        with self._db.transaction() as conn:
            return roster.invitations(conn, user_id, after=after, limit=limit)

    def audit_log(self, room: str | None, *, limit: int) -> list[AuditRecord]:
        """The newest ``limit`` audit entries (of ``room``, if given), oldest first."""
        query = select(
            AuditEntry.id, AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.room,
            AuditEntry.target, AuditEntry.message_id, AuditEntry.detail,
        )  # fmt: skip
        if room is not None:
            query = query.where(AuditEntry.room == room)
        with self._db.transaction() as conn:
            rows = conn.execute(query.order_by(AuditEntry.id.desc()).limit(limit)).all()
        return [AuditRecord(*row) for row in reversed(rows)]

    # --- rooms and memberships -----------------------------------------------------

    def join(self, user_id: int, room: str) -> None:
        """Make ``user_id`` a member of ``room``, creating the room if new. Idempotent.

        A plain write without the permission checks, for tests and tools; the server
        joins through :func:`rooms.join`.
        """
        try:
            with self._db.session() as s, s.begin():
                room_id = self._ensure_room(s, room)
                membership = s.get(Membership, (room_id, user_id))
                if membership is None:
                    s.add(Membership(room_id=room_id, user_id=user_id, joined_at=utcnow()))
                else:
                    membership.left_at_id = None
        except IntegrityError:
            pass  # the same user joined concurrently from another session: already a member

    def _ensure_room(self, s: Session, room: str) -> int:
        room_id = self._room_ids.get(room) or s.scalar(select(Room.id).where(Room.name == room))
        if room_id is None:
            try:
                with s.begin_nested():
                    new = Room(name=room, created_at=utcnow())
                    s.add(new)
                room_id = new.id
            except IntegrityError:  # created concurrently by another connection
                room_id = s.scalars(select(Room.id).where(Room.name == room)).one()
        self._room_ids[room] = room_id
        return room_id

    def leave(self, user_id: int, room: str) -> None:
        """End a membership (its row is kept); the plain counterpart of :meth:`join`."""
        with self._db.session() as s, s.begin():
            room_id = s.scalar(select(Room.id).where(Room.name == room))
            if room_id is not None:
                last = s.scalar(_LAST_ID) or 0
                s.execute(
                    update(Membership)
                    .where(Membership.room_id == room_id, Membership.user_id == user_id)
                    .values(left_at_id=last)
                )

    def user_id(self, name: str) -> int | None:
        with self._db.session() as s:
            return s.scalar(select(User.id).where(User.name == name))

    # --- messages ------------------------------------------------------------------

    def last_message_id(self) -> int:
        with self._db.transaction() as connection:  # every login asks: skip the ORM
            return connection.execute(_LAST_ID).scalar_one() or 0

    def last_news_id(self) -> int:
        """See :func:`news.last_news_id`."""
        with self._db.transaction() as connection:
            return last_news_id(connection)

    def news_after(
        self, after: int, *, exclude_origin: str, limit: int, connection: Connection | None = None
    ) -> tuple[list[News], int, bool]:
        """See :func:`news.news_after`; ``connection`` as for :meth:`journal_after`."""
        with self._db.transaction(connection) as conn:
            return news_after(conn, after, exclude_origin=exclude_origin, limit=limit)

    def journal_after(
        self, after: int, *, exclude_origin: str, limit: int, connection: Connection | None = None
    ) -> tuple[list[StoredMessage], int, bool]:
        """Rows after id ``after`` written by others than ``exclude_origin``, in id order.

        Returns at most ``limit`` rows, the id to read after next time, and whether more
        may follow at once. The newest id is read first and the rows only up to it, so
        every row at or below it is committed (see ``server/bus.py``). ``connection``: one the
        caller keeps (from :meth:`connect`), instead of one from the pool.
        """
        with self._db.transaction(connection) as conn:
            newest = conn.execute(_LAST_ID).scalar_one() or 0
            if newest <= after:
                return [], after, False
            rows = conn.execute(
                MESSAGES.where(
                    ChatMessage.id > after,
                    ChatMessage.id <= newest,
                    ChatMessage.origin.is_distinct_from(exclude_origin),
                )
                .order_by(ChatMessage.id)
                .limit(limit)
            ).all()
        if len(rows) == limit:
            return [stored(row) for row in rows], rows[-1][0], True
        return [stored(row) for row in rows], newest, False

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for one thread's stream of :meth:`save_messages` calls."""
        return self._db.connect()

    def save_messages(
        self,
        batch: Sequence[NewMessage],
        *,
        logins: Mapping[int, dt.datetime] | None = None,
        session_ends: Mapping[int, dt.datetime] | None = None,
        connection: Connection | None = None,
        before_commit: Callable[[list[SaveResult]], None] | None = None,
        index: search.IndexPass | None = None,
    ) -> list[SaveResult]:
        """Store a batch in one transaction: :meth:`MessageWriter.save`.

        Raises:
            StoreError: the transaction could not be committed; nothing of it was stored.
        """
        return self._writer.save(
            batch, logins=logins, session_ends=session_ends, connection=connection,
            before_commit=before_commit, index=index,
        )  # fmt: skip

    def search_backlog(self) -> int | None:
        """How many ids the search index trails the journal by; None: nothing to index here
        (PostgreSQL keeps its index in each transaction, or there is no index)."""
        with self._db.engine.connect() as conn:
            return search.backlog(conn)

    def index_for_search(self, limit: int, *, connection: Connection | None = None) -> int:
        """Index up to ``limit`` ids of the search backlog in a transaction of their own;
        returns how many are left (:func:`search.index_pending`)."""
        with self._db.transaction(connection) as conn:
            return search.index_pending(conn, limit)

    def room_history(
        self, room: str, *, before: int | None, limit: int, after: int | None = None,
        events: bool = False,
    ) -> tuple[list[StoredMessage], bool]:  # fmt: skip
        """The newest ``limit`` messages of ``room`` with id < ``before``, oldest first; with
        ``after``, the oldest ``limit`` with id > ``after``. As they are now (edited, deleted).
        With ``events``, its room events too (they count towards ``limit``)."""
        # By the room's id, not its name through the join: then PostgreSQL too reads the
        # (room_id, id) index backwards and stops at ``limit``, instead of sorting the room.
        room_id = select(Room.id).where(Room.name == room).scalar_subquery()
        kinds = ("message", "event") if events else ("message",)
        return self._page(ChatMessage.room_id == room_id, before, limit, after, kinds)

    def direct_history(
        self, user_id: int, peer_id: int, *, before: int | None, limit: int,
        after: int | None = None,
    ) -> tuple[list[StoredMessage], bool]:  # fmt: skip
        # One bounded read per direction on the (recipient_id, sender_id, id) index, merged
        # here: an OR of the two lets PostgreSQL read the whole table by id instead.
        rows: list[Row[*tuple[Any, ...]]] = []
        for sender, recipient in ((user_id, peer_id), (peer_id, user_id)):
            between = and_(ChatMessage.sender_id == sender, ChatMessage.recipient_id == recipient)
            rows += self._rows(between, before, limit, after, ("message",))
        rows.sort(key=lambda row: row[0], reverse=after is None)
        return self._paged(rows, limit, after)

    def _page(
        self, condition: ColumnElement[bool], before: int | None, limit: int, after: int | None,
        kinds: tuple[str, ...],
    ) -> tuple[list[StoredMessage], bool]:  # fmt: skip
        return self._paged(self._rows(condition, before, limit, after, kinds), limit, after)

    def _rows(
        self, condition: ColumnElement[bool], before: int | None, limit: int, after: int | None,
        kinds: tuple[str, ...],
    ) -> list[Row[*tuple[Any, ...]]]:  # fmt: skip
        """Up to ``limit + 1`` rows: the oldest after ``after``, else the newest before
        ``before``, in that reading order."""
        # One kind is an equality, as the (room_id, id) and direct indexes' plans expect.
        kind = ChatMessage.kind == kinds[0] if len(kinds) == 1 else ChatMessage.kind.in_(kinds)
        query = MESSAGES.where(condition, kind)
        if after is not None:
            query = query.where(ChatMessage.id > after).order_by(ChatMessage.id)
        else:
            if before is not None:
                query = query.where(ChatMessage.id < before)
            query = query.order_by(ChatMessage.id.desc())
        with self._db.session() as s:
            return list(s.execute(query.limit(limit + 1)).all())

    @staticmethod
    def _paged(
        rows: list[Row[*tuple[Any, ...]]], limit: int, after: int | None
    ) -> tuple[list[StoredMessage], bool]:
        """A page, oldest first, and whether more lie beyond it."""
        more = len(rows) > limit
        page = rows[:limit] if after is not None else reversed(rows[:limit])
        return [stored(row) for row in page], more

    def sync(
        self, user_id: int, *, since: int, limit: int, max_chars: int
    ) -> tuple[list[StoredMessage], bool]:
        """Messages after ``since`` that ``user_id`` may see, in id order, at most ``limit``
        and about ``max_chars`` of bodies; True if more may follow (:func:`sync.sync_page`)."""
        with self._db.transaction() as conn:
            return sync.sync_page(conn, user_id, since=since, limit=limit, max_chars=max_chars)

    def newest_visible_id(self, user_id: int) -> int:
        """The newest journal id ``user_id`` may see, 0 if none: :func:`sync.newest_visible_id`."""
        with self._db.transaction() as conn:
            return sync.newest_visible_id(conn, user_id)

    def search(
        self, user_id: int, query: str, *, before: int | None, limit: int, scan: int
    ) -> SearchPage:
        """Messages ``user_id`` may read that hold ``query``, newest first, examining at
        most ``scan`` candidates: :func:`search.find`."""
        with self._db.transaction() as conn:
            return search.find(conn, user_id, query, before=before, limit=limit, scan=scan)


def _with_members(conn: Connection, result: T) -> T:
    """A changed room's outcome with every member, for a hub that may not have heard of
    another node's join yet (its news can come after this operation)."""
    if not isinstance(result, rooms.Outcome) or not result.changed or result.meta is None:
        return result
    state = rooms.room_state(conn, result.room)
    members = None if state is None else state.members
    return dataclasses.replace(result, members=members)
