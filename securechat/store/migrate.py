"""Programmatic Alembic: bring a database to the newest schema without an ``alembic.ini``.

The revision scripts ship in two places: inside the installed wheel as
``securechat/migrations`` (hatchling force-include) and at the top of a source checkout as
``migrations/`` (editable installs). :func:`script_location` finds whichever exists. The
caller's connection is handed to ``migrations/env.py`` through ``Config.attributes``, so
migrations run on the same engine, with the same SQLite pragmas, as the application.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine

import securechat
from securechat.errors import StoreError
from securechat.store import file_models  # noqa: F401  (its tables join Base.metadata)
from securechat.store.models import Base
from securechat.store.search import is_search_object


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/``.

    Raises:
        StoreError: neither the installed nor the source-checkout location exists.
    """
    package_dir = Path(securechat.__file__).resolve().parent
    candidates = (package_dir / "migrations", package_dir.parent / "migrations")
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise StoreError(f"database migrations not found (looked in {tried}); reinstall securechat")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code; ``connection`` is used by env.py when given."""
    config = Config()
    # Config values go through configparser interpolation, so a '%' in the path must be doubled.
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of securechat knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError("no database migrations found; reinstall securechat")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty (never migrated) database.

    Raises:
        StoreError: the database cannot be read.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except exc.OperationalError as error:
        raise StoreError(f"cannot read the schema revision: {error.orig}") from error


@contextmanager
def foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, turn foreign keys off while a migration runs on ``connection``.

    A revision that rebuilds a table (batch mode: copy, drop, rename) would otherwise fire
    the ON DELETE actions of the rows it drops. The pragma does nothing inside a
    transaction, so this must wrap the migration's transaction, not run in it. Elsewhere
    (PostgreSQL) no revision rebuilds a table, and foreign keys stay on.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def upgrade_to_head(engine: Engine) -> None:
    """Apply every missing revision in one transaction; a no-op when already at head.

    Raises:
        StoreError: the database cannot be written, or is at a revision this version does not
            know (it was upgraded by a newer securechat).
    """
    try:
        with engine.connect() as connection, foreign_keys_off(connection), connection.begin():
            command.upgrade(alembic_config(connection), "head")
    except CommandError as error:
        raise StoreError(
            f"cannot upgrade the database: {error} (was it created by a newer securechat?)"
        ) from error
    except exc.OperationalError as error:
        raise StoreError(f"cannot upgrade the database: {error.orig}") from error


def schema_differences(engine: Engine) -> list[object]:
    """What Alembic autogenerate sees between the models and the database; empty means in sync."""
    with engine.connect() as connection:
        opts = {
            "compare_type": True,
            # Built in SQL by revision 0007, not modelled: not drift.
            "include_name": lambda name, _type, _parents: not is_search_object(name),
        }
        context = MigrationContext.configure(connection, opts=opts)
        return list(compare_metadata(context, Base.metadata))
