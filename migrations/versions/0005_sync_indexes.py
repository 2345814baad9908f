"""Indexes for sync: a user's direct messages received and sent, each in id order.

Partial (direct messages only) on SQLite and PostgreSQL, so room messages cost them nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {f"{db}_where": sa.text(condition) for db in ("sqlite", "postgresql")}


def upgrade() -> None:
    op.create_index(
        "ix_messages_direct_recipient_id_id",
        "messages",
        ["recipient_id", "id"],
        **_where("recipient_id IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_direct_sender_id_id", "messages", ["sender_id", "id"], **_where("room_id IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_messages_direct_sender_id_id", table_name="messages")
    op.drop_index("ix_messages_direct_recipient_id_id", table_name="messages")
