"""User ids are never reused (SQLite AUTOINCREMENT), so a re-added name is a new user.

SQLite cannot change a table's key in place: batch mode copies ``users`` into a new table
and drops the old one. Dropping a table fires its ON DELETE actions (memberships and
tokens would be deleted, messages would lose their sender) unless foreign keys are off,
which ``securechat.store.migrate`` arranges; this revision refuses to run otherwise.

On PostgreSQL it does nothing: ``users.id`` draws from a sequence (SERIAL since 0001), and
a sequence never hands out a value twice, even after the row holding it is deleted. No
table is rebuilt there, so foreign keys stay on (``foreign_keys_off`` is a no-op).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_users(*, autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # a sequence (PostgreSQL) or identity column never reuses a value
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("revision 0004 rebuilds users: run it with foreign keys off")
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"revision 0004 left rows without their user: {broken[:5]}")


def upgrade() -> None:
    _rebuild_users(autoincrement=True)


def downgrade() -> None:
    _rebuild_users(autoincrement=False)
