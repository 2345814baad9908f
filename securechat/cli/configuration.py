"""The ``--config`` option: a TOML file's values become a command's defaults.

Theory of operation. ``--config`` (or ``SECURECHAT_CONFIG``) is an eager option, processed
before the command's other options. Its callback reads the file, checks it against a schema
derived from the ``serve`` command's own options, and puts the values the command can use
in ``ctx.default_map``, click's place for defaults from a configuration file. Click then
takes each option from the command line, else its environment variable, else the default
map, else the embedded default: the precedence the docs promise, and the one ``config show``
reports through ``ctx.get_parameter_source``.

The file's layout, in one place:

* the top level says where things are: the options in :data:`TOP_LEVEL`, which ``serve``
  shares with the admin commands, and :data:`FILE_ONLY` keys (secrets, read from files);
* ``[serve]`` holds every other option of ``serve``, under the name of its long option
  (``--web-port`` is ``web_port``); ``doctor`` reads the :data:`READERS` it shares with it.

* ``[directory]`` holds directory login (:mod:`securechat.directory.settings`), which
  ``serve`` and the ``directory`` commands read whole (:func:`directory`), not as options.

A new table is one more entry in :func:`schema`'s result, plus its entry in
:data:`READERS` if a command reads it as options.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import typer

from securechat import config_file
from securechat.config_file import Key, Kind, Schema, Settings
from securechat.directory import settings as directory_settings
from securechat.directory.settings import DirectoryConfig
from securechat.errors import ConfigFileError

#: Options that say where things are: top-level keys, read by every command that has them.
TOP_LEVEL = ("certs", "db", "files")
#: Keys the file has and the command line does not: a secret is named, never written here.
FILE_ONLY: Mapping[str, Key] = {"db_password_file": Key(Kind.PATH)}
#: Which keys of which table each command takes as defaults (``None``: every key it has).
READERS: Mapping[str, Mapping[str, tuple[str, ...] | None]] = {
    "serve": {"serve": None},
    "doctor": {"serve": ("port", "web_port", "no_web")},
}
#: The command whose options make the ``[serve]`` table.
SERVE = "serve"
#: Where the loaded file is kept for the other options' callbacks (``ctx.meta`` is shared
#: by a command's context and its parents').
_META_KEY = "securechat.config_file"

ENV_VAR = "SECURECHAT_CONFIG"
HELP = (
    "TOML configuration file (docs/deploy.md, 'Configuration file'); also SECURECHAT_CONFIG. "
    "Its values replace the defaults; an environment variable or an option given here wins "
    "over it."
)


def option_key(param: Any) -> str:
    """A command-line option's key in the file: its first long name in snake_case."""
    opts: list[str] = param.opts
    long = next((opt for opt in opts if opt.startswith("--")), f"--{param.name}")
    return long[2:].replace("-", "_")


def options(command: Any) -> Iterator[tuple[str, Any]]:
    """``(key, param)`` for each option of a click ``command`` but ``--config``."""
    for param in command.params:
        if param.param_type_name == "option" and param.name != "config":
            yield option_key(param), param


def schema(root: Any) -> Schema:
    """The keys the file may hold, derived from the ``serve`` command of ``root``."""
    serve = root.commands[SERVE]
    keys = dict(_keys(serve))
    return {
        None: {**{key: keys[key] for key in TOP_LEVEL}, **FILE_ONLY},
        SERVE: {key: spec for key, spec in keys.items() if key not in TOP_LEVEL},
        directory_settings.TABLE: directory_settings.schema(),
    }


def _keys(command: Any) -> Iterator[tuple[str, Key]]:
    function = inspect.unwrap(command.callback)
    hints = typing.get_type_hints(function, include_extras=True)
    for key, param in options(command):
        base, *extras = typing.get_args(hints[param.name])
        info = next(extra for extra in extras if isinstance(extra, typer.models.OptionInfo))
        yield key, _key(base, info)


def _key(annotation: Any, info: typer.models.OptionInfo) -> Key:
    base = annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None
        base = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return Key(Kind.STRING, choices=tuple(str(member.value) for member in base))
    return Key(_KINDS[base], minimum=info.min, maximum=info.max)


_KINDS: Mapping[Any, Kind] = {
    str: Kind.STRING,
    Path: Kind.PATH,
    int: Kind.INTEGER,
    float: Kind.FLOAT,
    bool: Kind.BOOLEAN,
    list[str]: Kind.STRING_LIST,
}


def load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """The ``--config`` callback: load the file and make its values the command's defaults."""
    if value is None or ctx.resilient_parsing:
        return value
    settings = config_file.load(value, schema(ctx.find_root().command))
    ctx.meta[_META_KEY] = settings
    ctx.default_map = {**(ctx.default_map or {}), **defaults(ctx.command, settings)}
    return value


def defaults(command: Any, settings: Settings) -> dict[str, Any]:
    """The default map the file gives ``command``: its top-level keys, and the tables the
    command reads (:data:`READERS`)."""
    from securechat.store.urls import sqlite_beside  # SQLAlchemy's parser, only with a file

    found: dict[str, Any] = {}
    reads = READERS.get(command.name, {})
    for key, param in options(command):
        if key in TOP_LEVEL and settings.get(key) is not None:
            value = settings.get(key)
            found[param.name] = sqlite_beside(value, settings.path.parent) if key == "db" else value
        for table, keys in reads.items():
            if (keys is None or key in keys) and settings.get(key, table) is not None:
                found[param.name] = settings.get(key, table)
    return found


def loaded(ctx: typer.Context) -> Settings | None:
    """The file ``--config`` loaded for this command, if any."""
    settings = ctx.meta.get(_META_KEY)
    return settings if isinstance(settings, Settings) else None


def directory(ctx: typer.Context) -> DirectoryConfig | None:
    """The ``[directory]`` table of the file ``--config`` loaded, checked; None without one.

    Raises:
        ConfigFileError: see :func:`securechat.directory.settings.from_settings`.
    """
    settings = loaded(ctx)
    return None if settings is None else directory_settings.from_settings(settings)


def with_db_password(ctx: typer.Context, url: str) -> str:
    """The ``--db`` callback: the database URL with the password of ``db_password_file``."""
    settings = loaded(ctx)
    if settings is None or settings.get("db_password_file") is None:
        return url
    return add_password(url, Path(settings.get("db_password_file")), settings.path)


def add_password(url: str, password_file: Path, source: Path) -> str:
    """``url`` with the password read from ``password_file`` (named in ``source``).

    Raises:
        ConfigFileError: the URL is not a PostgreSQL one without a password, or the file
            cannot be read.
    """
    from securechat.store.urls import BadDatabaseUrl, with_password

    try:
        with_password(url, "")  # checked before the secret is read
    except BadDatabaseUrl as exc:
        raise ConfigFileError(f"{source}: db_password_file is set, but {exc}") from exc
    password = config_file.read_secret(password_file, key="db_password_file", settings=source)
    return with_password(url, password)
