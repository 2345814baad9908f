"""The typer application that every command module registers on."""

from __future__ import annotations

from typing import Annotated

import typer

from securechat import __version__

app = typer.Typer(
    name="securechat",
    help="Self-hosted, encrypted chat for an office LAN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command_group(name: str, help: str) -> typer.Typer:
    """A ``securechat NAME ...`` group of commands, with the application's help settings."""
    group = typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.add_typer(group)
    return group


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"securechat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Self-hosted, encrypted chat for an office LAN.

    An admin runs `securechat init-certs`, `securechat adduser NAME` and `securechat serve`;
    colleagues run `securechat connect`.
    """
