"""``securechat directory``: run the directory sync now, and see what the server sees for
one person, both from the ``[directory]`` table of the configuration file. The LDAP client
and the store are imported when a command runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from securechat.cli import configuration
from securechat.cli.app import command_group
from securechat.cli.options import DB_DEFAULT, ConfigPath, DbUrl
from securechat.directory.settings import DirectoryConfig
from securechat.errors import ConfigError, DirectoryError
from securechat.protocol.names import normalize_name

if TYPE_CHECKING:
    from securechat.store.database import Database

directory_app = command_group(
    "directory",
    "Directory login (LDAP, Active Directory): sync now, or test one person "
    "(docs/deploy.md, 'Sign in with Active Directory or LDAP').",
)


def _config(ctx: typer.Context) -> DirectoryConfig:
    found = configuration.directory(ctx)
    if found is None:
        where = configuration.loaded(ctx)
        raise ConfigError(
            "no [directory] table in "
            + (str(where.path) if where else "any configuration file: give --config FILE")
        )
    return found


@contextlib.contextmanager
def _database(db_url: str) -> Iterator[Database]:
    from securechat.store.database import open_database

    database = open_database(db_url)
    try:
        yield database
    finally:
        database.dispose()


@directory_app.command()
def sync(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Apply even when more than max_disable_share of the directory accounts would be disabled.")] = False,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:  # fmt: skip
    """Make directory accounts follow the directory now: disable those disabled or gone
    there (ending their sessions, revoking their tokens), enable again those the sync
    disabled, and apply the group mapping to admin and rooms. A running server sees each
    change within seconds. Prints one line per change; nothing changes when the directory
    cannot be read, or (without --force) when too many would be disabled."""
    from securechat.directory.sync import DirectorySync
    from securechat.store.chat import ChatStore

    settings = _config(ctx)
    with _database(db) as database:
        store = ChatStore(database)  # the console's writer: a running server tails its rows
        report = DirectorySync(settings, database, store.perform).run(force=force)
    if report.stopped is not None:
        for line in report.lines():
            typer.echo(f"would {line}")
        raise DirectoryError(report.stopped)
    lines = report.lines()
    for line in lines:
        typer.echo(line)
    typer.echo(f"directory sync: {len(lines)} change{'s' if len(lines) != 1 else ''}")


@directory_app.command("test")
def show_person(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The login name.", show_default=False)],
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:  # fmt: skip
    """Show what the server sees for NAME, without logging in: the directory server and
    its certificate, the DN, attributes, stable id and groups, and the rooms and role they
    map to. Exit status 1 when the directory has no enabled person of that name."""
    from securechat.directory.client import DirectoryClient
    from securechat.directory.mapping import grants_for
    from securechat.store.directory import DirectoryStore

    settings = _config(ctx)
    client = DirectoryClient(settings)
    probe = client.probe()
    typer.echo(f"server:       {probe.url} ({probe.tls_version}, certificate from {probe.issuer}, "
               f"valid until {probe.not_after:%Y-%m-%d})")  # fmt: skip
    canonical = normalize_name(name)
    user = client.find_user(canonical or name)
    if user is None:
        raise DirectoryError(
            f"no enabled user {name!r} under {settings.user_base} matching "
            f"{settings.user_filter}: they cannot log in"
        )
    groups = client.groups_of(user.dn, [group.dn for group in settings.groups])
    grants = grants_for(settings, groups)
    rooms = [f"#{room} ({role})" for room, role in sorted(grants.rooms.items()) if role]
    role = {None: "left as it is (no group maps to admin)", True: "admin", False: "user"}
    for label, value in (
        ("dn", user.dn),
        (settings.login_attribute, user.login),
        (settings.id_attribute, user.stable_id),
        (settings.display_name_attribute, user.display_name or "-"),
        (settings.mail_attribute, user.mail or "-"),
        ("groups", ", ".join(sorted(groups)) or "none of the mapped groups"),
        ("rooms", ", ".join(rooms) or "none"),
        ("role", role[grants.is_admin]),
        ("chat name", canonical or f"none: {user.login!r} breaks the name rule"),
    ):
        typer.echo(f"{label + ':':<13} {value}")
    with _database(db) as database:
        kind = None if canonical is None else DirectoryStore(database).kind_of(canonical)
    account = {
        None: "none yet (made at the first login)",
        "directory": "a directory account",
        "local": "a LOCAL account of that name exists: "
        + ("the directory wins" if settings.directory_wins else "it wins (local_wins)"),
    }
    typer.echo(f"{'account:':<13} {account[kind]}")
