"""``securechat config show``: the configuration ``serve`` would run with, and where each
value comes from."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer

from securechat.cli import configuration
from securechat.cli.app import command_group
from securechat.cli.options import ConfigPath
from securechat.config_file import Line, Settings, render
from securechat.directory.settings import TABLE

config_app = command_group(
    "config",
    "Show the configuration file's effect (docs/deploy.md, 'Configuration file').",
)

_SOURCES = {"COMMANDLINE": "command line", "DEFAULT_MAP": "file", "DEFAULT": "default"}


@config_app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def show(ctx: typer.Context, config: ConfigPath = None) -> None:
    """Print the configuration `serve` would run with, as TOML, each value commented with
    where it came from: command line > environment > file > default.

    Any `serve` option given after `show` counts as given to `serve`
    (`securechat config show --port 6000`). A password in the database URL is masked as
    ***. The output is a valid configuration file.
    """
    from securechat.store.database import safe_url
    from securechat.store.urls import without_password

    serve = ctx.find_root().command.commands[configuration.SERVE]  # type: ignore[attr-defined]
    args = [*(["--config", str(config)] if config else []), *ctx.args]
    with serve.make_context(configuration.SERVE, args, parent=ctx) as serve_ctx:
        settings = configuration.loaded(serve_ctx)
        top: list[Line] = []
        table: list[Line] = []
        password_file = settings is not None and settings.get("db_password_file") is not None
        for key, param in configuration.options(serve):
            value = _shown(serve_ctx.params[param.name])
            if key == "db":  # the password from db_password_file is not part of the URL
                value = without_password(value) if password_file else safe_url(value)
            line = Line(key, value, _source(serve_ctx, param))
            (top if key in configuration.TOP_LEVEL else table).append(line)
        for key in configuration.FILE_ONLY:
            value = settings.get(key) if settings else None
            top.append(Line(key, value, "file" if value is not None else "default"))
    header = [
        "securechat configuration: what `securechat serve` would run with.",
        f"File: {config}" if config else "File: none (no --config, no SECURECHAT_CONFIG).",
        "Each value's comment says where it came from; secrets are masked.",
        "",
    ]
    tables: list[tuple[str | None, list[Line]]] = [(None, top), (configuration.SERVE, table)]
    tables += _directory(settings)
    typer.echo(render(tables, header), nl=False)


def _directory(settings: Settings | None) -> list[tuple[str | None, list[Line]]]:
    """The ``[directory]`` table as the file gives it (it has no command-line options);
    the service account's password stays in its file."""
    found = None if settings is None else settings.tables.get(TABLE)
    if not found:
        return []
    tables: list[tuple[str | None, list[Line]]] = [
        (TABLE, [Line(key, value, "file") for key, value in found.items() if key != "group"])
    ]
    for group in found.get("group", []):
        # render() writes "[NAME]": this name makes it the array-of-tables header.
        lines = [Line(key, value, "file") for key, value in group.items()]
        tables.append((f"[{TABLE}.group]", lines))
    return tables


def _shown(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return value


def _source(ctx: typer.Context, param: Any) -> str:
    source = ctx.get_parameter_source(param.name)
    name = source.name if source is not None else "DEFAULT"
    if name == "ENVIRONMENT":
        return f"environment {param.envvar}"
    return _SOURCES.get(name, name.lower())
