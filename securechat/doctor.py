"""``securechat doctor``: check a server installation and say how to fix what is wrong.

Each check yields :class:`Finding` values, OK, WARN or FAIL, and every problem carries the
command or step that fixes it. Checks only read: the database is never migrated and no file
is changed. The one network check connects to 127.0.0.1 only. When something listens on the
port, a TLS handshake against the deployment's own CA and the ``hello`` frame tell a running
securechat apart from another program. That probe skips the host-name check on purpose,
because it identifies a server rather than trusting it, and it sends no credentials. The
certificate's names are checked separately against ``--host``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import errno
import ipaddress
import socket
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cryptography import x509
from sqlalchemy import text

from securechat import certs
from securechat.client.link import probe
from securechat.errors import (
    CertificateError,
    ConnectionLost,
    HandshakeFailed,
    SecureChatError,
    StoreError,
)
from securechat.store.backup import known_revisions
from securechat.store.database import Database, safe_url
from securechat.store.lock import sqlite_file
from securechat.store.migrate import current_revision, head_revision
from securechat.tls import identify_context, probe_context
from securechat.transport import TlsStream, connect_tls

#: A server certificate closer than this to expiry is a warning.
EXPIRY_WARNING = dt.timedelta(days=30)
#: Bound on each network step of the port probe, in seconds.
PROBE_TIMEOUT = 3.0
_LOADS_IT = (
    "the server loads it within the hour, or at once with `systemctl reload securechat` "
    "(SIGHUP), no restart needed"
)


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of one check; ``fix`` says what to do about a WARN or FAIL."""

    status: Status
    check: str
    detail: str
    fix: str | None = None

    def line(self, width: int = 0) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.status:<4}  {self.check:<{width}}  {self.detail}{fix}"


@dataclasses.dataclass(frozen=True, slots=True)
class Installation:
    """What to examine: the options ``securechat serve`` would be started with."""

    certs_dir: Path
    db_url: str
    port: int
    hosts: tuple[str, ...] = ()
    web_port: int | None = None  # the browsers' port to check too; None: not served


def examine(installation: Installation) -> list[Finding]:
    """Run every check, in the order an admin would fix things."""
    checks: list[Callable[[Installation], Iterator[Finding]]] = [
        _certificate_files,
        _key_modes,
        _expiry,
        _host_names,
        _ca_key,
        _database,
        _database_file,
        _port,
        _web_port,
    ]
    return [finding for check in checks for finding in check(installation)]


# --- certificates ---------------------------------------------------------------------


def _certificate_files(inst: Installation) -> Iterator[Finding]:
    name = "certificates"
    try:
        files = certs.check_server_files(inst.certs_dir)
    except CertificateError as error:
        fix = None
        if "securechat init-certs" not in error.message:
            fix = f"{_renew_command(inst)} (or put back the right files from a backup)"
        yield Finding(Status.FAIL, name, error.message, fix)
        return
    yield Finding(
        Status.OK,
        name,
        f"{files.cert_file} matches {files.key_file.name} and is signed by {files.ca_file.name}",
    )


def _key_modes(inst: Installation) -> Iterator[Finding]:
    keys = [inst.certs_dir / n for n in (certs.SERVER_KEY, certs.CA_KEY)]
    present = [key for key in keys if key.is_file()]
    try:
        exposed = certs.exposed_keys(inst.certs_dir)
    except CertificateError:
        return  # _certificate_files says why the folder cannot be read
    for key, mode in exposed:
        yield Finding(
            Status.FAIL,
            "key files",
            f"{key} can be read by other users (mode {mode:04o})",
            f"chmod 600 {key}",
        )
    if present and not exposed:
        names = " and ".join(key.name for key in present)
        yield Finding(Status.OK, "key files", f"{names} readable by their owner only")


