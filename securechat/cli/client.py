"""``securechat connect`` (chat in the terminal) and ``securechat send`` (one message, for scripts).

Both resolve the server, port, user and CA file the same way: the option, else what the
last successful ``connect`` remembered (the port and CA only for the same server), else a
default or a one-line error saying what to pass. The CA is ``--ca``, else the copy pinned
for that server (on first use, or by an earlier ``connect --ca``), else a CA file an older
version remembered; with none of those, an interactive ``connect`` offers trust on first
use (securechat.client.trust) and everything else refuses. The current directory is never
searched. A CA file must hold exactly one certificate, and a pinned copy must still have
its fingerprint, each time it is read. After a successful login, ``connect`` copies a CA
that is not pinned yet into the config folder and pins it. The password comes from
``--password-stdin``, ``$SECURECHAT_PASSWORD`` or a hidden prompt, is never stored, and
lives only in the function that logs in (:func:`_log_in`), not while the chat runs.
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
from securechat.client.escaping import escape
from securechat.client.link import with_port
from securechat.client.settings import (
    ClientSettings,
    TrustedCA,
    load_settings,
    save_settings,
    server_key,
    settings_file,
)
from securechat.client.trust import (
    CandidateCA,
    changed_pin,
    fetch_ca,
    forget_ca,
    pin_ca,
    read_ca_file,
    refusal,
    verify_server,
)
from securechat.config import DEFAULT_PORT
from securechat.errors import CertificateError, ConfigError, NoSuchRoom, NoSuchUser, WrongCA
from securechat.protocol.names import NAME_RULE, normalize_name

if TYPE_CHECKING:
    from prompt_toolkit.input import Input

PASSWORD_ENV = "SECURECHAT_PASSWORD"
SEND_TIMEOUT = 30.0
#: For the trust-on-first-use probe and the certificate check before a password prompt.
PROBE_TIMEOUT = 10.0
#: Characters of a CA's subject shown on first use; a real one is far shorter.
SUBJECT_SHOWN = 200

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


@dataclasses.dataclass(frozen=True, slots=True)
class Destination:
    """Where to connect; ``ca_file`` and ``ca`` are None when no CA is known yet."""

    host: str
    port: int
    user: str
    ca_file: Path | None
    pin: TrustedCA | None = None  # set when ca_file is the CA pinned for this server
    ca: CandidateCA | None = None  # what ca_file held when read (checked against the pin)
    also: tuple[str, ...] = ()  # more nodes of the service, after a comma: same CA

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def service(self) -> str:
        """The label, followed by the other nodes when several were given."""
        return ",".join((self.label, *self.also))


@app.command()
def connect(
    host: Host = None,
    port: Port = None,
    user: User = None,
    ca: Ca = None,
    password_stdin: PasswordStdin = False,
    forget: Annotated[
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
    from securechat.client.terminal import ChatTerminal  # prompt_toolkit only when needed

    path = settings_file()
    remembered = load_settings(path)
    if forget:
        _forget(*_server(host, port, remembered, command="connect")[:2], path)
        return
    to = resolve(host, port, user, ca, remembered, command="connect")
    if to.ca_file is None:
        to = _trust_on_first_use(to, path)
    elif not _password_given(password_stdin):  # refuse a wrong server before the prompt
        ca_file, fingerprint = _ca_of(to)
        with _explain_wrong_ca(to):
            verify_server(
                to.host, to.port, ca_file, ca_fingerprint=fingerprint, timeout=PROBE_TIMEOUT,
                also=to.also,
            )  # fmt: skip
    with _explain_wrong_ca(to):
        client = _log_in(to, password_stdin, reconnect=True)
    try:
        _remember(path, to, client.user)
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
    _ca_of(destination)  # no CA: say so before asking for a password
    address = {"room": _valid_name(room, "room")} if room else {"to": _valid_name(to, "user")}
    with _explain_wrong_ca(destination), _log_in(destination, password_stdin) as client:
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
    """Fill in what the command line left out; ``ca_file`` stays None if no CA is known.

    The CA file, if any, is read and checked here (one CA certificate; the pinned one).

    Raises:
        ConfigError: no server or no user could be found, or a CA file is missing.
        CertificateError: the CA file is not exactly one CA certificate, or a pinned one
            no longer holds the certificate that was pinned.
    """
    same_server = host is None or host == remembered.host
    host, port, also = _server(host, port, remembered, command=command)
    pin = None if ca else remembered.trusted.get(server_key(host, port))
    ca = ca or (pin.ca_file if pin else None)
    pinned_files = {trusted.ca_file for trusted in remembered.trusted.values()}
    if ca is None and same_server and remembered.ca_file not in pinned_files:
        # Remembered by a version that did not copy CAs; connect pins it after login. A
        # pin is only ever used for its own host and port.
        ca = remembered.ca_file
    if ca is not None and pin is not None and not ca.is_file():
        raise ConfigError(
            f"the CA trusted for {server_key(host, port)} is missing ({ca}): run "
            f"`securechat connect {_host_args(host, port)} --forget-ca`, then connect "
            "again to compare fingerprints"
        )
    candidate = read_ca_file(ca) if ca is not None else None
    if pin is not None and candidate is not None and candidate.fingerprint != pin.fingerprint:
        raise CertificateError(changed_pin(pin, host, port, candidate))
    if not user and remembered.user and same_server:
        user = remembered.user
    if not user:
        if not sys.stdin.isatty():
            raise ConfigError("no user given: pass --user NAME")
        user = typer.prompt("User name")
    return Destination(
        host, port, user, ca.resolve() if ca else None, pin, candidate,
        also,
    )  # fmt: skip


def _nodes(hosts: str, port: int | None) -> tuple[str, int | None, tuple[str, ...]]:
    """``a:5001,b,c`` as the first host, its port (if given) and the others.

    Raises:
        ConfigError: a port is not a number.
    """
    addresses = [address.strip() for address in hosts.split(",") if address.strip()]
    if not addresses:
        raise ConfigError(f"no server in {hosts!r}")
    first, *others = addresses
    try:
        for address in others:
            with_port(address, 0)
        host, given = with_port(first, port or 0)
    except ValueError as exc:
        raise ConfigError(f"not a port number in {hosts!r}") from exc
    return host, port or given or None, tuple(others)


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


def _server(
    host: str | None, port: int | None, remembered: ClientSettings, *, command: str
) -> tuple[str, int, tuple[str, ...]]:
    """The host and port, given, else remembered (the port only for the same host), and
    the service's other nodes when a comma list names several (``a:5001,b``).

    Raises:
        ConfigError: no host given and none remembered; a port in the list is not a number.
    """
    same_server = host is None or host == remembered.host
    host = host or remembered.host
    if not host:
        raise ConfigError(f"no server given: securechat {command} HOST")
    also: tuple[str, ...] = ()
    if "," in host:
        host, given, also = _nodes(host, port)
        port = port or given
    return host, port or (remembered.port if same_server else None) or DEFAULT_PORT, also


def _ca_of(to: Destination) -> tuple[Path, str]:
    """The CA file to verify against, and the fingerprint its certificate must have.

    Raises:
        ConfigError: no CA is known for this server.
    """
    if to.ca_file is None or to.ca is None:
        raise _no_ca(to)
    return to.ca_file, to.ca.fingerprint


def _log_in(to: Destination, password_stdin: bool, *, reconnect: bool = False) -> Client:
    """A logged-in Client. The password is read here and dropped when this returns.

    Raises:
        ConfigError: no password. Otherwise as :meth:`Client.connect`.
    """
    ca_file, fingerprint = _ca_of(to)
    return Client(
        to.host, to.port, ca_file=ca_file, ca_fingerprint=fingerprint, user=to.user,
        password=read_password(password_stdin, to), reconnect=reconnect, also=to.also,
    ).connect()  # fmt: skip


def _remember(settings_path: Path, to: Destination, user: str) -> None:
    """After a login: pin the CA if it is not pinned yet, and save the defaults."""
    ca_file = to.ca_file if to.pin is not None else _pin_after_login(settings_path, to)
    latest = load_settings(settings_path)
    save_settings(
        settings_path,
        dataclasses.replace(
            latest, host=",".join((to.host, *to.also)), port=to.port, user=user, ca_file=ca_file
        ),
    )


def _pin_after_login(settings_path: Path, to: Destination) -> Path:
    """Copy a CA not pinned yet (``--ca FILE``, or remembered by an older version) into the
    config folder and pin it; the copy's path. Another CA pinned for the server is replaced,
    with a notice: an explicit, working ``--ca`` is the user's (and their admin's) choice."""
    assert to.ca is not None
    key = server_key(to.host, to.port)
    known = load_settings(settings_path).trusted.get(key)
    if known is not None and known.fingerprint == to.ca.fingerprint:
        return known.ca_file
    pin = pin_ca(settings_path, to.host, to.port, to.ca)
    if known is not None:
        typer.echo(
            f"The CA in {to.ca_file} (fingerprint {pin.fingerprint}) replaces the one\n"
            f"trusted for {key} since {known.trusted_on:%Y-%m-%d} "
            f"(fingerprint {known.fingerprint})."
        )
    return pin.ca_file


def _no_ca(to: Destination) -> ConfigError:
    return ConfigError(
        f"no CA certificate for {to.label}: pass --ca FILE (get ca.pem from your admin), "
        f"or run `securechat connect {_host_args(to.host, to.port)}` in a terminal once to "
        "compare the server's CA fingerprint with your admin's and trust it"
    )


def _trust_on_first_use(to: Destination, settings_path: Path) -> Destination:
    """Show the server's CA, and pin it if the user types "yes"; a terminal is required.

    Raises:
        ConfigError: not interactive. CertificateError: the offer is inconsistent or the
        user did not say yes. ConnectionLost: the server cannot be reached.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise _no_ca(to)  # trust on first use needs a person comparing fingerprints
    offered = fetch_ca(to.host, to.port, timeout=PROBE_TIMEOUT, also=to.also)
    subject = escape(offered.subject)  # the server chose it: no control character gets through
    if len(subject) > SUBJECT_SHOWN:
        subject = subject[: SUBJECT_SHOWN - 1] + "…"
    # The fingerprint, computed here, comes last, right above the question: nothing the
    # server chose is printed between them.
    typer.echo(
        f"{offered.source} is new to this computer: you have no CA certificate for it yet.\n"
        "It offers this certificate authority (CA), which signed the certificate it presented:\n"
        f"  Subject: {subject}\n"
        f"  Expires: {offered.not_after:%Y-%m-%d}\n"
        "Compare its fingerprint, computed here and shown just below, with the one your admin\n"
        "published (on the server, `securechat fingerprint` prints it). If they differ, do not\n"
        "trust it: someone may be intercepting the connection.\n"
        f"  SHA-256 fingerprint: {offered.fingerprint}"
    )
    try:
        answer = input(f'Trust this CA for {to.service}? Type "yes" to continue: ')
    except EOFError:
        answer = ""  # Ctrl-D: no
    if answer.strip().lower() != "yes":
        raise CertificateError(
            f"the CA of {to.service} was not trusted and nothing was saved; get ca.pem from your "
            "admin and pass --ca FILE, or connect again to compare once more"
        )
    pin = pin_ca(settings_path, to.host, to.port, offered)
    typer.echo(
        f"Trusted; saved in {pin.ca_file}.\n"
        f"You will be warned if {to.service} ever presents a certificate from another CA."
    )
    return dataclasses.replace(to, ca_file=pin.ca_file, pin=pin, ca=offered)


@contextlib.contextmanager
def _explain_wrong_ca(to: Destination) -> Iterator[None]:
    """Turn "not signed by our CA" into the loud refusal when that CA was pinned."""
    try:
        yield
    except WrongCA as exc:
        if to.pin is None:
            raise
        raise CertificateError(refusal(to.pin, to.host, to.port)) from exc


def _forget(host: str, port: int, settings_path: Path) -> None:
    """``connect --forget-ca``: drop the pin so the next connect asks again."""
    pin = forget_ca(settings_path, host, port)
    typer.echo(
        f"Forgot the CA trusted for {server_key(host, port)} on {pin.trusted_on:%Y-%m-%d}\n"
        f"(fingerprint {pin.fingerprint}).\n"
        f"The next `securechat connect {_host_args(host, port)}` shows the server's CA "
        "fingerprint to compare again."
    )


def _host_args(host: str, port: int) -> str:
    return host if port == DEFAULT_PORT else f"{host} --port {port}"


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
