"""``securechat serve``: run the chat server in the foreground until SIGINT or SIGTERM.

SIGHUP makes it load its certificate files now (``systemctl reload securechat``).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from securechat import __version__
from securechat.accounts import Accounts
from securechat.certs import (
    CA_CERT,
    check_key_modes,
    check_server_files,
    check_server_pair,
    server_cert_info,
)
from securechat.cli.app import app
from securechat.cli.options import CERTS_DEFAULT, DB_DEFAULT, CertsDir, DbUrl
from securechat.config import DEFAULT_PORT, DEFAULT_WEB_PORT, Limits, ServerConfig
from securechat.errors import ConfigError
from securechat.server.server import ChatServer
from securechat.store.database import open_database, safe_url
from securechat.store.lock import ServerLock
from securechat.tls import server_context

log = logging.getLogger("securechat.server")
_DEFAULTS = Limits()
_LIMITS = "Limits"
_WEB = "Web client and certificate"


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
    web_port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT", help="Port for browsers: HTTPS and WebSocket, same certificate (0: any free port, logged at start).", rich_help_panel=_WEB)] = DEFAULT_WEB_PORT,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not listen for browsers; terminal clients only.", rich_help_panel=_WEB)] = False,
    cert: Annotated[Path | None, typer.Option(metavar="FILE", help="Server certificate from your own CA (PEM, intermediates after it) instead of the certificate folder's server.pem; ca.pem there must be the CA that issued it. Needs --key.", rich_help_panel=_WEB)] = None,
    key: Annotated[Path | None, typer.Option(metavar="FILE", help="The private key of --cert (PEM, unencrypted).", rich_help_panel=_WEB)] = None,
    log_level: Annotated[LogLevel, typer.Option(metavar="LEVEL", help="Least severe log level to print: debug, info, warning or error.")] = LogLevel.info,
    max_connections: Annotated[int, typer.Option(metavar="N", min=1, help="Connections held at once.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_connections,
    max_unauthenticated: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, overall.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated,
    max_unauthenticated_per_ip: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, per source address.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated_per_ip,
    max_sessions_per_user: Annotated[int, typer.Option(metavar="N", min=1, help="Logged-in sessions per user; one more login is refused (too_many_sessions).", rich_help_panel=_LIMITS)] = _DEFAULTS.max_sessions_per_user,
    auth_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=0.1, help="Seconds from TCP accept to a completed login.", rich_help_panel=_LIMITS)] = _DEFAULTS.auth_timeout,
    idle_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=1, help="Seconds of client silence before disconnecting.", rich_help_panel=_LIMITS)] = _DEFAULTS.idle_timeout,
    max_frame: Annotated[int, typer.Option(metavar="BYTES", min=1024, max=16 * 1024 * 1024, help="Largest frame (and WebSocket message) accepted, in bytes.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_frame,
    max_body: Annotated[int, typer.Option(metavar="CHARS", min=1, help="Longest message body, in characters.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_body,
    rate: Annotated[float, typer.Option(metavar="PER_SECOND", min=1, help="Requests per second allowed per connection (bursts of twice that).", rich_help_panel=_LIMITS)] = _DEFAULTS.rate_per_second,
) -> None:  # fmt: skip
    """Run the chat server until Ctrl-C or SIGTERM.

    Terminal clients connect to --port; colleagues with a browser open
    https://HOST:WEB_PORT/ (the same certificate; see docs/deploy.md for trusting the CA
    in browsers). Needs the files from `securechat init-certs` (or --cert/--key and the
    issuing CA as ca.pem) and at least one user from `securechat adduser`. Brings the
    database schema up to date before it starts. SIGHUP loads new certificate files at
    once (they are also checked every hour).
    """
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise
    logging.getLogger("websockets").setLevel(logging.WARNING)  # a line per HTTP request too
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
    config = ServerConfig(
        host=host,
        port=port,
        web_port=None if no_web else web_port,
        certs_dir=certs,
        db_url=db,
        limits=limits,
        cert_file=cert,
        key_file=key,
    )
    run_server(config)


def run_server(config: ServerConfig) -> None:
    """Check the set-up, start, wait for SIGINT or SIGTERM, shut down cleanly.

    SIGHUP asks the server to load its certificate files now.
    """
    if config.cert_file is not None and config.key_file is not None:
        files = check_server_pair(config.cert_file, config.key_file, config.certs_dir / CA_CERT)
    else:
        files = check_server_files(config.certs_dir)
    check_key_modes(config.certs_dir, files.key_file)
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
        if server.web_address is not None:
            web_port = server.web_address[1]
            log.info("web client on port %d: https://%s:%d/", web_port, info.sans[0], web_port)
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