def _expiry(inst: Installation) -> Iterator[Finding]:
    cert = _server_cert(inst)
    if cert is None:
        return  # _certificate_files has said why
    not_after = cert.not_valid_after_utc
    left = not_after - dt.datetime.now(dt.UTC)
    when = f"{not_after:%Y-%m-%d %H:%M} UTC"
    name, fix = "expiry", f"{_renew_command(inst)}; {_LOADS_IT}"
    if left <= dt.timedelta(0):
        yield Finding(Status.FAIL, name, f"the server certificate expired on {when}", fix)
    elif left < EXPIRY_WARNING:
        days = f"{left.days} days" if left.days != 1 else "1 day"
        yield Finding(Status.WARN, name, f"the server certificate expires in {days}, {when}", fix)
    else:
        yield Finding(Status.OK, name, f"the server certificate is valid until {when}")


def _host_names(inst: Installation) -> Iterator[Finding]:
    cert = _server_cert(inst)
    if cert is None:
        return
    sans = _sans(cert)
    missing = [host for host in inst.hosts if _normalize(host) not in {_normalize(s) for s in sans}]
    named = ", ".join(sans) or "nothing"
    if missing:
        yield Finding(
            Status.FAIL,
            "host names",
            f"the server certificate does not name {', '.join(missing)} (it names {named}); "
            "clients using that name will refuse to connect",
            f"{_renew_command(inst, extra=missing)}; {_LOADS_IT}",
        )
    elif inst.hosts:
        yield Finding(Status.OK, "host names", f"the certificate names {', '.join(inst.hosts)}")
    else:
        yield Finding(
            Status.OK, "host names", f"the certificate names {named} (check yours with --host)"
        )


def _ca_key(inst: Installation) -> Iterator[Finding]:
    ca_key = inst.certs_dir / certs.CA_KEY
    if not (inst.certs_dir / certs.CA_CERT).is_file():
        return
    if not ca_key.exists():
        yield Finding(
            Status.WARN,
            "CA key",
            f"{ca_key} not found, so the server certificate cannot be renewed here",
            f"put ca.key back in {inst.certs_dir} (mode 0600) before the certificate expires",
        )
        return
    try:
        certs.load_ca(inst.certs_dir)
    except CertificateError as error:
        fix = "put back the ca.key that belongs to ca.pem"
        yield Finding(Status.FAIL, "CA key", error.message, fix)
        return
    yield Finding(Status.OK, "CA key", f"{ca_key} present, so the certificate can be renewed")


def _server_cert(inst: Installation) -> x509.Certificate | None:
    try:
        return certs.read_certificate(inst.certs_dir / certs.SERVER_CERT)
    except CertificateError:
        return None  # reported by _certificate_files


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in names if isinstance(n, x509.DNSName | x509.IPAddress)]


def _normalize(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        return host.strip().rstrip(".").lower()


def _renew_command(inst: Installation, extra: Sequence[str] = ()) -> str:
    """``init-certs --renew`` keeping the certificate's current names (plus ``extra``)."""
    cert = _server_cert(inst)
    hosts = dict.fromkeys([*(_sans(cert) if cert else []), *extra])
    names = "".join(f" --host {host}" for host in hosts)
    return f"run `securechat init-certs --renew --dir {inst.certs_dir}{names}`"


# --- database -------------------------------------------------------------------------


def _database(inst: Installation) -> Iterator[Finding]:
    url = safe_url(inst.db_url)
    create = f"add the first user with `securechat adduser NAME --admin --db {url}`"
    try:
        path = sqlite_file(inst.db_url)
        if path is not None and not path.is_file():
            fix = f"{create} (or fix --db)"
            yield Finding(Status.FAIL, "database", f"no database at {path}", fix)
            return
        database = Database(inst.db_url)
    except StoreError as error:
        yield Finding(Status.FAIL, "database", error.message, "fix --db or SECURECHAT_DB")
        return
    try:
        database.check_connection()
        revision = current_revision(database.engine)
        yield from _revision(url, revision)
        if revision is not None and revision in known_revisions():
            yield from _users(database, create)
    except StoreError as error:
        yield Finding(Status.FAIL, "database", error.message, "fix --db or SECURECHAT_DB")
    finally:
        database.dispose()


def _database_file(inst: Installation) -> Iterator[Finding]:
    """A SQLite file, and its -wal and -shm, readable by their owner only."""
    try:
        path = sqlite_file(inst.db_url)
    except StoreError:
        return  # _database has said why
    if path is None or not path.is_file():
        return
    files = [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))]
    exposed = False
    for file in files:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue  # no -wal or -shm while no connection is open
        if mode & 0o077:
            exposed = True
            yield Finding(
                Status.FAIL,
                "database file",
                f"{file} can be read by other users (mode {mode:04o})",
                f"chmod 600 {file}",
            )
    if not exposed:
        yield Finding(Status.OK, "database file", f"{path} readable by its owner only")


