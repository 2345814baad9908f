"""Rooms, memberships and message history: the queries the chat server runs.

Every method opens its own session, so one ``ChatStore`` may be shared by all threads.
Results are frozen values; ORM rows never leave ``store``. :meth:`ChatStore.save_messages`
is the group commit's write (``messages.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.store.database import Database
from securechat.store.messages import (
    MESSAGES,
    MessageWriter,
    NewMessage,
    SaveResult,
    StoredMessage,
    stored,
)
from securechat.store.models import ChatMessage, Membership, Room, User, utcnow

_LAST_ID = select(func.max(ChatMessage.id))
_MEMBER_ROOMS = select(Membership.room_id).where(Membership.user_id == bindparam("user"))
_BY_IDS = MESSAGES.where(ChatMessage.id.in_(bindparam("ids", expanding=True))).order_by(
    ChatMessage.id
)
# SQLite allows 500 terms in one compound SELECT (SQLITE_MAX_COMPOUND_SELECT): a user in
# more rooms than this costs one more query per this many.
_ARMS_PER_QUERY = 400


class ChatStore:
    def __init__(self, database: Database, *, sqlite_cursor: bool | None = None) -> None:
        """``sqlite_cursor``: how the group commit adds rows (see :class:`MessageWriter`)."""
        self._db = database
        # Room ids by name, shared with the writer, which forgets those of a batch whose
        # room may have been deleted.
        self._room_ids: dict[str, int] = {}
        self._writer = MessageWriter(database, self._room_ids, sqlite_cursor=sqlite_cursor)

    # --- rooms and memberships -----------------------------------------------------

    def memberships(self) -> dict[str, list[str]]:
        """Every room with its members' names (rooms without members included)."""
        with self._db.session() as s:
            rooms: dict[str, list[str]] = {name: [] for name in s.scalars(select(Room.name))}
            rows = s.execute(
                select(Room.name, User.name)
                .join(Membership, Membership.room_id == Room.id)
                .join(User, User.id == Membership.user_id)
            )
            for room, user in rows:
                rooms[room].append(user)
        return rooms

    def join(self, user_id: int, room: str) -> None:
        """Make ``user_id`` a member of ``room``, creating the room if new. Idempotent."""
        try:
            with self._db.session() as s, s.begin():
                room_id = self._ensure_room(s, room)
                if s.get(Membership, (room_id, user_id)) is None:
                    s.add(Membership(room_id=room_id, user_id=user_id, joined_at=utcnow()))
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
        with self._db.session() as s, s.begin():
            room_id = s.scalar(select(Room.id).where(Room.name == room))
            if room_id is not None:
                s.execute(
                    delete(Membership).where(
                        Membership.room_id == room_id, Membership.user_id == user_id
                    )
                )

    def user_id(self, name: str) -> int | None:
        with self._db.session() as s:
            return s.scalar(select(User.id).where(User.name == name))

    # --- messages ------------------------------------------------------------------

    def last_message_id(self) -> int:
        with self._db.transaction() as connection:  # every login asks: skip the ORM
            return connection.execute(_LAST_ID).scalar_one() or 0

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for one thread's stream of :meth:`save_messages` calls."""
        return self._db.connect()

    def save_messages(
        self,
        batch: Sequence[NewMessage],
        *,
        logins: Mapping[int, dt.datetime] | None = None,
        connection: Connection | None = None,
        before_commit: Callable[[list[SaveResult]], None] | None = None,
    ) -> list[SaveResult]:
        """Store a batch in one transaction: :meth:`MessageWriter.save`.

        Raises:
            StoreError: the transaction could not be committed; nothing of it was stored.
        """
        return self._writer.save(
            batch, logins=logins, connection=connection, before_commit=before_commit
        )

    def room_history(
        self, room: str, *, before: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """The newest ``limit`` messages of ``room`` with id < ``before``, oldest first."""
        return self._page(Room.name == room, before, limit)

    def direct_history(
        self, user_id: int, peer_id: int, *, before: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        between = or_(
            and_(ChatMessage.sender_id == user_id, ChatMessage.recipient_id == peer_id),
            and_(ChatMessage.sender_id == peer_id, ChatMessage.recipient_id == user_id),
        )
        return self._page(between, before, limit)

    def _page(
        self, condition: ColumnElement[bool], before: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        query = MESSAGES.where(condition)
        if before is not None:
            query = query.where(ChatMessage.id < before)
        with self._db.session() as s:
            rows = s.execute(query.order_by(ChatMessage.id.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        return [stored(row) for row in reversed(rows[:limit])], more

    def sync(
        self, user_id: int, *, since: int, limit: int, max_chars: int
    ) -> tuple[list[StoredMessage], bool]:
        """Messages after ``since`` in the user's rooms and direct conversations, in id order.

        At most ``limit`` messages, and no more once their bodies add up to ``max_chars``
        characters; True with them if more may follow.
        """
        with self._db.transaction() as conn:
            ids = self._sync_ids(conn, user_id, since, limit + 1)
            more = len(ids) > limit
            page: list[StoredMessage] = []
            chars = 0
            for row in conn.execute(_BY_IDS, {"ids": ids[:limit]}) if ids else ():
                if chars >= max_chars:
                    return page, True
                page.append(stored(row))
                chars += len(row[2])
        return page, more

    def _sync_ids(self, conn: Connection, user_id: int, since: int, limit: int) -> list[int]:
        """The first ``limit`` ids after ``since`` that ``user_id`` may see, in order.

        One index range per source, in id order: each room the user is in, direct messages
        received, direct messages sent (to someone else: one to oneself is received too).
        SQLite merges the ranges (MERGE UNION ALL) and stops after ``limit`` ids, so the
        cost is ``limit`` plus one probe per room, however long the history.
        """
        after = ChatMessage.id > since
        arms = [
            select(ChatMessage.id).where(ChatMessage.recipient_id == user_id, after),
            select(ChatMessage.id).where(
                ChatMessage.sender_id == user_id,
                ChatMessage.room_id.is_(None),
                ChatMessage.recipient_id.is_distinct_from(user_id),
                after,
            ),
        ]
        rooms = conn.execute(_MEMBER_ROOMS, {"user": user_id}).scalars()
        arms += [select(ChatMessage.id).where(ChatMessage.room_id == room, after) for room in rooms]
        ids: list[int] = []
        for start in range(0, len(arms), _ARMS_PER_QUERY):
            merged = union_all(*arms[start : start + _ARMS_PER_QUERY])
            query = merged.order_by(merged.selected_columns.id).limit(limit)
            ids += conn.execute(query).scalars()
        return sorted(ids)[:limit]
