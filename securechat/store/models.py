"""The ORM models: the schema as typed Python. Only Alembic revisions change the real schema.

Every datetime is timezone-aware UTC in Python. SQLite has no time zone type, so
:class:`UTCDateTime` stores naive UTC there and attaches UTC again when reading; databases
with a real ``TIMESTAMP WITH TIME ZONE`` get aware values directly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from securechat.protocol.messages import MAX_TOPIC
from securechat.protocol.names import NAME_MAX

#: A device's name (from its browser's user agent) is cut to this many characters.
DEVICE_NAME_MAX = 100

#: Constraint names are derived, so revisions can refer to them (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, TypeEngine[Any]]] = {dt.datetime: UTCDateTime()}


class User(Base):
    """A person who may log in. ``name`` is canonical (see ``protocol.names.normalize_name``)."""

    __tablename__ = "users"
    # Ids are never reused: a user added after a deletion is never mistaken for the old one.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    # When a session of the user last ended: with last_login_at, the people list's "last seen".
    last_seen_at: Mapped[dt.datetime | None]
    # Set by passwd and disable: sessions opened before it are ended, tokens revoked.
    credentials_changed_at: Mapped[dt.datetime | None]
    # A directory account's stable id (objectGUID, entryUUID): renames keep the account.
    # NULL for a local account, whose password is checked here.
    directory_id: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    # Disabled by the directory sync (not by an admin): the sync enables it again.
    directory_disabled: Mapped[bool] = mapped_column(default=False, server_default=false())

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, name={self.name!r})"


class Room(Base):
    """A chat room: created by ``create`` or the first ``join``; deleted by its owner or an admin.

    A private room is listed to its members only and joined by invitation. ``owner_id``
    names the one owner; NULL for an ownerless room (rooms from before revision 0006, the
    default rooms, and a room whose owner left it last), which an admin may hand over.
    """

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    is_private: Mapped[bool] = mapped_column(default=False, server_default=false())
    topic: Mapped[str | None] = mapped_column(String(MAX_TOPIC))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Membership(Base):
    """A user's place in a room. The row outlives a leave, a kick or a ban: ``left_at_id``
    is then the newest journal id at that moment (NULL while a member), so a former
    member's reach (search) ends there, and a mute survives leaving and joining again.

    ``role`` is ``member`` or ``moderator``; the owner is ``rooms.owner_id``. ``last_read_id``
    is the user's read marker in the room (journal ids; it only moves forward).
    """

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('member', 'moderator')", name="role"),)

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    muted: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_read_id: Mapped[int] = mapped_column(default=0, server_default="0")
    left_at_id: Mapped[int | None]


class RoomBan(Base):
    """A user banned from a room: they cannot join it until unbanned."""

    __tablename__ = "room_bans"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    banned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    banned_by: Mapped[str] = mapped_column(String(NAME_MAX))


class RoomInvite(Base):
    """A pending invitation: the one way into a private room; used up by the join."""

    __tablename__ = "room_invites"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    invited_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    invited_by: Mapped[str] = mapped_column(String(NAME_MAX))


class DirectRead(Base):
    """How far ``user_id`` has read the direct conversation with ``peer_id`` (journal ids)."""

    __tablename__ = "dm_reads"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_read_id: Mapped[int] = mapped_column(default=0, server_default="0")


class ChatMessage(Base):
    """One row of the journal: the one id sequence of everything that fans out.

    ``kind`` says what the row is:

    - ``message``: a chat message, to a room or directly to one user. ``body`` is its text
      now: ``edited_ms`` is the time of its last edit, and a deleted one has ``deleted``
      true and an empty body (a tombstone).
    - ``edit`` / ``delete``: message ``target_id`` was changed by ``sender``; an edit
      carries the new text in ``body`` (emptied, and ``deleted`` set, when the message is
      edited again or deleted: only the current text is kept).
    - ``event``: something happened to a room: ``action`` (create, invite, kick, ban, ...),
      by ``sender`` (``console`` for the admin's command line), about user ``subject``;
      ``body`` holds the topic (``topic``, ``create``), else is empty. A ``delete`` event
      outlives its room: its ``room_id`` is NULL and ``body`` holds the room's name.

    Names are stored beside the ids so history still reads right after a user is deleted
    (the ids become NULL). ``ref`` is the sender's own id for the message; (sender, ref)
    is unique, which is what makes a resend after a lost ack harmless. A ref reused after
    ``Limits.send_ref_window`` is cleared from the old row for the new one (``messages.py``). ``origin`` names
    the server process that wrote the row (NULL: the command line), so each server
    delivers the rows others wrote (``server/bus.py``).
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "ref"),
        CheckConstraint(
            "kind = 'event' OR (room_id IS NULL) <> (recipient IS NULL)", name="one_target"
        ),
        CheckConstraint("kind IN ('message', 'edit', 'delete', 'event')", name="kind"),
        Index("ix_messages_room_id_id", "room_id", "id"),
        Index("ix_messages_recipient_id_sender_id_id", "recipient_id", "sender_id", "id"),
        # For sync: a user's direct messages received and sent, each in id order. Partial
        # where the database can, so room messages (most of them) cost these nothing.
        Index(
            "ix_messages_direct_recipient_id_id",
            "recipient_id",
            "id",
            sqlite_where=text("recipient_id IS NOT NULL"),
            postgresql_where=text("recipient_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_direct_sender_id_id",
            "sender_id",
            "id",
            sqlite_where=text("room_id IS NULL"),
            postgresql_where=text("room_id IS NULL"),
        ),
        # Edits and deletions of one message, found when it is deleted.
        Index(
            "ix_messages_target_id",
            "target_id",
            sqlite_where=text("target_id IS NOT NULL"),
            postgresql_where=text("target_id IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},  # ids never reused: clients remember the last one
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recipient: Mapped[str | None] = mapped_column(String(NAME_MAX))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender: Mapped[str] = mapped_column(String(NAME_MAX))
    body: Mapped[str] = mapped_column(Text)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), default="message", server_default="message")
    target_id: Mapped[int | None]
    edited_ms: Mapped[int | None] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(default=False, server_default=false())
    action: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(NAME_MAX))
    origin: Mapped[str | None] = mapped_column(String(32))
    # The message's files (#27) as JSON, as clients get them; NULL: none (file_models.py).
    files: Mapped[str | None] = mapped_column(Text)