def _revision(url: str, revision: str | None) -> Iterator[Finding]:
    head = head_revision()
    if revision == head:
        yield Finding(Status.OK, "database", f"{url} at schema revision {head} (the newest)")
    elif revision is None:
        yield Finding(
            Status.FAIL,
            "database",
            f"{url} is empty (no securechat schema)",
            "add the first user with `securechat adduser NAME --admin`",
        )
    elif revision not in known_revisions():
        yield Finding(
            Status.FAIL,
            "database",
            f"{url} is at schema revision {revision}, which this securechat does not know "
            f"(its newest is {head})",
            "install the securechat version that last used this database, or a newer one",
        )
    else:
        yield Finding(
            Status.WARN,
            "database",
            f"{url} is at schema revision {revision}; this securechat's newest is {head}",
            "`securechat serve` upgrades it when it starts, or run `securechat db upgrade` now",
        )


def _users(database: Database, create: str) -> Iterator[Finding]:
    query = text(
        "SELECT count(*), coalesce(sum(CASE WHEN is_admin AND NOT is_disabled "
        "THEN 1 ELSE 0 END), 0) FROM users"
    )
    with database.session() as session:
        users, admins = session.execute(query).one()
    if users == 0:
        yield Finding(Status.FAIL, "users", "no users yet, so nobody can log in", create)
    elif admins == 0:
        yield Finding(
            Status.WARN,
            "users",
            f"{users} user(s) but no enabled administrator",
            "add one with `securechat adduser NAME --admin`",
        )
    else:
        yield Finding(Status.OK, "users", f"{users} user(s), {admins} enabled administrator(s)")


# --- port -----------------------------------------------------------------------------


def _port(inst: Installation) -> Iterator[Finding]:
    name, where = "port", f"127.0.0.1 port {inst.port}"
    other = (
        f"stop that program, or run securechat on another port (`serve --port`, not {inst.port})"
    )
    ca_file = inst.certs_dir / certs.CA_CERT
    try:
        context = identify_context(ca_file)  # identify the server, do not trust a name
    except CertificateError as error:
        context = None
        no_ca = error
    try:
        stream = connect_tls(
            ("127.0.0.1", inst.port), context or probe_context(), timeout=PROBE_TIMEOUT
        )
    except HandshakeFailed:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    except ConnectionLost as error:
        if isinstance(error.__cause__, ConnectionRefusedError):
            yield _free_port(inst.port)
        else:
            yield Finding(Status.FAIL, name, f"cannot connect to {where}: {error.message}")
        return
    except CertificateError:
        yield Finding(
            Status.FAIL,
            name,
            f"a TLS server on {where} has a certificate not signed by {ca_file}: another "
            "program, or a securechat using other certificates",
            other,
        )
        return
    if context is None:
        stream.close()
        detail = f"something listens on {where}, but without a CA it cannot tell what"
        yield Finding(Status.WARN, name, f"{detail} ({no_ca.message})", "fix --certs")
        return
    yield _identify(stream, inst, where, other)


