"""Rooms, memberships and messages: the queries the chat server runs.

Every method opens its own session, so one ``ChatStore`` may be shared by all threads.
Results are frozen values; ORM rows never leave this module. ``save_messages`` is the
group-commit write: a whole batch in one transaction, de-duplicated on (sender, ref); a
row whose sender or room was deleted meanwhile is refused alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.errors import ErrorCode, StoreError
from securechat.store.database import Database
from securechat.store.models import ChatMessage, Membership, Room, User, utcnow


@dataclasses.dataclass(frozen=True, slots=True)
class NewMessage:
    sender_id: int
    sender: str
    body: str
    ref: str | None
    room: str | None = None
    to: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    sender: str
    body: str
    ts_ms: int
    room: str | None
    to: str | None


SaveResult = tuple[StoredMessage, bool] | ErrorCode  # (message, is_new) or the refusal

_COLUMNS = (
    ChatMessage.id,
    ChatMessage.sender,
    ChatMessage.body,
    ChatMessage.ts_ms,
    Room.name,
    ChatMessage.recipient,
)


# Select statements are immutable: every query below starts from this one.
_MESSAGES = select(*_COLUMNS).outerjoin(Room, ChatMessage.room_id == Room.id)


# The group commit's statements, built once: their compiled forms stay cached.
# Searched through the unique (sender_id, ref) index; a row-value "(sender, ref) IN"
# would make SQLite scan every stored message.
_RESENT = _MESSAGES.add_columns(ChatMessage.ref).where(
    ChatMessage.sender_id == bindparam("sender"),
    ChatMessage.ref.in_(bindparam("refs", expanding=True)),
)
_RESENT_ONE = _MESSAGES.add_columns(ChatMessage.ref).where(
    ChatMessage.sender_id == bindparam("sender"), ChatMessage.ref == bindparam("ref")
)
_USER_IDS = select(User.name, User.id).where(User.name.in_(bindparam("names", expanding=True)))
_ROOM_ID = select(Room.id).where(Room.name == bindparam("name"))
_LAST_LOGIN = update(User).where(User.id == bindparam("uid")).values(last_login_at=bindparam("at"))
_LAST_ID = select(func.max(ChatMessage.id))
_USERS_LEFT = select(User.id).where(User.id.in_(bindparam("ids", expanding=True)))
_ROOMS_LEFT = select(Room.name).where(Room.name.in_(bindparam("names", expanding=True)))
_INSERT = insert(ChatMessage).returning(ChatMessage.id, sort_by_parameter_order=True)
_MEMBER_ROOMS = select(Membership.room_id).where(Membership.user_id == bindparam("user"))
_BY_IDS = _MESSAGES.where(ChatMessage.id.in_(bindparam("ids", expanding=True))).order_by(
    ChatMessage.id
)
# SQLite allows 500 terms in one compound SELECT (SQLITE_MAX_COMPOUND_SELECT): a user in
# more rooms than this costs one more query per this many.
_ARMS_PER_QUERY = 400

# On SQLite the group commit adds each row through the driver's own cursor: SQLAlchemy's
# work per statement costs more than SQLite's (a one-message commit paced like office
# load took 970 µs through Core, 510-640 µs this way). SQLAlchemy still writes the
# statement, once, from the model. A resend conflicts on the (sender_id, ref) index,
# returns no id and is looked up.
_ADD_FIELDS = (
    "room_id",
    "recipient_id",
    "recipient",
    "sender_id",
    "sender",
    "body",
    "ts_ms",
    "ref",
)
_SQLITE_ADD = str(
    sqlite.insert(ChatMessage)
    .values({field: bindparam(field) for field in _ADD_FIELDS})
    .on_conflict_do_nothing(index_elements=["sender_id", "ref"])
    .returning(ChatMessage.id)
    .compile(dialect=sqlite.dialect(paramstyle="named"))
)
_FAST_DIALECTS = frozenset({"sqlite"})


def _stored(row: Row[int, str, str, int, str, str | None]) -> StoredMessage:
    return StoredMessage(row[0], row[1], row[2], row[3], row[4], row[5])


class _StaleReference(Exception):
    """Internal: an insert broke a foreign key; the transaction is rolled back."""


class ChatStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._room_ids: dict[str, int] = {}  # rooms are never deleted, so ids never go stale

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
        """Store a batch in one transaction; a repeated (sender, ref) returns the first copy.

        This is the group commit, run for every message the server accepts, so it skips
        the ORM (Core statements built once; on SQLite the driver's cursor) and runs on
        the caller's ``connection`` from :meth:`connect` if given (no pool checkout and
        reset per commit). The same transaction sets ``last_login_at`` for the ids in
        ``logins``. ``before_commit`` gets the results as soon as the rows are written,
        before the COMMIT and its fsync: work that needs the ids can overlap the disk
        wait, but nothing may be sent until this method has returned.

        A row whose sender or room was deleted after it was sent breaks a foreign key.
        Then the batch is written again, in a new transaction that first looks up which
        senders and rooms are left: such a row gets ``server_error`` (its sender is gone)
        or ``no_such_room``, and every other row is stored. Looking first costs a query, so
        it is done only after a failure.

        Raises:
            StoreError: the transaction could not be committed; nothing of it was stored.
        """
        now_ms = int(time.time() * 1000)
        write = functools.partial(self._save, batch, logins, connection, before_commit, now_ms)
        try:
            return write(check_references=False)
        except _StaleReference:
            try:
                return write(check_references=True)
            except _StaleReference as exc:  # another deletion raced the second attempt
                raise StoreError(f"could not store the batch: {exc.__cause__}") from exc

    def _save(
        self,
        batch: Sequence[NewMessage],
        logins: Mapping[int, dt.datetime] | None,
        connection: Connection | None,
        before_commit: Callable[[list[SaveResult]], None] | None,
        now_ms: int,
        *,
        check_references: bool,
    ) -> list[SaveResult]:
        with self._db.transaction(connection) as conn:
            if logins:
                conn.execute(_LAST_LOGIN, [{"uid": k, "at": v} for k, v in logins.items()])
            recipients = self._recipient_ids(conn, batch)
            gone = self._gone(conn, batch) if check_references else {}
            try:
                if conn.dialect.name in _FAST_DIALECTS:
                    results = self._add_each(conn, batch, recipients, now_ms, gone)
                else:
                    existing = self._existing(conn, batch)
                    results = self._insert(conn, batch, existing, recipients, now_ms, gone)
            except (IntegrityError, sqlite3.IntegrityError) as exc:
                raise _StaleReference from exc
            if before_commit is not None:
                before_commit(results)
        return results

    def _gone(self, conn: Connection, batch: Sequence[NewMessage]) -> dict[int, ErrorCode]:
        """The refusal for each row (by index) whose sender or room no longer exists."""
        senders = list({m.sender_id for m in batch})
        users_left = set(conn.execute(_USERS_LEFT, {"ids": senders}).scalars())
        names = list({m.room for m in batch if m.room is not None})
        rooms_left = set(conn.execute(_ROOMS_LEFT, {"names": names}).scalars()) if names else set()
        for room in names:  # a cached id may be a deleted room's, even if the name is back
            self._room_ids.pop(room, None)
        gone: dict[int, ErrorCode] = {}
        for index, message in enumerate(batch):
            if message.sender_id not in users_left:
                gone[index] = ErrorCode.SERVER_ERROR
            elif message.room is not None and message.room not in rooms_left:
                gone[index] = ErrorCode.NO_SUCH_ROOM
        return gone

    def _add_each(
        self,
        conn: Connection,
        batch: Sequence[NewMessage],
        recipients: Mapping[str, int],
        now_ms: int,
        gone: Mapping[int, ErrorCode],
    ) -> list[SaveResult]:
        """SQLite: insert row by row, and look up earlier copies only of refused rows."""
        driver = conn.connection.driver_connection
        assert driver is not None, "a connection in a transaction is open"
        cursor = driver.cursor()
        results: list[SaveResult] = []
        for index, message in enumerate(batch):
            if index in gone:
                results.append(gone[index])
                continue
            if message.to is not None and message.to not in recipients:
                first = self._first_copy(conn, message)  # stored before the user was deleted?
                results.append(ErrorCode.NO_SUCH_USER if first is None else (first, False))
                continue
            row = cursor.execute(_SQLITE_ADD, self._row(conn, message, recipients, now_ms))
            if (added := row.fetchone()) is not None:
                m = message
                results.append(
                    (StoredMessage(added[0], m.sender, m.body, now_ms, m.room, m.to), True)
                )
                continue
            # Refused by the unique index: a resend of a stored (sender, ref), maybe from
            # this very batch. The earlier copy is visible inside the transaction.
            first = self._first_copy(conn, message)
            assert first is not None, "ON CONFLICT DO NOTHING skipped a row without a copy"
            results.append((first, False))
        return results

    def _row(
        self, conn: Connection, message: NewMessage, recipients: Mapping[str, int], now_ms: int
    ) -> dict[str, object]:
        return {
            "room_id": None if message.room is None else self._room_id(conn, message.room),
            "recipient_id": recipients.get(message.to) if message.to else None,
            "recipient": message.to,
            "sender_id": message.sender_id,
            "sender": message.sender,
            "body": message.body,
            "ts_ms": now_ms,
            "ref": message.ref,
        }

    def _first_copy(self, conn: Connection, message: NewMessage) -> StoredMessage | None:
        if message.ref is None:
            return None
        row = conn.execute(_RESENT_ONE, {"sender": message.sender_id, "ref": message.ref}).first()
        return None if row is None else _stored(row)

    def _insert(
        self,
        conn: Connection,
        batch: Sequence[NewMessage],
        existing: Mapping[tuple[int, str | None], StoredMessage],
        recipients: Mapping[str, int],
        now_ms: int,
        gone: Mapping[int, ErrorCode],
    ) -> list[SaveResult]:
        """Other databases: insert what is new; ``existing`` holds earlier copies of refs."""
        results: list[SaveResult | None] = [None] * len(batch)
        first_of: dict[tuple[int, str], int] = {}  # (sender, ref) -> its first index here
        rows: list[dict[str, object]] = []
        inserted: list[int] = []
        for index, message in enumerate(batch):
            if index in gone:
                results[index] = gone[index]
                continue
            if message.ref is not None:
                key = (message.sender_id, message.ref)
                if key in existing:
                    results[index] = (existing[key], False)
                    continue
                if key in first_of:
                    continue  # resolved below, once the first copy has its id
                first_of[key] = index
            if message.to is not None and message.to not in recipients:
                results[index] = ErrorCode.NO_SUCH_USER
                continue
            inserted.append(index)
            rows.append(self._row(conn, message, recipients, now_ms))
        if rows:
            ids = conn.execute(_INSERT, rows[0] if len(rows) == 1 else rows).scalars().all()
            for index, message_id in zip(inserted, ids, strict=True):
                m = batch[index]
                stored = StoredMessage(message_id, m.sender, m.body, now_ms, m.room, m.to)
                results[index] = (stored, True)
        for index, message in enumerate(batch):
            if results[index] is None:  # a ref repeated inside this batch
                assert message.ref is not None
                first = results[first_of[(message.sender_id, message.ref)]]
                results[index] = (first[0], False) if isinstance(first, tuple) else first
        return [r for r in results if r is not None]

    def _room_id(self, conn: Connection, room: str) -> int:
        room_id = self._room_ids.get(room)
        if room_id is None:
            room_id = conn.execute(_ROOM_ID, {"name": room}).scalar_one()
            self._room_ids[room] = room_id
        return room_id

    def _existing(
        self, conn: Connection, batch: Sequence[NewMessage]
    ) -> dict[tuple[int, str | None], StoredMessage]:
        refs: dict[int, set[str]] = {}
        for m in batch:
            if m.ref is not None:
                refs.setdefault(m.sender_id, set()).add(m.ref)
        found: dict[tuple[int, str | None], StoredMessage] = {}
        for sender, sender_refs in refs.items():
            if len(sender_refs) == 1:  # the usual case, without rendering an expanding IN
                (ref,) = sender_refs
                rows = conn.execute(_RESENT_ONE, {"sender": sender, "ref": ref})
            else:
                rows = conn.execute(_RESENT, {"sender": sender, "refs": list(sender_refs)})
            found.update(((sender, row[6]), _stored(row)) for row in rows)
        return found

    def _recipient_ids(self, conn: Connection, batch: Sequence[NewMessage]) -> dict[str, int]:
        names = {m.to for m in batch if m.to is not None}
        if not names:
            return {}
        return {name: user_id for name, user_id in conn.execute(_USER_IDS, {"names": list(names)})}

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
        query = _MESSAGES.where(condition)
        if before is not None:
            query = query.where(ChatMessage.id < before)
        with self._db.session() as s:
            rows = s.execute(query.order_by(ChatMessage.id.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        return [_stored(row) for row in reversed(rows[:limit])], more

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
                page.append(_stored(row))
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
