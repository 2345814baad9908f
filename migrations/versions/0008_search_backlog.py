"""Search (#16): new messages are indexed by the group commit when it is not busy, not by a
trigger on every insert (SQLite; PostgreSQL's trigram index is unchanged).

- ``messages_fts_state`` holds one row: ``indexed_through``, the id up to which
  ``messages_fts`` is complete. The upgrade sets it to the newest id (0007's triggers have
  indexed everything so far).
- The insert trigger goes. The update and delete triggers stay, for indexed rows only
  (``old.id <= indexed_through``): a row above the mark is not in the index yet, and FTS5
  must never be asked to remove what it does not hold.

The downgrade indexes the rows above the mark first, so 0007's triggers find a complete
index again. A later revision that rebuilds ``messages`` in batch mode (copy, drop,
rename) drops these triggers with the old table: it must create them again
(:func:`create_triggers`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = "messages_fts"
STATE = "messages_fts_state"
_MARK = f"(SELECT indexed_through FROM {STATE})"


def _indexed(row: str) -> str:
    return f"{row}.kind = 'message' AND NOT {row}.deleted"


def _add(row: str) -> str:
    return f"INSERT INTO {FTS} (rowid, body) SELECT {row}.id, {row}.body WHERE {_indexed(row)};"


def _remove(row: str) -> str:
    # External content: FTS5 removes a row given the values it indexed.
    return (
        f"INSERT INTO {FTS} ({FTS}, rowid, body)"
        f" SELECT 'delete', {row}.id, {row}.body WHERE {_indexed(row)};"
    )


def create_triggers() -> None:
    """The two SQLite triggers that keep the indexed rows of ``messages_fts`` current."""
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind, deleted ON messages"
        f" WHEN old.id <= {_MARK} BEGIN {_remove('old')} {_add('new')} END"
    )
    op.execute(
        "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages"
        f" WHEN old.id <= {_MARK} BEGIN {_remove('old')} END"
    )


def _drop_triggers(*names: str) -> None:
    for name in names:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        f"CREATE TABLE {STATE} (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " indexed_through INTEGER NOT NULL)"
    )
    op.execute(f"INSERT INTO {STATE} (id, indexed_through) SELECT 1, coalesce(max(id), 0) FROM messages")
    _drop_triggers("messages_fts_insert", "messages_fts_update", "messages_fts_delete")
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        f"INSERT INTO {FTS} (rowid, body) SELECT id, body FROM messages"
        f" WHERE id > {_MARK} AND {_indexed('messages')}"
    )
    _drop_triggers("messages_fts_update", "messages_fts_delete")
    op.execute(f"DROP TABLE {STATE}")
    # 0007's three triggers, as that revision made them.
    op.execute(f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {_add('new')} END")
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind, deleted ON messages"
        f" BEGIN {_remove('old')} {_add('new')} END"
    )
    op.execute(f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {_remove('old')} END")
