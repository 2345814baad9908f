"""Shared files (issue 27): a table of files (metadata only: the bytes live in the files
folder), a table of one-use tickets for their HTTP requests, and ``messages.files``, the
JSON list of a message's files as clients get them.

New tables and a new nullable column: no existing row changes. The downgrade drops them
(the files folder is left as it is: its files are then unreachable).

Revision ID: 0014
Revises: 0013
Create Date: 2027-03-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("uploader_id", sa.Integer(), nullable=True),
        sa.Column("uploader", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("thumbnail", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["uploader_id"], ["users.id"], name=op.f("fk_files_uploader_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_files_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )  # fmt: skip
    op.create_index(op.f("ix_files_message_id"), "files", ["message_id"])
    op.create_index("ix_files_uploader_id_created_at", "files", ["uploader_id", "created_at"])
    op.create_table(
        "file_tickets",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=True),
        sa.Column("thumbnail", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("upload_name", sa.String(length=1024), nullable=True),
        sa.Column("upload_size", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_file_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_file_tickets")),
    )  # fmt: skip
    op.create_index(op.f("ix_file_tickets_user_id"), "file_tickets", ["user_id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("files", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("files")
    op.drop_index(op.f("ix_file_tickets_user_id"), table_name="file_tickets")
    op.drop_table("file_tickets")
    op.drop_index("ix_files_uploader_id_created_at", table_name="files")
    op.drop_index(op.f("ix_files_message_id"), table_name="files")
    op.drop_table("files")
