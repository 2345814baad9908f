"""When a user was last seen (issue 26): ``users.last_seen_at``, the time a session of
theirs last ended, written by the group commit as login times are. The people list shows
the later of it and ``last_login_at`` for someone offline; before this revision nobody's
session end was kept, so existing users start with none.

Revision ID: 0011
Revises: 0010
Create Date: 2027-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN, not batch mode: a rebuilt users table on SQLite would lose
    # AUTOINCREMENT (revision 0004) and fire ON DELETE actions.
    op.add_column("users", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite rebuilds the table to drop a column: keep AUTOINCREMENT (run with foreign keys
    # off, as securechat.store.migrate arranges).
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("last_seen_at")
