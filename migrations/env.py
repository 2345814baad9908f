"""Alembic environment for securechat.

Two ways in:

* The application (``securechat.store.migrate``) builds a ``Config`` in code and passes its
  own open connection as ``config.attributes["connection"]``.
* A developer runs ``alembic upgrade head`` or ``alembic revision --autogenerate`` from the
  repository root; the URL comes from ``SECURECHAT_DB`` or else ``sqlalchemy.url`` in
  alembic.ini.

``render_as_batch`` lets ALTER-style operations work on SQLite (copy-and-move tables).
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from securechat.store import file_models  # noqa: F401  (its tables join Base.metadata)
from securechat.store.database import create_database_engine
from securechat.store.migrate import foreign_keys_off
from securechat.store.models import Base
from securechat.store.search import is_search_object

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """The search index (revision 0007) is built in SQL, not modelled: not drift."""
    return not is_search_object(name)


if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = os.environ.get("SECURECHAT_DB") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set SECURECHAT_DB or sqlalchemy.url in alembic.ini")
    return url


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = create_database_engine(_database_url())
    try:
        with engine.connect() as connection, foreign_keys_off(connection):
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
