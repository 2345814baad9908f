"""``securechat serve``: run the chat server in the foreground until SIGINT or SIGTERM.

SIGHUP makes it load its certificate files now (``systemctl reload securechat``).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from securechat import __version__
from securechat.accounts import Accounts
from securechat.certs import check_key_modes, check_server_files, server_cert_info
from securechat.cli.app import app
from securechat.cli.options import CERTS_DEFAULT, DB_DEFAULT, CertsDir, DbUrl
from securechat.config import DEFAULT_PORT, Limits, ServerConfig
from securechat.server.server import ChatServer
from securechat.store.database import open_database, safe_url
from securechat.store.lock import ServerLock
from securechat.tls import server_context

log = logging.getLogger("securechat.server")
_DEFAULTS = Limits()
_LIMITS = "Limits"


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on (0.0.0.0: every IPv4 address; :: for IPv6 too).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT", help="TCP port to listen on (0: any free port, logged at start).")] = DEFAULT_PORT,
    certs: CertsDir = CERTS_DEFAULT,
    db: DbUrl = DB_DEFAULT,
    log_level: Annotated[LogLevel, typer.Option(metavar="LEVEL", help="Least severe log level to print: debug, info, warning or error.")] = LogLevel.info,
    max_connections: Annotated[int, typer.Option(metavar="N", min=1, help="Connections held at once.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_connections,
    max_unauthenticated: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, overall.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated,
    max_unauthenticated_per_ip: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, per source address.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated_per_ip,
    max_sessions_per_user: Annotated[int, typer.Option(metavar="N", min=1, help="Logged-in sessions per user; one more login is refused (too_many_sessions).", rich_help_panel=_LIMITS)] = _DEFAULTS.max_sessions_per_user,
    auth_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=0.1, help="Seconds from TCP accept to a completed login.", rich_help_panel=_LIMITS)] = _DEFAULTS.auth_timeout,
    idle_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=1, help="Seconds of client silence before disconnecting.", rich_help_panel=_LIMITS)] = _DEFAULTS.idle_timeout,
    max_frame: Annotated[int, typer.Option(metavar="BYTES", min=1024, max=16 * 1024 * 1024, help="Largest frame accepted, in bytes.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_frame,
    max_body: Annotated[int, typer.Option(metavar="CHARS", min=1, help="Longest message body, in characters.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_body,
    rate: Annotated[float, typer.Option(metavar="PER_SECOND", min=1, help="Requests per second allowed per connection (bursts of twice that).", rich_help_panel=_LIMITS)] = _DEFAULTS.rate_per_second,
) -> None:  # fmt: skip
    """Run the chat server until Ctrl-C or SIGTERM.

    Needs the files from `securechat init-certs` and at least one user from
    `securechat adduser`. Brings the database schema up to date before it starts.
    SIGHUP loads new certificate files at once (they are also checked every hour).
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise
    limits = dataclasses.replace(
        _DEFAULTS,
        max_connections=max_connections,
        max_unauthenticated=max_unauthenticated,
        max_unauthenticated_per_ip=max_unauthenticated_per_ip,
        max_sessions_per_user=max_sessions_per_user,
        auth_timeout=auth_timeout,
        idle_timeout=idle_timeout,
        max_frame=max_frame,
        max_body=min(max_body, max_frame),
        rate_per_second=rate,
        rate_burst=max(int(rate * 2), 1),
    )
    config = ServerConfig(host=host, port=port, certs_dir=certs, db_url=db, limits=limits)
    run_server(config)


def run_server(config: ServerConfig) -> None:
    """Check the set-up, start, wait for SIGINT or SIGTERM, shut down cleanly.

    SIGHUP asks the server to load its certificate files now.
    """
    files = check_server_files(config.certs_dir)
    check_key_modes(config.certs_dir)
    info = server_cert_info(files.cert_file)
    tls = server_context(files.cert_file, files.key_file)
    lock = ServerLock(config.db_url)
    lock.acquire()  # before opening: a second server must not even migrate a live database
    database = open_database(config.db_url)
    server = ChatServer(config, tls=tls, database=database)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("received SIGHUP, loading the certificate files in %s", config.certs_dir)
        server.reload_certificates()  # an Event: safe here, nothing in this thread waits on it

    handlers = {signal.SIGINT: on_signal, signal.SIGTERM: on_signal, signal.SIGHUP: on_hangup}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        server.start()
        host, port = server.address
        log.info("securechat %s listening on %s port %d", __version__, host, port)
        log.info("database %s", safe_url(config.db_url))
        expiry = f"{info.not_after:%Y-%m-%d %H:%M} UTC"
        log.info("certificate for %s, valid until %s", ", ".join(info.sans), expiry)
        log.info("password checks in %s", server.password_checks)
        if not Accounts(database, hash_params=config.hash_params).list():
            log.warning("no users yet: add one with `securechat adduser NAME`")
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        database.dispose()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
