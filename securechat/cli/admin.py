"""Commands for running a server in an office: backup, restore, doctor, service-unit.

The backup machinery (SQLAlchemy, Alembic) and the doctor's checks are imported when their
command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated

import typer

from securechat.cli import configuration
from securechat.cli.app import app
from securechat.cli.options import (
    CERTS_DEFAULT,
    DB_DEFAULT,
    CertsDir,
    ConfigPath,
    DbUrl,
    FilesDir,
)
from securechat.config import DEFAULT_PORT, DEFAULT_WEB_PORT
from securechat.deploy import default_executable, hidden_from_service, service_unit
from securechat.errors import UserError

if TYPE_CHECKING:
    from securechat.attachments.backup import FilesSummary
    from securechat.store.backup import DatabaseSummary


@app.command()
def backup(
    dest: Annotated[
        str,
        typer.Argument(
            metavar="DEST",
            help="File to write, or a folder to put securechat-YYYYMMDD-HHMMSS.db in: an "
            "existing one, or any name ending in / (created if missing).",
            show_default=False,
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace DEST (and its files folder) if it exists.")
    ] = False,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
    files: FilesDir = None,
) -> None:
    """Copy the database to DEST and the shared files to the folder beside it (b.db:
    b-files), safely while the server runs (SQLite only; on PostgreSQL it prints the pg_dump
    command to use).

    The copy is one consistent moment of the database, a single standalone file, mode 0600,
    with every file it names: they hold password hashes, every message and every shared
    file, so keep them somewhere private.
    """
    from securechat.attachments.backup import backup_with_files
    from securechat.store.backup import database_file

    database_file(db, "backup", Path(dest))  # on PostgreSQL: which command to run instead
    summary, copied = backup_with_files(db, dest, _files_dir(db, files), force=force)
    typer.echo(f"wrote {summary.path} ({_size(summary.size)}): {_contents(summary)}")
    typer.echo(f"wrote {copied.path}: {_files(copied)}")


@app.command()
def restore(
    src: Annotated[
        Path,
        typer.Argument(
            metavar="SRC",
            help="A file made by `securechat backup` (its files are in the folder beside it).",
            show_default=False,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
    files: FilesDir = None,
) -> None:
    """Replace the database and the shared files with a backup, then bring the database's
    schema up to date.

    Stop the server first: restore refuses to touch a database a server is using. Everything
    written and shared since the backup was made is lost.
    """
    from securechat.attachments.backup import restore_with_files
    from securechat.store.backup import check_not_in_use, database_file, summarize

    database_file(db, "restore", src)  # on PostgreSQL: which command to run instead
    summary = summarize(src)
    typer.echo(f"{src}: {_contents(summary)}")
    target = check_not_in_use(db)
    if target.exists() and not yes:
        if not sys.stdin.isatty():
            raise UserError(f"not replacing {target} without confirmation: pass --yes")
        question = f"Replace {target}? Everything written to it since the backup is lost."
        if not typer.confirm(question, default=False):
            typer.echo(f"kept {target}")
            raise typer.Exit(code=1)
    files_dir = _files_dir(db, files)
    report, restored = restore_with_files(src, db, files_dir)
    typer.echo(f"restored {report.target} from {src}; schema revision {report.revision}")
    if restored is None:
        typer.echo(f"the backup has no files folder beside it: left {files_dir} as it was")
    else:
        typer.echo(f"restored {restored.path}: {_files(restored)}")


@app.command()
def doctor(
    ctx: typer.Context,
    config: ConfigPath = None,
    certs: CertsDir = CERTS_DEFAULT,
    db: DbUrl = DB_DEFAULT,
    hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            metavar="NAME_OR_IP",
            help="A name clients connect with, to look for in the certificate; repeatable.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, metavar="PORT", help="The port the server uses.")
    ] = DEFAULT_PORT,
    web_port: Annotated[
        int,
        typer.Option(min=1, max=65535, metavar="PORT", help="The port browsers use (HTTPS)."),
    ] = DEFAULT_WEB_PORT,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="The server runs with --no-web: skip the web port.")
    ] = False,
    files: FilesDir = None,
) -> None:
    """Check a server installation and say how to fix each problem.

    Checks the certificate files, key permissions, expiry and names, the CA key, the
    database's schema revision and users, the shared files' folder (owner, mode, free
    space), and what holds the ports on 127.0.0.1 (the web
    port must serve the page over TLS with its Content-Security-Policy), and with a
    [directory] table in --config, each directory server's TLS certificate and the
    service account's bind and search. Changes nothing. Exits with status 1 if any check FAILs, so it can run from a timer.
    """
    from securechat.doctor import Installation, Status, examine

    web = None if no_web else web_port
    installation = Installation(
        certs,
        db,
        port,
        tuple(hosts or ()),
        web_port=web,
        directory=configuration.directory(ctx),
        files_dir=files,
    )
    findings = examine(installation)
    width = max(len(finding.check) for finding in findings)
    for finding in findings:
        typer.echo(finding.line(width))
    failed = sum(finding.status is Status.FAIL for finding in findings)
    warned = sum(finding.status is Status.WARN for finding in findings)
    if failed or warned:
        typer.echo(f"{_plural(failed, 'failure')}, {_plural(warned, 'warning')}")
    else:
        typer.echo("everything looks right")
    if failed:
        raise typer.Exit(code=1)


@app.command("service-unit")
def service_unit_command(
    user: Annotated[
        str,
        typer.Option(metavar="NAME", help="Unprivileged system user (and group) to run as."),
    ] = "securechat",
    executable: Annotated[
        Path | None,
        typer.Option(
            "--bin",
            metavar="PATH",
            help="Absolute path of the securechat program. Default: the one running now.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        str,
        typer.Option(
            metavar="DIR", help="Folder for certs/ and securechat.db, writable by the service."
        ),
    ] = "/var/lib/securechat",
    config: Annotated[
        str,
        typer.Option(
            "--config",
            metavar="FILE",
            help="The configuration file the service runs with (serve --config FILE), "
            "readable by the service user.",
        ),
    ] = "/etc/securechat/securechat.toml",
) -> None:
    """Print a hardened systemd unit that runs `securechat serve --config FILE` as a service.

    Install it with `securechat service-unit > /etc/systemd/system/securechat.service`;
    docs/deploy.md walks through the rest, and shows a configuration file to start from.
    """
    program = executable or default_executable()
    unit = service_unit(
        executable=program,
        user=user,
        state_dir=PurePosixPath(state_dir),
        config=PurePosixPath(config),
    )
    typer.echo(unit, nl=False)
    hidden = hidden_from_service(program)
    if hidden is not None:
        typer.echo(
            f"securechat: warning: the service cannot see {program}: {hidden}; "
            "install securechat under /opt (see docs/deploy.md) or pass --bin",
            err=True,
        )


def _files_dir(db_url: str, files: Path | None) -> Path:
    """``--files``, else the folder beside the SQLite database (``database_file`` has
    refused other databases already)."""
    from securechat.attachments.layout import default_files_dir

    folder = files or default_files_dir(db_url)
    assert folder is not None, "a SQLite database always has a folder beside it"
    return folder.absolute()


def _files(summary: FilesSummary) -> str:
    reused = f" ({summary.reused} hard-linked from the previous backup)" if summary.reused else ""
    return f"{_plural(summary.files, 'file')}, {_size(summary.size)} with thumbnails{reused}"


def _contents(summary: DatabaseSummary) -> str:
    return (
        f"{_plural(summary.messages, 'message')}, {_plural(summary.users, 'user')}, "
        f"schema revision {summary.revision}"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