def _web_port(inst: Installation) -> Iterator[Finding]:
    """The web port answers TLS with our CA's certificate and serves the page with its CSP."""
    if inst.web_port is None:
        return
    name, port = "web port", inst.web_port
    where = f"127.0.0.1 port {port}"
    other = f"stop that program, or give securechat another one (`serve --web-port`, not {port})"
    try:
        context = identify_context(inst.certs_dir / certs.CA_CERT)  # identify, not trust
    except CertificateError as error:
        yield Finding(Status.WARN, name, f"cannot check {where} without a CA ({error.message})")
        return
    try:
        stream = connect_tls(("127.0.0.1", port), context, timeout=PROBE_TIMEOUT)
    except HandshakeFailed:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    except CertificateError:
        detail = f"a TLS server on {where} has a certificate not signed by {certs.CA_CERT}"
        yield Finding(Status.FAIL, name, detail, other)
        return
    except ConnectionLost as error:
        if isinstance(error.__cause__, ConnectionRefusedError):
            yield _free_port(port, name)
        else:
            yield Finding(Status.FAIL, name, f"cannot connect to {where}: {error.message}")
        return
    try:
        status, headers = _get_page(stream, port)
    except ConnectionLost:
        yield Finding(Status.FAIL, name, f"another program (not securechat) holds {where}", other)
        return
    finally:
        stream.close()
    if status != 200 or "content-security-policy" not in headers:
        detail = f"{where} answers HTTPS but not with securechat's page ({status})"
        yield Finding(Status.FAIL, name, detail, other)
        return
    yield Finding(Status.OK, name, f"the web client is served on {where}, with its CSP")


def _get_page(stream: TlsStream, port: int) -> tuple[int, set[str]]:
    """``GET /`` over ``stream``: the status and the names of the headers (lowercase).

    Raises:
        ConnectionLost: no HTTP answer came before the probe's deadline.
    """
    deadline = time.monotonic() + PROBE_TIMEOUT
    stream.queue(f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode())
    stream.flush_until(deadline)
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        answer += stream.receive_until(deadline)
    status_line, *lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionLost("not an HTTP answer")
    return int(parts[1]), {line.split(":", 1)[0].strip().lower() for line in lines if ":" in line}


def _free_port(port: int, check: str = "port") -> Finding:
    """Nothing answers on loopback; a bind tells "free" from "taken on another address"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return Finding(
                    Status.WARN,
                    check,
                    f"port {port} is in use on an address other than 127.0.0.1; doctor only "
                    "looks at 127.0.0.1, so it cannot tell whether that is securechat",
                    "check with `ss -ltnp`",
                )
            return Finding(
                Status.FAIL,
                check,
                f"securechat could not listen on port {port}: {error.strerror or error}",
                "use a port above 1023 (`serve --port`)",
            )
    return Finding(Status.OK, check, f"port {port} is free; securechat is not running")


def _identify(stream: TlsStream, inst: Installation, where: str, other: str) -> Finding:
    """Read ``hello`` from a TLS server our CA vouches for, then say ``bye``."""
    try:
        answer = probe(stream, label=where, timeout=PROBE_TIMEOUT)
    except SecureChatError:
        return Finding(
            Status.FAIL, "port", f"a TLS server on {where} does not speak securechat", other
        )
    hello = answer.hello
    detail = f"securechat is running on {where} ({hello.server}, protocol {hello.protocol})"
    on_disk = _server_cert(inst)
    presented = answer.peer_certificate
    if presented and on_disk and x509.load_der_x509_certificate(presented) != on_disk:
        return Finding(
            Status.WARN,
            "port",
            f"{detail}, but with another certificate than {inst.certs_dir / certs.SERVER_CERT}",
            _LOADS_IT,
        )
    return Finding(Status.OK, "port", detail)
