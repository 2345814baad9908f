"""User management commands: adduser, passwd, deluser, users, disable, enable.

Each command opens the database (bringing it to the newest schema), does one thing through
:class:`securechat.accounts.Accounts` and prints one line saying what it did. Mistakes are
raised as ``SecureChatError`` subclasses; ``securechat.cli.main`` prints them.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from securechat.accounts import Account, Accounts, canonical_name
from securechat.cli.app import app
from securechat.cli.options import DB_DEFAULT, DbUrl
from securechat.config import HashParams
from securechat.errors import UserError, UserExistsError
from securechat.store.database import open_database

UserName = Annotated[
    str, typer.Argument(metavar="NAME", help="The user's login name.", show_default=False)
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input instead of prompting.",
    ),
]


@contextmanager
def _accounts(db_url: str) -> Iterator[Accounts]:
    database = open_database(db_url)
    try:
        yield Accounts(database, hash_params=HashParams())
    finally:
        database.dispose()


def _read_password(from_stdin: bool) -> str:
    """The new password, from stdin's first line or from two hidden prompts."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UserError("no password on standard input")
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise UserError(
            "standard input is not a terminal: pass --password-stdin to pipe a password"
        )
    password: str = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat password", hide_input=True) != password:
        raise UserError("the two passwords do not match")
    return password


@app.command()
def adduser(
    name: UserName,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password_stdin: PasswordStdin = False,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Add a user who can log in to the chat."""
    name = canonical_name(name)
    with _accounts(db) as accounts:
        if accounts.exists(name):
            raise UserExistsError(f"user {name} already exists")
        account = accounts.add(name, _read_password(password_stdin), admin=admin)
    typer.echo(f"added {'admin' if account.is_admin else 'user'} {account.name}")


@app.command()
def passwd(name: UserName, password_stdin: PasswordStdin = False, db: DbUrl = DB_DEFAULT) -> None:
    """Set a new password for a user."""
    with _accounts(db) as accounts:
        account = accounts.get(name)
        accounts.set_password(account.name, _read_password(password_stdin))
    typer.echo(f"changed the password of {account.name}")


@app.command()
def deluser(
    name: UserName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Delete a user for good (see `disable` to only block logins)."""
    with _accounts(db) as accounts:
        account = accounts.get(name)
        if not yes:
            if not sys.stdin.isatty():
                raise UserError(f"not deleting {account.name} without confirmation: pass --yes")
            if not typer.confirm(f"Delete user {account.name}?", default=False):
                typer.echo(f"kept user {account.name}")
                raise typer.Exit(code=1)
        accounts.delete(account.name)
    typer.echo(f"deleted user {account.name}")


@app.command()
def disable(name: UserName, db: DbUrl = DB_DEFAULT) -> None:
    """Block a user's logins without deleting the account."""
    with _accounts(db) as accounts:
        accounts.set_disabled(name, True)
    typer.echo(f"disabled user {canonical_name(name)}")


@app.command()
def enable(name: UserName, db: DbUrl = DB_DEFAULT) -> None:
    """Allow a disabled user to log in again."""
    with _accounts(db) as accounts:
        accounts.set_disabled(name, False)
    typer.echo(f"enabled user {canonical_name(name)}")


def _when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_table(accounts: list[Account]) -> str:
    """Accounts as left-aligned columns under a header line."""
    rows = [("NAME", "ADMIN", "DISABLED", "CREATED", "LAST LOGIN")]
    for a in accounts:
        flags = ("yes" if a.is_admin else "no", "yes" if a.is_disabled else "no")
        rows.append((a.name, *flags, _when(a.created_at), _when(a.last_login_at)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@app.command("users")
def list_users(db: DbUrl = DB_DEFAULT) -> None:
    """List every user, with flags and login times (UTC)."""
    with _accounts(db) as accounts:
        everyone = accounts.list()
    if not everyone:
        typer.echo("no users yet: add one with `securechat adduser NAME`")
        return
    typer.echo(format_table(everyone))
