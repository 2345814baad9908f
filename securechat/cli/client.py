"""``securechat connect`` (chat in the terminal) and ``securechat send`` (one message, for scripts).

Both resolve the server, port, user and CA file the same way: the option, else what the
last successful ``connect`` remembered (the port and CA only for the same server), else a
default or a one-line error saying what to pass. The password comes from
``--password-stdin``, ``$SECURECHAT_PASSWORD`` or a hidden prompt, and is never stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from securechat.cli.app import app
from securechat.client import Client
from securechat.client.settings import ClientSettings, load_settings, save_settings, settings_file
from securechat.config import DEFAULT_CERTS_DIR, DEFAULT_PORT
from securechat.errors import ConfigError, NoSuchRoom, NoSuchUser
from securechat.protocol.names import NAME_RULE, normalize_name

if TYPE_CHECKING:
    from prompt_toolkit.input import Input

PASSWORD_ENV = "SECURECHAT_PASSWORD"
SEND_TIMEOUT = 30.0

Host = Annotated[
    str | None,
    typer.Argument(
        metavar="[HOST]", help="Server name or address (default: the last one used).",
        show_default=False,
    ),
]  # fmt: skip
Port = Annotated[
    int | None,
    typer.Option(
        min=1, max=65535, metavar="PORT", show_default=False,
        help=f"Server port (default: the last one used with this server, else {DEFAULT_PORT}).",
    ),
]  # fmt: skip
User = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Your user name (default: the last one used).", show_default=False),
]  # fmt: skip
Ca = Annotated[
    Path | None,
    typer.Option(
        "--ca", metavar="FILE", show_default=False,
        help="The server's ca.pem, from your admin (default: the last one used, else ./certs/ca.pem).",
    ),
]  # fmt: skip
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help=f"Read the password from the first line of standard input "
        f"(or set {PASSWORD_ENV}; otherwise you are asked).",
    ),
]


@dataclasses.dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int
    user: str
    ca_file: Path

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@app.command()
def connect(
    host: Host = None,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Chat in this terminal (type /help once connected).

    Remembers the server, port, user and CA file for next time, never the password.
    Reconnects by itself when the connection drops.
    """
    from securechat.client.terminal import ChatTerminal  # prompt_toolkit only when needed

    path = settings_file()
    to = resolve(host, port, user, ca, load_settings(path), command="connect")
    password = read_password(password_stdin, to)
    client = Client(
        to.host, to.port, ca_file=to.ca_file, user=to.user, password=password, reconnect=True
    ).connect()
    try:
        save_settings(path, ClientSettings(to.host, to.port, client.user, to.ca_file))
        with _terminal_input() as terminal_input:
            ChatTerminal(client, label=to.label, input=terminal_input).run()
    finally:
        client.close()


@app.command()
def send(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[HOST] TEXT|-", show_default=False,
            help="The message, or - to read it from standard input; a server name may come first.",
        ),
    ] = None,
    room: Annotated[str | None, typer.Option(metavar="ROOM", help="Send to this room (joined first if needed).", show_default=False)] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="USER", help="Send a direct message to this user.", show_default=False)] = None,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
) -> None:  # fmt: skip
    """Send one message and exit 0 once the server has stored it (for scripts).

    Example: `securechat send --room ops "backup failed on db1"`, or
    `make 2>&1 | tail -5 | securechat send --room builds -`.
    """
    if (room is None) == (to is None):
        raise ConfigError("give exactly one of --room ROOM or --to USER")
    host, text = _split_args(args or [])
    body = _message_text(text, password_stdin)
    destination = resolve(host, port, user, ca, load_settings(settings_file()), command="send")
    password = read_password(password_stdin, destination)
    address = {"room": _valid_name(room, "room")} if room else {"to": _valid_name(to, "user")}
    with Client(
        destination.host, destination.port, ca_file=destination.ca_file,
        user=destination.user, password=password,
    ) as client:  # fmt: skip
        if room is not None:
            _ensure_member(client, address["room"], destination)
        try:
            client.send(body, **address, timeout=SEND_TIMEOUT)
        except NoSuchUser as exc:
            raise NoSuchUser(f"no user {address['to']!r} on {destination.label}") from exc


