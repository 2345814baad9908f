"""Full-text search (#16): an index over the current text of chat messages.

- SQLite: an FTS5 table ``messages_fts`` (trigram tokenizer) with external content on
  ``messages``, holding the rows of kind 'message' that are not deleted, kept by triggers
  on insert, update (edits, tombstones) and delete (also a room's cascade). Its rows are
  exactly those, not all of ``messages``: never run FTS5's 'rebuild' on it.
- PostgreSQL: a pg_trgm GIN index on ``messages.body`` over the same rows. The extension
  must be installable by the migrating role (or already installed by a superuser).

The upgrade indexes the messages already stored. A later revision that rebuilds
``messages`` in batch mode (copy, drop, rename) drops these triggers with the old table:
it must create them again (:func:`create_triggers`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import exc

from securechat.errors import StoreError

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = "messages_fts"
TRIGRAM_INDEX = "ix_messages_body_trgm"
_INDEXED = "kind = 'message' AND NOT deleted"
_TRIGGERS = ("messages_fts_insert", "messages_fts_update", "messages_fts_delete")


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
    """The three SQLite triggers that keep ``messages_fts`` in step with ``messages``."""
    op.execute(f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {_add('new')} END")
    op.execute(
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind, deleted ON messages"
        f" BEGIN {_remove('old')} {_add('new')} END"
    )
    op.execute(f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {_remove('old')} END")


def _create_trigram_extension() -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first():
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except exc.DBAPIError as error:
        raise StoreError(
            "revision 0007 (search) needs PostgreSQL's pg_trgm extension, and this role may not"
            f" create it ({str(error.orig).strip()}); as a superuser, run CREATE EXTENSION"
            " pg_trgm in this database (Debian: package postgresql-contrib), then upgrade again"
        ) from error


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS} USING fts5(body, content='messages',"
            " content_rowid='id', tokenize='trigram')"
        )
        op.execute(f"INSERT INTO {FTS} (rowid, body) SELECT id, body FROM messages WHERE {_INDEXED}")
        op.execute(f"INSERT INTO {FTS} ({FTS}) VALUES ('optimize')")
        create_triggers()
    else:
        _create_trigram_extension()
        op.execute(
            f"CREATE INDEX {TRIGRAM_INDEX} ON messages USING gin (body gin_trgm_ops)"
            f" WHERE {_INDEXED}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")  # pg_trgm stays: others may use it