class Mention(Base):
    """``@name`` in a message's body, for a user who may read it: counted as unread mentions."""

    __tablename__ = "mentions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AuditEntry(Base):
    """Who did what to which room, and when: every moderation action, room creation and
    deletion, deletion of another's message; the console's too. Names, not ids: the
    record outlives the users and rooms it names."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_room_id", "room", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(NAME_MAX))
    action: Mapped[str] = mapped_column(String(16))
    room: Mapped[str | None] = mapped_column(String(NAME_MAX))
    target: Mapped[str | None] = mapped_column(String(NAME_MAX))
    message_id: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(Text)


class ResumeToken(Base):
    """A login without the password, for reconnects; only the token's SHA-256 is kept."""

    __tablename__ = "resume_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class Device(Base):
    """A browser that stays signed in (#26): only SHA-256 hashes of its cookie credential
    and of the single-use grant that made it are kept. A row with a grant and no credential
    is a grant not yet traded for its cookie."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    grant_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    grant_expires_at: Mapped[dt.datetime | None]
    name: Mapped[str] = mapped_column(String(DEVICE_NAME_MAX))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Node(Base):
    """A running server sharing the database (#17): its origin and its last heartbeat.

    ``seen_at`` is the database's clock, so nodes on several machines agree on who is
    late. A node unseen for ``node_ttl`` is dead: its users count as offline, and the
    first node to notice deletes its row (and its sessions with it).
    """

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    seen_at: Mapped[dt.datetime]


class NodeSession(Base):
    """A user with at least one session on node ``node``: presence shared between nodes."""

    __tablename__ = "node_sessions"

    node: Mapped[str] = mapped_column(
        ForeignKey("nodes.name", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CommitOrder(Base):
    """Never holds a row: every transaction that writes the journal on PostgreSQL locks this
    table (``LOCK TABLE ... IN EXCLUSIVE MODE``) until its COMMIT (``store/commit_order.py``).

    A table lock, unlike an advisory lock, needs a privilege on the table (UPDATE, DELETE or
    TRUNCATE): a role that may only connect to the database cannot take it, so it cannot
    stop every write by holding it.
    """

    __tablename__ = "commit_order"

    id: Mapped[int] = mapped_column(primary_key=True)


class NodeNews(Base):
    """News for the other nodes that no journal row carries (``store/news.py``): ``room_id``
    alone, the room's members changed (a plain join or leave); with ``user_id``, that user's
    read marker in the room, or in the conversation with ``peer_id``, moved.

    Written under the commit-order lock, so ids commit in order, like the journal's. The
    NOTIFY that wakes the other nodes carries no part of it: they read it from here, and
    the markers from ``memberships`` and ``dm_reads``. Only the newest rows are kept.
    """

    __tablename__ = "node_news"

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str | None] = mapped_column(String(40))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    peer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