def resolve(
    host: str | None,
    port: int | None,
    user: str | None,
    ca: Path | None,
    remembered: ClientSettings,
    *,
    command: str,
) -> Destination:
    """Fill in what the command line left out.

    Raises:
        ConfigError: no server, no CA file or no user could be found.
    """
    same_server = host is None or host == remembered.host
    host = host or remembered.host
    if not host:
        raise ConfigError(f"no server given: securechat {command} HOST")
    port = port or (remembered.port if same_server else None) or DEFAULT_PORT
    ca = ca or (remembered.ca_file if same_server else None)
    if ca is None:
        ca = DEFAULT_CERTS_DIR / "ca.pem"
        if not ca.is_file():
            raise ConfigError(
                "no CA certificate: get ca.pem from your admin and pass --ca FILE "
                "(it is remembered for next time)"
            )
    if not ca.is_file():
        raise ConfigError(f"CA file {ca} does not exist: get ca.pem from your admin")
    if not user and remembered.user and same_server:
        user = remembered.user
    if not user:
        if not sys.stdin.isatty():
            raise ConfigError("no user given: pass --user NAME")
        user = typer.prompt("User name")
    return Destination(host, port, user, ca.resolve())


def read_password(from_stdin: bool, to: Destination) -> str:
    """The password from stdin, the environment or a hidden prompt.

    Raises:
        ConfigError: none of those is available.
    """
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise ConfigError("no password on standard input")
        return line.removesuffix("\n").removesuffix("\r")
    if password := os.environ.get(PASSWORD_ENV):
        return password
    if not sys.stdin.isatty():
        raise ConfigError(f"no password: set {PASSWORD_ENV} or pass --password-stdin")
    return getpass.getpass(f"Password for {to.user} on {to.label}: ")


def _split_args(args: list[str]) -> tuple[str | None, str | None]:
    if len(args) > 2:
        raise ConfigError('too many arguments: quote the message, e.g. send --room ops "a b c"')
    if len(args) == 2:
        return args[0], args[1]
    return None, (args[0] if args else None)


def _message_text(text: str | None, password_stdin: bool) -> str:
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise ConfigError("no message: give TEXT, or - to read it from standard input")
        if password_stdin:
            raise ConfigError("--password-stdin and a message from stdin cannot share it")
        text = sys.stdin.read()
    body = text.rstrip("\r\n")
    if not body.strip():
        raise ConfigError("the message is empty")
    return body


def _valid_name(raw: str | None, what: str) -> str:
    name = normalize_name(raw or "")
    if name is None:
        raise ConfigError(f"{raw!r} is not a valid {what} name: {NAME_RULE}")
    return name


def _ensure_member(client: Client, room: str, to: Destination) -> None:
    """Join ``room`` when needed; never create one (a typo would post where nobody reads)."""
    if room in client.rooms:
        return
    rooms = sorted(info.name for info in client.list_rooms())
    if room not in rooms:
        raise NoSuchRoom(
            f"no room #{room} on {to.label} (rooms: {', '.join(rooms) or 'none'}); "
            f"create it with /join {room} in `securechat connect`"
        )
    client.join(room)


@contextlib.contextmanager
def _terminal_input() -> Iterator[Input | None]:
    """The keyboard: stdin, or /dev/tty when stdin carried the password."""
    if sys.stdin.isatty():
        yield None
        return
    from prompt_toolkit.input import create_input

    try:
        tty = open("/dev/tty")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ConfigError("securechat connect needs a terminal to type in") from exc
    with tty:
        yield create_input(stdin=tty)
