"""Resume tokens, and the time a user's credentials last changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("credentials_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "resume_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_resume_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resume_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_resume_tokens_token_hash")),
    )
    op.create_index(op.f("ix_resume_tokens_user_id"), "resume_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_resume_tokens_user_id"), table_name="resume_tokens")
    op.drop_table("resume_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("credentials_changed_at")
