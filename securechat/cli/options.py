"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from securechat.cli import configuration
from securechat.config import DEFAULT_CERTS_DIR, DEFAULT_DB_URL

ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=configuration.ENV_VAR,
        metavar="FILE",
        help=configuration.HELP,
        is_eager=True,  # before the options whose defaults it sets
        callback=configuration.load_config,
        show_default=False,
    ),
]

DbUrl = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="SECURECHAT_DB",
        metavar="URL",
        help=(
            "Database URL: sqlite:////ABSOLUTE/PATH.db (or sqlite:///RELATIVE.db), or "
            "postgresql+psycopg://USER@HOST/DB (pip install 'securechat[postgres]')."
        ),
        show_default=True,
        callback=configuration.with_db_password,
    ),
]
DB_DEFAULT = DEFAULT_DB_URL

CertsDir = Annotated[
    Path,
    typer.Option(
        "--certs",
        "--dir",
        envvar="SECURECHAT_CERTS",
        metavar="DIR",
        help="Folder holding ca.pem, ca.crt, ca.key, server.pem and server.key (a relative "
        "path is from the current folder; in the configuration file, from the file's folder).",
        show_default=True,
    ),
]
CERTS_DEFAULT = DEFAULT_CERTS_DIR

FilesDir = Annotated[
    Path | None,
    typer.Option(
        "--files",
        metavar="DIR",
        help="Folder of the files people share (as given to `serve --files`). Default: beside "
        "a SQLite database (chat.db: chat-files).",
        show_default=False,
    ),
]
