"""Nodes coordinate through tables only the database's owner can use (issue 23):
``commit_order``, the table every journal write locks (instead of an advisory lock any
role that may connect could hold), and ``node_news``, the news without a journal row
(instead of names and ids in a NOTIFY payload any role could send or hear).

``commit_order`` never holds a row; ``node_news`` holds only recent news, which running
nodes have read within a second: the downgrade just drops them. Portable SQL; only servers
on PostgreSQL use them.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-12 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commit_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commit_order")),
    )
    op.create_table(
        "node_news",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(40), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("peer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_node_news_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_node_news_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["users.id"], name=op.f("fk_node_news_peer_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_news")),
    )


def downgrade() -> None:
    op.drop_table("node_news")
    op.drop_table("commit_order")
