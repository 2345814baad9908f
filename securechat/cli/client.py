"""``securechat connect`` (chat in the terminal) and ``securechat send`` (one message, for scripts).

Both resolve the server, port, user and CA file the same way
(:func:`securechat.client.destination.resolve`); with no CA known, an interactive
``connect`` offers trust on first use (securechat.client.first_use) and everything else
refuses. After a successful login, ``connect`` pins a CA that is not pinned yet. The
password comes from
``--password-stdin``, ``$SECURECHAT_PASSWORD`` or a hidden prompt, is never stored, and
lives only in the function that logs in (:func:`_log_in`), not while the chat runs. A
typed password that the server refuses is asked again, up to ``PASSWORD_ATTEMPTS`` times
(a typo should not end the program); one from stdin or the environment is not retried.
The client (TLS, the protocol, cryptography) is imported when a command runs.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from securechat.attachments.sizes import format_size
from securechat.cli.app import app
from securechat.config import DEFAULT_PORT
from securechat.errors import (
    AuthenticationError,
    ConfigError,
    FileTooLarge,
    NoSuchRoom,
    NoSuchUser,
    QuotaExceeded,
)
from securechat.protocol.names import NAME_RULE, normalize_name

if TYPE_CHECKING:
    from prompt_toolkit.input import Input

    from securechat.client import Client
    from securechat.client.destination import Destination

PASSWORD_ENV = "SECURECHAT_PASSWORD"
SEND_TIMEOUT = 30.0
PASSWORD_ATTEMPTS = 3  # typed passwords tried before giving up (the server throttles too)

Host = Annotated[
    str | None,
    typer.Argument(
        metavar="[HOST]",
        help="Server name or address (default: the last one used); several nodes of one "
        "service as a comma list (a,b:5001,c), tried in turn when one is down.",
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
        help="The server's ca.pem, from your admin (default: the CA trusted for this server). "
        "connect copies it into your config folder and trusts it for this server from then on.",
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


@app.command()
def connect(
    host: Host = None,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
    forget_ca: Annotated[
        bool,
        typer.Option(
            "--forget-ca",
            help="Forget the CA pinned for this server (trusted on first use or copied from "
            "--ca), and exit. Only when your admin confirms the CA was replaced; the next "
            "connect shows the new fingerprint.",
        ),
    ] = False,
) -> None:
    """Chat in this terminal (type /help once connected).

    Remembers the server, port and user for next time, never the password, and keeps a
    copy of the server's CA in your config folder (pinned by its fingerprint).
    Without --ca or a known CA, shows the server's CA fingerprint to compare with the one
    your admin published, and trusts it only if you type "yes".
    Reconnects by itself when the connection drops.
    """
    from securechat.client.destination import (
        ca_of,
        explain_wrong_ca,
        forget,
        remember,
        resolve,
        server,
    )
    from securechat.client.first_use import PROBE_TIMEOUT, trust_on_first_use
    from securechat.client.settings import load_settings, settings_file
    from securechat.client.terminal import ChatTerminal  # prompt_toolkit only when needed
    from securechat.client.trust import verify_server

    path = settings_file()
    remembered = load_settings(path)
    if forget_ca:
        typer.echo(forget(*server(host, port, remembered, command="connect")[:2], path))
        return
    to = resolve(host, port, user, ca, remembered, command="connect", ask_user=_user_prompt())
    if to.ca_file is None:
        to = trust_on_first_use(to, path, ask=_yes_prompt(), say=typer.echo)
    elif not _password_given(password_stdin):  # refuse a wrong server before the prompt
        ca_file, fingerprint = ca_of(to)
        with explain_wrong_ca(to):
            verify_server(
                to.host, to.port, ca_file, ca_fingerprint=fingerprint, timeout=PROBE_TIMEOUT,
                also=to.also,
            )  # fmt: skip
    with explain_wrong_ca(to):
        client = _log_in(to, password_stdin, reconnect=True)
    try:
        if notice := remember(path, to, client.user):
            typer.echo(notice)
        with _terminal_input() as terminal_input:
            ChatTerminal(client, label=client.address, input=terminal_input).run()
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
    room: Annotated[str | None, typer.Option(metavar="ROOM", help="Send to this room, which must exist (you are joined to it first if needed; a room is created with /join or /create in `securechat connect`).", show_default=False)] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="USER", help="Send a direct message to this user.", show_default=False)] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", metavar="PATH", help="Attach this file (repeatable); TEXT is then an optional caption.", show_default=False)] = None,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
) -> None:  # fmt: skip
    """Send one message and exit 0 once the server has stored it (for scripts).

    Example: `securechat send --room ops "backup failed on db1"`, or
    `make 2>&1 | tail -5 | securechat send --room builds -`, or
    `securechat send --room ops --file db1.log "the log"`.
    """
    from securechat.client.destination import ca_of, explain_wrong_ca, resolve
    from securechat.client.settings import load_settings, settings_file

    if (room is None) == (to is None):
        raise ConfigError("give exactly one of --room ROOM or --to USER")
    host, text = _split_args(args or [])
    files = [_readable(path) for path in file or ()]
    no_caption = text is None or (text != "-" and not text.strip())
    body = "" if files and no_caption else _message_text(text, password_stdin)
    destination = resolve(
        host, port, user, ca, load_settings(settings_file()), command="send",
        ask_user=_user_prompt(),
    )  # fmt: skip
    ca_of(destination)  # no CA: say so before asking for a password
    address = {"room": _valid_name(room, "room")} if room else {"to": _valid_name(to, "user")}
    with explain_wrong_ca(destination), _log_in(destination, password_stdin) as client:
        if room is not None:
            _ensure_member(client, address["room"], destination)
        try:
            ids = [_upload(client, path) for path in files]
            client.send(body, **address, files=ids, timeout=SEND_TIMEOUT)
        except NoSuchUser as exc:
            raise NoSuchUser(f"no user {address['to']!r} on {destination.label}") from exc


@app.command()
def download(
    args: Annotated[list[str], typer.Argument(metavar="[HOST] ID", help="The file's id (from [file: NAME, SIZE, id ID] in a message); a server name may come first.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", metavar="PATH", help="Save here: a folder (the file keeps its name), or a file name. Default: your downloads folder. An existing file is never replaced, unless --overwrite.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the file --out names if it exists.")] = False,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
) -> None:  # fmt: skip
    """Download a shared file and print where it was saved (for scripts).

    Example: `securechat download 7kq2xm4v6c3j2h5n7p4r6t2w3y --out ~/reports/`.
    """
    from securechat.client.destination import ca_of, explain_wrong_ca, resolve
    from securechat.client.settings import load_settings, settings_file
    from securechat.protocol.files import is_file_id

    host, file_id = _split_args(args)
    if file_id is None or not is_file_id(file_id):
        raise ConfigError(f"{file_id!r} is not a file id (26 letters and digits, as messages show)")
    destination = resolve(
        host, port, user, ca, load_settings(settings_file()), command="download",
        ask_user=_user_prompt(),
    )  # fmt: skip
    ca_of(destination)
    with explain_wrong_ca(destination), _log_in(destination, password_stdin) as client:
        saved = client.download(file_id, out, overwrite=overwrite, progress=_progress("download"))
    print(saved)


def _readable(path: Path) -> Path:
    """``path``, checked before logging in. Raises: ConfigError."""
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{path} is not a file you can read")
    return path


def _upload(client: Client, path: Path) -> str:
    """Upload ``path``; its id. Raises: what ``Client.upload`` raises, naming the file."""
    try:
        return client.upload(path, progress=_progress(path.name)).id
    except (FileTooLarge, QuotaExceeded) as exc:
        raise type(exc)(f"{path}: {exc.message}") from exc


def _progress(what: str) -> Callable[[int, int], None] | None:
    """A progress line on stderr when it is a terminal; None for scripts."""
    if not sys.stderr.isatty():
        return None
    from securechat.client.escaping import escape

    def show(done: int, total: int) -> None:
        share = f" {100 * done // total:3d}%" if total else ""
        end = "\n" if done >= total else ""
        print(f"\r{escape(what)}: {format_size(done)}{share}", end=end, file=sys.stderr)

    return show


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
    return getpass.getpass(f"Password for {to.user} on {to.service}: ")


def _log_in(to: Destination, password_stdin: bool, *, reconnect: bool = False) -> Client:
    """A logged-in Client. The password is read here and dropped when this returns.

    Raises:
        ConfigError: no password. Otherwise as :meth:`Client.connect`.
    """
    from securechat.client import Client
    from securechat.client.destination import ca_of
    from securechat.client.escaping import escape

    ca_file, fingerprint = ca_of(to)

    def client() -> Client:
        return Client(
            to.host, to.port, ca_file=ca_file, ca_fingerprint=fingerprint, user=to.user,
            password=read_password(password_stdin, to), reconnect=reconnect, also=to.also,
        )  # fmt: skip

    retries = 0 if _password_given(password_stdin) else PASSWORD_ATTEMPTS - 1
    for left in range(retries, 0, -1):
        attempt = client()
        try:
            return attempt.connect()
        except AuthenticationError as exc:
            attempt.close()
            typer.echo(f"{escape(exc.message)}: try again ({left} left)", err=True)
    return client().connect()


def _user_prompt() -> Callable[[], str] | None:
    """Who asks for a missing user name: the terminal, or nobody."""
    return (lambda: str(typer.prompt("User name"))) if sys.stdin.isatty() else None


def _yes_prompt() -> Callable[[str], str] | None:
    """Who answers trust on first use: a person at a terminal (Ctrl-D says no), or nobody."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None

    def ask(question: str) -> str:
        try:
            return input(question)
        except EOFError:
            return ""

    return ask


def _password_given(from_stdin: bool) -> bool:
    return from_stdin or bool(os.environ.get(PASSWORD_ENV))


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
    from securechat.client.escaping import escape

    rooms = sorted(info.name for info in client.list_rooms())
    if room not in rooms:
        listed = escape(", ".join(rooms))  # names the server sent
        raise NoSuchRoom(
            f"no room #{room} on {to.label} (rooms: {listed or 'none'}); "
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
