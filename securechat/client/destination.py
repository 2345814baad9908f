"""Where a command connects: the server, port, user and CA, from the options and what is remembered.

Each of the server, port, user and CA file is the option, else what the last successful
``connect`` remembered (the port and CA only for the same server), else a default or a
one-line error saying what to pass. The CA is ``--ca``, else the copy pinned for that
server (on first use, or by an earlier ``connect --ca``), else a CA file an older version
remembered; with none of those, :func:`resolve` leaves it out and an interactive
``connect`` offers trust on first use (first_use.py). The current directory is never
searched. A CA file must hold exactly one certificate, and a pinned copy must still have
its fingerprint, each time it is read. After a successful login, :func:`remember` copies a
CA that is not pinned yet into the config folder and pins it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

from securechat.client.link import with_port
from securechat.client.settings import (
    ClientSettings,
    TrustedCA,
    load_settings,
    save_settings,
    server_key,
)
from securechat.client.trust import (
    CandidateCA,
    changed_pin,
    forget_ca,
    pin_ca,
    read_ca_file,
    refusal,
)
from securechat.config import DEFAULT_PORT
from securechat.errors import CertificateError, ConfigError, WrongCA

__all__ = [
    "Destination",
    "ca_of",
    "explain_wrong_ca",
    "forget",
    "host_args",
    "no_ca",
    "remember",
    "resolve",
    "server",
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


def resolve(
    host: str | None,
    port: int | None,
    user: str | None,
    ca: Path | None,
    remembered: ClientSettings,
    *,
    command: str,
    ask_user: Callable[[], str] | None = None,
) -> Destination:
    """Fill in what the command line left out; ``ca_file`` stays None if no CA is known.

    The CA file, if any, is read and checked here (one CA certificate; the pinned one).
    ``ask_user`` asks a person for the user name when none is given or remembered.

    Raises:
        ConfigError: no server or no user could be found, or a CA file is missing.
        CertificateError: the CA file is not exactly one CA certificate, or a pinned one
            no longer holds the certificate that was pinned.
    """
    same_server = host is None or host == remembered.host
    host, port, also = server(host, port, remembered, command=command)
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
            f"`securechat connect {host_args(host, port)} --forget-ca`, then connect "
            "again to compare fingerprints"
        )
    candidate = read_ca_file(ca) if ca is not None else None
    if pin is not None and candidate is not None and candidate.fingerprint != pin.fingerprint:
        raise CertificateError(changed_pin(pin, host, port, candidate))
    if not user and remembered.user and same_server:
        user = remembered.user
    if not user:
        if ask_user is None:
            raise ConfigError("no user given: pass --user NAME")
        user = ask_user()
    return Destination(
        host, port, user, ca.resolve() if ca else None, pin, candidate,
        also,
    )  # fmt: skip


def server(
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


def ca_of(to: Destination) -> tuple[Path, str]:
    """The CA file to verify against, and the fingerprint its certificate must have.

    Raises:
        ConfigError: no CA is known for this server.
    """
    if to.ca_file is None or to.ca is None:
        raise no_ca(to)
    return to.ca_file, to.ca.fingerprint


def no_ca(to: Destination) -> ConfigError:
    """The error for a server without a known CA, saying both ways to get one."""
    return ConfigError(
        f"no CA certificate for {to.label}: pass --ca FILE (get ca.pem from your admin), "
        f"or run `securechat connect {host_args(to.host, to.port)}` in a terminal once to "
        "compare the server's CA fingerprint with your admin's and trust it"
    )


def remember(settings_path: Path, to: Destination, user: str) -> str | None:
    """After a login: pin the CA if it is not pinned yet, and save the defaults.

    Returns a notice for the user when the pin replaced another CA's.
    """
    notice = None
    ca_file = to.ca_file
    if to.pin is None:
        ca_file, notice = _pin_after_login(settings_path, to)
    latest = load_settings(settings_path)
    save_settings(
        settings_path,
        dataclasses.replace(
            latest, host=",".join((to.host, *to.also)), port=to.port, user=user, ca_file=ca_file
        ),
    )
    return notice


def _pin_after_login(settings_path: Path, to: Destination) -> tuple[Path, str | None]:
    """Copy a CA not pinned yet (``--ca FILE``, or remembered by an older version) into the
    config folder and pin it; the copy's path. Another CA pinned for the server is replaced,
    with a notice: an explicit, working ``--ca`` is the user's (and their admin's) choice."""
    assert to.ca is not None
    key = server_key(to.host, to.port)
    known = load_settings(settings_path).trusted.get(key)
    if known is not None and known.fingerprint == to.ca.fingerprint:
        return known.ca_file, None
    pin = pin_ca(settings_path, to.host, to.port, to.ca)
    if known is None:
        return pin.ca_file, None
    return pin.ca_file, (
        f"The CA in {to.ca_file} (fingerprint {pin.fingerprint}) replaces the one\n"
        f"trusted for {key} since {known.trusted_on:%Y-%m-%d} "
        f"(fingerprint {known.fingerprint})."
    )


@contextlib.contextmanager
def explain_wrong_ca(to: Destination) -> Iterator[None]:
    """Turn "not signed by our CA" into the loud refusal when that CA was pinned."""
    try:
        yield
    except WrongCA as exc:
        if to.pin is None:
            raise
        raise CertificateError(refusal(to.pin, to.host, to.port)) from exc


def forget(host: str, port: int, settings_path: Path) -> str:
    """``connect --forget-ca``: drop the pin so the next connect asks again; what was done.

    Raises:
        ConfigError: no CA is pinned for this server.
    """
    pin = forget_ca(settings_path, host, port)
    return (
        f"Forgot the CA trusted for {server_key(host, port)} on {pin.trusted_on:%Y-%m-%d}\n"
        f"(fingerprint {pin.fingerprint}).\n"
        f"The next `securechat connect {host_args(host, port)}` shows the server's CA "
        "fingerprint to compare again."
    )


def host_args(host: str, port: int) -> str:
    """The command-line words that name this server (the port only when not the default)."""
    return host if port == DEFAULT_PORT else f"{host} --port {port}"
