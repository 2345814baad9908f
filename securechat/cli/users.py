"""User management commands: adduser, passwd, deluser, users, disable, enable.

Each command opens the database (bringing it to the newest schema), does one thing through
:class:`securechat.accounts.Accounts` and prints one line saying what it did. Mistakes are
raised as ``SecureChatError`` subclasses; ``securechat.cli.main`` prints them. The one
exception is ``adduser --from-file``, which reports each bad line on stderr, carries on with
the rest and fails at the end, so one typo does not hold up a whole office. The database and
the password hasher are imported by the commands that run, not by ``--help``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from securechat.cli.app import app
from securechat.cli.options import DB_DEFAULT, ConfigPath, DbUrl
from securechat.config import HashParams, PasswordPolicy
from securechat.errors import UserError, UserExistsError

if TYPE_CHECKING:
    from securechat.accounts import Account, Accounts

#: Lowercase letters and digits without the look-alikes i, l, o, 0 and 1.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

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


def password_policy() -> PasswordPolicy:
    """The default policy, with this machine's host name (and its first label) as words
    a password must not be built on: the server runs where its database is."""
    host = socket.gethostname().lower().rstrip(".")
    names = (host, host.split(".", 1)[0]) if host not in ("", "localhost") else ()
    defaults = PasswordPolicy()
    return dataclasses.replace(
        defaults, context_words=tuple(dict.fromkeys((*defaults.context_words, *names)))
    )


@contextmanager
def _accounts(db_url: str) -> Iterator[Accounts]:
    from securechat.accounts import Accounts
    from securechat.store.database import open_database

    database = open_database(db_url)
    try:
        yield Accounts(database, hash_params=HashParams(), policy=password_policy())
    finally:
        database.dispose()


def _read_password(from_stdin: bool, check: Callable[[str], None]) -> str:
    """The new password, from stdin's first line or from two hidden prompts.

    ``check`` applies the policy to the first entry, so a refused password is not typed
    twice.
    """
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
    check(password)
    if typer.prompt("Repeat password", hide_input=True) != password:
        raise UserError("the two passwords do not match")
    return password


@app.command()
def adduser(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="The user's login name (or use --from-file).", show_default=False
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password_stdin: PasswordStdin = False,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            help="Add every user named in FILE, one name per line ('-': standard input; blank "
            "lines and # comments are ignored), each with a generated password printed once.",
            show_default=False,
        ),
    ] = None,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Add a user who can log in to the chat, or many at once with --from-file.

    A password that is short or easily guessed (common, a pattern, or built on the user or
    server name) is refused with the reason.
    """
    if from_file is not None:
        if name is not None:
            raise UserError("give either NAME or --from-file, not both")
        if admin or password_stdin:
            flag = "--admin" if admin else "--password-stdin"
            raise UserError(f"{flag} cannot be combined with --from-file; add that user alone")
        _add_from_file(from_file, db)
        return
    if name is None:
        raise UserError("name the user to add: `securechat adduser NAME` (or --from-file FILE)")
    from securechat.accounts import canonical_name

    name = canonical_name(name)
    with _accounts(db) as accounts:
        if accounts.exists(name):
            raise UserExistsError(f"user {name} already exists")
        password = _read_password(password_stdin, partial(accounts.check_password, name))
        account = accounts.add(name, password, admin=admin)
    typer.echo(f"added {'admin' if account.is_admin else 'user'} {account.name}")
    if account.is_admin:
        _first_admin_owns_general(db, account.name)


def _first_admin_owns_general(db_url: str, admin: str) -> None:
    """The first admin owns #general (store/general.py); says so when it happened."""
    from securechat.store.chat import ChatStore
    from securechat.store.database import open_database
    from securechat.store.general import first_admin_owns_general

    database = open_database(db_url)
    try:
        done = ChatStore(database).perform(partial(first_admin_owns_general, admin=admin))
    finally:
        database.dispose()
    if done.changed:
        typer.echo(f"{admin} owns #{done.room}: the first admin")


def generate_password() -> str:
    """About 79 random bits as four groups of four easily told-apart characters."""
    chars = [secrets.choice(PASSWORD_ALPHABET) for _ in range(16)]
    return "-".join("".join(chars[i : i + 4]) for i in range(0, 16, 4))


def _read_names(source: str) -> list[tuple[int, str]]:
    """(line number, name) for each line of ``source`` that names someone."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read {source}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise UserError(f"{source} is not UTF-8 text") from error
    entries = [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1)]
    entries = [(n, entry) for n, entry in entries if entry]
    if not entries:
        raise UserError(f"{'standard input' if source == '-' else source} names no users")
    return entries


def _add_from_file(source: str, db_url: str) -> None:
    """Add each listed user; report and skip the lines that fail, then fail if any did.

    Each row is printed as soon as its user exists, so the passwords of those already added
    are never lost, even if the database fails half-way.
    """
    from securechat.accounts import canonical_name

    label = "stdin" if source == "-" else source
    entries = _read_names(source)
    width = max(len("NAME"), *(len(entry) for _, entry in entries))
    seen: set[str] = set()
    added = failed = 0
    with _accounts(db_url) as accounts:
        for line, entry in entries:
            try:
                name = canonical_name(entry)
                if name in seen:
                    raise UserExistsError(f"user {name} is listed twice")
                seen.add(name)
                password = generate_password()
                accounts.add(name, password)
            except UserError as error:
                failed += 1
                typer.echo(f"securechat: {label}:{line}: {error.message}; skipped", err=True)
                continue
            if added == 0:
                typer.echo(f"{'NAME':<{width}}  PASSWORD")
            typer.echo(f"{name:<{width}}  {password}")
            added += 1
    if added:
        typer.echo(
            f"added {added} user(s); hand each password over privately, it is not shown again",
            err=True,
        )
    if failed:
        raise UserError(f"{failed} of {len(entries)} user(s) not added (see above)")


@app.command()
def passwd(
    name: UserName,
    password_stdin: PasswordStdin = False,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Set a new password for a user; one easily guessed is refused, as by adduser."""
    with _accounts(db) as accounts:
        account = accounts.get(name)
        check = partial(accounts.check_password, account.name)
        accounts.set_password(account.name, _read_password(password_stdin, check))
    typer.echo(f"changed the password of {account.name}")


@app.command()
def deluser(
    name: UserName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigPath = None,
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
def disable(name: UserName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Block a user's logins without deleting the account."""
    from securechat.accounts import canonical_name

    with _accounts(db) as accounts:
        accounts.set_disabled(name, True)
    typer.echo(f"disabled user {canonical_name(name)}")


@app.command()
def enable(name: UserName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Allow a disabled user to log in again."""
    from securechat.accounts import canonical_name

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
def list_users(config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """List every user, with flags and login times (UTC)."""
    with _accounts(db) as accounts:
        everyone = accounts.list()
    if not everyone:
        typer.echo("no users yet: add one with `securechat adduser NAME`")
        return
    typer.echo(format_table(everyone))
