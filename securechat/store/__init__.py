"""Persistence: SQLAlchemy models, the engine and session factory, and schema migrations.

ORM rows and sessions stay inside ``store`` and the modules that call it directly
(``accounts``); everything above works with frozen values.
"""

from __future__ import annotations

from securechat.store.database import Database, open_database
from securechat.store.migrate import current_revision, head_revision, upgrade_to_head

__all__ = ["Database", "current_revision", "head_revision", "open_database", "upgrade_to_head"]
