"""Persistence: SQLAlchemy models, the engine and session factory, and schema migrations.

SQLAlchemy, ORM rows and sessions stay inside ``store``: its modules hand everything above
frozen values (``chat`` for rooms and messages, ``users`` for users and resume tokens).
"""

from __future__ import annotations

from securechat.store.database import Database, open_database
from securechat.store.migrate import current_revision, head_revision, upgrade_to_head

__all__ = ["Database", "current_revision", "head_revision", "open_database", "upgrade_to_head"]
