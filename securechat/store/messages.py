"""The group commit's write: a batch of messages in one transaction.

:meth:`MessageWriter.save` runs for every message the server accepts, so it skips the ORM:
Core statements built once, and on SQLite the driver's own cursor. A batch is
de-duplicated on (sender, ref): a resent message returns its first copy, if that copy is
younger than the ref window (``Limits.send_ref_window``), even deleted since. A ref reused
after the window is a new message: the old copy's ref is cleared in the same transaction,
which frees the unique (sender_id, ref) for it. A row whose
sender, room or recipient was deleted meanwhile is refused alone and the rest of the batch
is stored. There are two ways to add the rows, chosen once per writer:

- the SQLite cursor path (SQLite's default): one prebuilt ``INSERT ... ON CONFLICT
  (sender_id, ref) DO NOTHING RETURNING id`` per row on the sqlite3 cursor, SQLAlchemy's
  work per statement being dearer than SQLite's own; a row refused by the unique index is
  a resend, looked up afterwards;
- the portable path (every other database): earlier copies of the batch's refs are looked
  up first, then the new rows go in with one Core ``INSERT ... RETURNING``.

Ids are committed in the order they are allocated: on PostgreSQL each batch's transaction
first takes the commit-order lock (:mod:`securechat.store.commit_order` says why). The
message values and the query they are read with are :mod:`securechat.store.message_rows`.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from securechat.errors import ErrorCode, StoreError
from securechat.store.commit_order import lock_commit_order
from securechat.store.database import Database
from securechat.store.mentions import add_mentions
from securechat.store.message_rows import (
    MESSAGES,
    NewMessage,
    SaveResult,
    StoredMessage,
    stored,
)
from securechat.store.models import ChatMessage, Room, User
from securechat.store.search import IndexPass, index_pending

_REF = len(MESSAGES.selected_columns)  # where _RESENT's ref column, after MESSAGES' is


# The write's statements, built once: their compiled forms stay cached.
# Searched through the unique (sender_id, ref) index; a row-value "(sender, ref) IN"
# would make SQLite scan every stored message.
_RESENT = MESSAGES.add_columns(ChatMessage.ref).where(
    ChatMessage.sender_id == bindparam("sender"),
    ChatMessage.ref.in_(bindparam("refs", expanding=True)),
)
_RESENT_ONE = MESSAGES.add_columns(ChatMessage.ref).where(
    ChatMessage.sender_id == bindparam("sender"), ChatMessage.ref == bindparam("ref")
)
_USER_IDS = select(User.name, User.id).where(User.name.in_(bindparam("names", expanding=True)))
_ROOM_ID = select(Room.id).where(Room.name == bindparam("name"))
_LAST_LOGIN = update(User).where(User.id == bindparam("uid")).values(last_login_at=bindparam("at"))
_LAST_SEEN = update(User).where(User.id == bindparam("uid")).values(last_seen_at=bindparam("at"))
_USERS_LEFT = select(User.id).where(User.id.in_(bindparam("ids", expanding=True)))
_ROOMS_LEFT = select(Room.name).where(Room.name.in_(bindparam("names", expanding=True)))
_INSERT = insert(ChatMessage).returning(ChatMessage.id, sort_by_parameter_order=True)
_FORGET_REF = update(ChatMessage).where(ChatMessage.id == bindparam("old")).values(ref=None)

# The SQLite cursor path's one statement, written by SQLAlchemy from the model, once.
_ADD_FIELDS = (
    "room_id",
    "recipient_id",
    "recipient",
    "sender_id",
    "sender",
    "body",
    "ts_ms",
    "ref",
    "kind",
    "deleted",
    "origin",
)
_SQLITE_ADD = str(
    sqlite.insert(ChatMessage)
    .values({field: bindparam(field) for field in _ADD_FIELDS})
    .on_conflict_do_nothing(index_elements=["sender_id", "ref"])
    .returning(ChatMessage.id)
    .compile(dialect=sqlite.dialect(paramstyle="named"))
)


class _StaleReference(Exception):
    """Internal: an insert broke a foreign key; the transaction is rolled back."""


class MessageWriter:
    """The group commit's write, on one of the two paths, chosen when it is made."""

    def __init__(
        self,
        database: Database,
        room_ids: dict[str, int],
        *,
        ref_window: float,
        sqlite_cursor: bool | None = None,
        origin: str | None = None,
    ) -> None:
        """Write batches to ``database``; ``room_ids`` is the store's cache of room ids by name.
        ``origin`` marks each row as this writer's (``models.ChatMessage``). A resend's ref
        names its first copy for ``ref_window`` seconds, then a new message.

        ``sqlite_cursor`` picks how rows are added: through the sqlite3 cursor (SQLite only;
        the default there) or the portable path (the default elsewhere).

        Raises:
            ValueError: the SQLite cursor path asked for on another database.
        """
        dialect = database.engine.dialect.name
        if sqlite_cursor is None:
            sqlite_cursor = dialect == "sqlite"
        elif sqlite_cursor and dialect != "sqlite":
            raise ValueError(f"the SQLite cursor path cannot write to {dialect}")
        self._db = database
        self._room_ids = room_ids
        self._sqlite_cursor = sqlite_cursor
        self._origin = origin
        self._ref_window_ms = int(ref_window * 1000)

    def save(
        self,
        batch: Sequence[NewMessage],
        *,
        logins: Mapping[int, dt.datetime] | None = None,
        session_ends: Mapping[int, dt.datetime] | None = None,
        connection: Connection | None = None,
        before_commit: Callable[[list[SaveResult]], None] | None = None,
        index: IndexPass | None = None,
    ) -> list[SaveResult]:
        """Store a batch in one transaction; a repeated (sender, ref) returns the first copy.

        It runs on the caller's ``connection`` (from :meth:`Database.connect`) if given: no
        pool checkout and reset per commit. The same transaction sets ``last_login_at`` for
        the ids in ``logins`` and ``last_seen_at`` for those in ``session_ends``. ``before_commit`` gets the results as soon as the rows are
        written, before the COMMIT and its fsync: work that needs the ids can overlap the
        disk wait, but nothing may be sent until this method has returned. With ``index``,
        the same transaction then indexes up to ``index.limit`` ids of the search backlog,
        oldest first (this batch's rows once the older ones are done).

        A row whose sender or room was deleted after it was sent breaks a foreign key.
        Then the batch is written again, in a new transaction that first looks up which
        senders and rooms are left: such a row gets ``server_error`` (its sender is gone)
        or ``no_such_room``, and every other row is stored. Looking first costs a query, so
        it is done only after a failure.

        Raises:
            StoreError: the transaction could not be committed; nothing of it was stored.
        """
        now_ms = int(time.time() * 1000)
        write = functools.partial(
            self._save, batch, logins, session_ends, connection, before_commit, index, now_ms
        )
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
        session_ends: Mapping[int, dt.datetime] | None,
        connection: Connection | None,
        before_commit: Callable[[list[SaveResult]], None] | None,
        index: IndexPass | None,
        now_ms: int,
        *,
        check_references: bool,
    ) -> list[SaveResult]:
        with self._db.transaction(connection) as conn:
            lock_commit_order(conn, self._origin)
            if logins:
                conn.execute(_LAST_LOGIN, [{"uid": k, "at": v} for k, v in logins.items()])
            if session_ends:
                conn.execute(_LAST_SEEN, [{"uid": k, "at": v} for k, v in session_ends.items()])
            recipients = self._recipient_ids(conn, batch)
            gone = self._gone(conn, batch) if check_references else {}
            try:
                if self._sqlite_cursor:
                    results = self._add_each(conn, batch, recipients, now_ms, gone)
                else:
                    existing = self._existing(conn, batch, now_ms)
                    results = self._insert(conn, batch, existing, recipients, now_ms, gone)
            except (IntegrityError, sqlite3.IntegrityError) as exc:
                raise _StaleReference from exc
            if any("@" in message.body for message in batch):
                self._mentions(conn, batch, results, recipients)
            if before_commit is not None:
                before_commit(results)
            if index is not None:  # after the hand-over: delivery encodes meanwhile
                index.backlog = index_pending(conn, index.limit)
        return results

    def _mentions(
        self,
        conn: Connection,
        batch: Sequence[NewMessage],
        results: Sequence[SaveResult],
        recipients: Mapping[str, int],
    ) -> None:
        """Record the mentions in the batch's new messages (mentions.py)."""
        add_mentions(conn, [
            (
                result[0].id, message.body,
                None if message.room is None else self._room_id(conn, message.room),
                recipients.get(message.to) if message.to else None, message.sender_id,
                message.notify,
            )
            for message, result in zip(batch, results, strict=True)
            if isinstance(result, tuple) and result[1] and "@" in message.body
        ])  # fmt: skip

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
        """The SQLite cursor path: row by row, looking up earlier copies only of refused rows."""
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
            row = self._row(conn, message, recipients, now_ms)
            added = cursor.execute(_SQLITE_ADD, row).fetchone()
            if added is None:
                # Refused by the unique index: a resend of a stored (sender, ref), maybe from
                # this very batch (the earlier copy is visible inside the transaction), or
                # the ref reused after the window, which frees it for this new message.
                first = self._first_copy(conn, message)
                assert first is not None, "ON CONFLICT DO NOTHING skipped a row without a copy"
                if not self._expired(first, now_ms):
                    results.append((first, False))
                    continue
                conn.execute(_FORGET_REF, {"old": first.id})
                added = cursor.execute(_SQLITE_ADD, row).fetchone()
                assert added is not None, "a freed ref was refused again"
            m = message
            results.append((StoredMessage(added[0], m.sender, m.body, now_ms, m.room, m.to), True))
        return results

    def _expired(self, first: StoredMessage, now_ms: int) -> bool:
        """Whether ``first`` was stored longer ago than the ref window: its ref is free."""
        return first.ts_ms < now_ms - self._ref_window_ms

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
            "kind": "message",
            "deleted": False,
            "origin": self._origin,
        }

    def _first_copy(self, conn: Connection, message: NewMessage) -> StoredMessage | None:
        if message.ref is None:
            return None
        row = conn.execute(_RESENT_ONE, {"sender": message.sender_id, "ref": message.ref}).first()
        return None if row is None else stored(row)

    def _insert(
        self,
        conn: Connection,
        batch: Sequence[NewMessage],
        existing: Mapping[tuple[int, str | None], StoredMessage],
        recipients: Mapping[str, int],
        now_ms: int,
        gone: Mapping[int, ErrorCode],
    ) -> list[SaveResult]:
        """The portable path: insert what is new; ``existing`` holds earlier copies of refs."""
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
        self, conn: Connection, batch: Sequence[NewMessage], now_ms: int
    ) -> dict[tuple[int, str | None], StoredMessage]:
        """The stored copies of the batch's (sender, ref) within the ref window; an older
        copy's ref is cleared, so its reuse is stored as a new message."""
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
            found.update(((sender, row[_REF]), stored(row)) for row in rows)
        for key, first in list(found.items()):
            if self._expired(first, now_ms):
                conn.execute(_FORGET_REF, {"old": first.id})
                del found[key]
        return found

    def _recipient_ids(self, conn: Connection, batch: Sequence[NewMessage]) -> dict[str, int]:
        names = {m.to for m in batch if m.to is not None}
        if not names:
            return {}
        return {name: user_id for name, user_id in conn.execute(_USER_IDS, {"names": list(names)})}
