"""The first admin owns #general (issue 26): an ownerless ``general`` gets the first admin
(the lowest id among admins who are not disabled) as its owner, joining it if they are not
in it (their read marker at the newest message, as a join sets it), with an audit entry by
``console``. Nothing changes when there is no ``general``, it has an owner, or there is no
admin. A server from now on does the same at ``adduser --admin`` (store/general.py).

No schema change. The downgrade leaves the owner: an owner is valid data for 0014 too, and
who owned #general before cannot be told from who was given it here.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    room = conn.execute(
        sa.text("SELECT id FROM rooms WHERE name = 'general' AND owner_id IS NULL")
    ).first()
    admin = conn.execute(
        sa.text(
            "SELECT id, name FROM users WHERE is_admin = :yes AND is_disabled = :no"
            " ORDER BY id LIMIT 1"
        ),
        {"yes": True, "no": False},
    ).first()
    if room is None or admin is None:
        return
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name == "sqlite":  # naive UTC there, as models.UTCDateTime keeps it
        now = now.replace(tzinfo=None)
    ids = {"room": room[0], "user": admin[0]}
    conn.execute(sa.text("UPDATE rooms SET owner_id = :user WHERE id = :room"), ids)
    newest = conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM messages")).scalar_one()
    rejoined = conn.execute(
        sa.text(
            "UPDATE memberships SET left_at_id = NULL, role = 'member'"
            " WHERE room_id = :room AND user_id = :user AND left_at_id IS NOT NULL"
        ),
        ids,
    ).rowcount
    member = conn.execute(
        sa.text("SELECT 1 FROM memberships WHERE room_id = :room AND user_id = :user"), ids
    ).first()
    if member is None:
        conn.execute(
            sa.text(
                "INSERT INTO memberships (room_id, user_id, role, joined_at, muted, last_read_id)"
                " VALUES (:room, :user, 'member', :now, :no, :newest)"
            ),
            {**ids, "now": now, "no": False, "newest": newest},
        )
    elif rejoined:
        conn.execute(
            sa.text(
                "UPDATE memberships SET last_read_id = :newest"
                " WHERE room_id = :room AND user_id = :user"
            ),
            {**ids, "newest": newest},
        )
    conn.execute(
        sa.text(
            "INSERT INTO audit_log (at, actor, action, room, target, detail)"
            " VALUES (:now, 'console', 'transfer', 'general', :name, :detail)"
        ),
        {"now": now, "name": admin[1], "detail": "migration 0014: the first admin owns #general"},
    )


def downgrade() -> None:
    """Nothing to undo in the schema; the owner stays (see the module docstring)."""
