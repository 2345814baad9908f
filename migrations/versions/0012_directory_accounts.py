"""Directory accounts (issue 28): ``users.directory_id`` keys an account to the directory's
stable id (objectGUID on Active Directory, entryUUID on OpenLDAP), so a person renamed in
the directory keeps their account; ``users.directory_disabled`` marks an account the
directory sync disabled (and may enable again), apart from one an admin disabled.

Both columns are added in place (ALTER TABLE ADD COLUMN) with a unique index: no table
is rebuilt on upgrade.
Existing users are local accounts (NULL id, not disabled by the sync).

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-20 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN, not batch mode: a rebuilt users table on SQLite would lose
    # AUTOINCREMENT (revision 0004) and fire ON DELETE actions.
    op.add_column("users", sa.Column("directory_id", sa.String(64), nullable=True))
    op.add_column(
        "users",
        sa.Column("directory_disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(op.f("ix_users_directory_id"), "users", ["directory_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_directory_id"), table_name="users")
    # SQLite rebuilds the table to drop columns: keep AUTOINCREMENT (run with foreign keys
    # off, as securechat.store.migrate arranges).
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("directory_disabled")
        batch.drop_column("directory_id")
