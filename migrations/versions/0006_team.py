"""Team chat (#16): private rooms and roles, the journal, read markers, mentions, audit.

- rooms: ``is_private``, ``topic``, ``owner_id`` (existing rooms start public and ownerless:
  an admin names an owner with ``securechat room transfer``);
- memberships: ``role``, ``muted``, ``last_read_id`` and ``left_at_id`` (the row is kept
  when a member leaves); existing members have read everything up to now;
- room_bans, room_invites, dm_reads (existing direct conversations read up to now),
  mentions, audit_log;
- messages become the journal: ``kind``, ``target_id``, ``edited_ms``, ``deleted``,
  ``action``, ``subject``, ``origin``, and a room event may outlive its room (the check
  ``one_target`` allows an ``event`` without one).

SQLite cannot change a check constraint in place: batch mode copies ``messages`` into a
new table (AUTOINCREMENT and the partial indexes kept), which must run with foreign keys
off (``securechat.store.migrate`` arranges it), as revision 0004 does for users. Other
databases alter the table in place. Every statement here is portable SQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_TARGET = "(room_id IS NULL) <> (recipient IS NULL)"
_NEW_TARGET = "kind = 'event' OR (room_id IS NULL) <> (recipient IS NULL)"
_LAST_ID = "(SELECT coalesce(max(id), 0) FROM messages)"


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {f"{db}_where": sa.text(condition) for db in ("sqlite", "postgresql")}


def _require_foreign_keys_off() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("revision 0006 rebuilds messages: run it with foreign keys off")


def _check_foreign_keys() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"revision 0006 left rows without their parent: {broken[:5]}")


def _user_fk(table: str, column: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete=ondelete
    )


def _room_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["room_id"], ["rooms.id"], name=op.f(f"fk_{table}_room_id_rooms"), ondelete="CASCADE"
    )


def upgrade() -> None:
    _require_foreign_keys_off()
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("is_private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("topic", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_rooms_owner_id_users"), "users", ["owner_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), server_default="member", nullable=False))
        batch.add_column(sa.Column("muted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("last_read_id", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("left_at_id", sa.Integer(), nullable=True))
        batch.create_check_constraint(op.f("ck_memberships_role"), "role IN ('member', 'moderator')")
    op.execute(f"UPDATE memberships SET last_read_id = {_LAST_ID}")

    with op.batch_alter_table(
        "messages", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(sa.Column("kind", sa.String(length=8), server_default="message", nullable=False))
        batch.add_column(sa.Column("target_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("edited_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("action", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(length=32), nullable=True))
        batch.drop_constraint(op.f("ck_messages_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_one_target"), _NEW_TARGET)
        batch.create_check_constraint(
            op.f("ck_messages_kind"), "kind IN ('message', 'edit', 'delete', 'event')"
        )
    op.create_index("ix_messages_target_id", "messages", ["target_id"], **_where("target_id IS NOT NULL"))

    op.create_table(
        "room_bans",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("banned_by", sa.String(length=32), nullable=False),
        _room_fk("room_bans"),
        _user_fk("room_bans", "user_id"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_bans")),
    )
    op.create_index(op.f("ix_room_bans_user_id"), "room_bans", ["user_id"])
    op.create_table(
        "room_invites",
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_by", sa.String(length=32), nullable=False),
        _room_fk("room_invites"),
        _user_fk("room_invites", "user_id"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_invites")),
    )
    op.create_index(op.f("ix_room_invites_user_id"), "room_invites", ["user_id"])
    op.create_table(
        "dm_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("last_read_id", sa.Integer(), server_default="0", nullable=False),
        _user_fk("dm_reads", "user_id"),
        _user_fk("dm_reads", "peer_id"),
        sa.PrimaryKeyConstraint("user_id", "peer_id", name=op.f("pk_dm_reads")),
    )
    op.create_index(op.f("ix_dm_reads_peer_id"), "dm_reads", ["peer_id"])
    # Direct conversations held before this revision count as read up to now.
    op.execute(
        "INSERT INTO dm_reads (user_id, peer_id, last_read_id)"
        f" SELECT DISTINCT recipient_id, sender_id, {_LAST_ID} FROM messages"
        " WHERE recipient_id IS NOT NULL AND sender_id IS NOT NULL AND recipient_id <> sender_id"
    )
    op.create_table(
        "mentions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_mentions_message_id_messages"), ondelete="CASCADE"
        ),
        _user_fk("mentions", "user_id"),
        sa.PrimaryKeyConstraint("user_id", "message_id", name=op.f("pk_mentions")),
    )
    op.create_index(op.f("ix_mentions_message_id"), "mentions", ["message_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("room", sa.String(length=32), nullable=True),
        sa.Column("target", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_room_id", "audit_log", ["room", "id"])
    _check_foreign_keys()


def downgrade() -> None:
    _require_foreign_keys_off()
    op.drop_index("ix_audit_log_room_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_mentions_message_id"), table_name="mentions")
    op.drop_table("mentions")
    op.drop_index(op.f("ix_dm_reads_peer_id"), table_name="dm_reads")
    op.drop_table("dm_reads")
    op.drop_index(op.f("ix_room_invites_user_id"), table_name="room_invites")
    op.drop_table("room_invites")
    op.drop_index(op.f("ix_room_bans_user_id"), table_name="room_bans")
    op.drop_table("room_bans")
    op.drop_index("ix_messages_target_id", table_name="messages")
    # Rows that only the journal has (edits, deletions, events) have no place in 0005.
    op.execute("DELETE FROM messages WHERE kind <> 'message'")
    with op.batch_alter_table(
        "messages", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint(op.f("ck_messages_kind"), type_="check")
        batch.drop_constraint(op.f("ck_messages_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_one_target"), _OLD_TARGET)
        for column in ("origin", "subject", "action", "deleted", "edited_ms", "target_id", "kind"):
            batch.drop_column(column)
    op.execute("DELETE FROM memberships WHERE left_at_id IS NOT NULL")  # former members
    with op.batch_alter_table("memberships") as batch:
        batch.drop_constraint(op.f("ck_memberships_role"), type_="check")
        for column in ("left_at_id", "last_read_id", "muted", "role"):
            batch.drop_column(column)
    with op.batch_alter_table("rooms") as batch:
        batch.drop_constraint(op.f("fk_rooms_owner_id_users"), type_="foreignkey")
        for column in ("owner_id", "topic", "is_private"):
            batch.drop_column(column)
    _check_foreign_keys()
