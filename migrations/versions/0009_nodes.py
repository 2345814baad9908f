"""Several nodes on one database (#17): ``nodes`` (heartbeats) and ``node_sessions``
(which users are online on which node), for presence and ``who`` across nodes.

Both tables hold only live state, rebuilt by running nodes within a heartbeat: the
downgrade just drops them. Portable SQL; only servers on PostgreSQL write them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_nodes")),
    )
    op.create_table(
        "node_sessions",
        sa.Column("node", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["node"], ["nodes.name"], name=op.f("fk_node_sessions_node_nodes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_node_sessions_user_id_users"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("node", "user_id", name=op.f("pk_node_sessions")),
    )
    op.create_index(op.f("ix_node_sessions_user_id"), "node_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_node_sessions_user_id"), table_name="node_sessions")
    op.drop_table("node_sessions")
    op.drop_table("nodes")
