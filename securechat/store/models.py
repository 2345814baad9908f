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

from securechat.protocol.names import NAME_MAX

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
    # Set by passwd and disable: sessions opened before it are ended, tokens revoked.
    credentials_changed_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, name={self.name!r})"


class Room(Base):
    """A chat room; created by the first ``join``, never deleted."""

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ChatMessage(Base):
    """A stored message: to a room, or directly to one user.

    Names are stored beside the ids so history still reads right after a user is deleted
    (the ids become NULL). ``ref`` is the sender's own id for the message; (sender, ref)
    is unique, which is what makes a resend after a lost ack harmless.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "ref"),
        CheckConstraint("(room_id IS NULL) <> (recipient IS NULL)", name="one_target"),
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


class ResumeToken(Base):
    """A login without the password, for reconnects; only the token's SHA-256 is kept."""

    __tablename__ = "resume_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
