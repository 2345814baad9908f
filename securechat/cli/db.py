"""``securechat db``: inspect and upgrade the database schema.

Every command that uses the database upgrades it on its own; these commands are for admins
who want to upgrade at a moment of their choosing or check where a database stands.
"""

from __future__ import annotations

import typer

from securechat.cli.app import command_group
from securechat.cli.options import DB_DEFAULT, ConfigPath, DbUrl

db_app = command_group(
    "db",
    "Inspect and upgrade the database schema.",
)


@db_app.command()
def upgrade(config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Apply every missing schema migration (safe to run at any time)."""
    from securechat.store.database import open_database
    from securechat.store.migrate import current_revision, upgrade_to_head

    database = open_database(db, migrate=False)
    try:
        before = current_revision(database.engine)
        upgrade_to_head(database.engine)
        after = current_revision(database.engine)
    finally:
        database.dispose()
    if before == after:
        typer.echo(f"database already at revision {after}")
    else:
        typer.echo(f"upgraded database from revision {before or 'none (empty)'} to {after}")


@db_app.command()
def current(config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Print the database's schema revision and the newest one this version knows."""
    from securechat.store.database import open_database
    from securechat.store.migrate import current_revision, head_revision

    database = open_database(db, migrate=False)
    try:
        revision = current_revision(database.engine)
    finally:
        database.dispose()
    head = head_revision()
    typer.echo(f"current: {revision or 'none (empty database)'}")
    typer.echo(f"head:    {head}")
    if revision != head:
        typer.echo("run `securechat db upgrade` to bring the database up to date")
