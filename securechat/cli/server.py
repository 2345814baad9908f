"""``securechat serve``: run the chat server in the foreground until SIGINT or SIGTERM.

The options become a :class:`ServerConfig`; :func:`securechat.server.runner.run_server`
does the rest (SIGHUP makes it load its certificate files now). The server is imported
when ``serve`` runs, so that the other commands (and ``config show``, which reads these
options) do not load it.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated

import typer

from securechat.attachments.sizes import parse_size
from securechat.cli import configuration
from securechat.cli.app import app
from securechat.cli.options import CERTS_DEFAULT, DB_DEFAULT, CertsDir, ConfigPath, DbUrl
from securechat.config import DEFAULT_PORT, DEFAULT_WEB_PORT, Limits, ServerConfig
from securechat.errors import ConfigError

_DEFAULTS = Limits()
_LIMITS = "Limits"
_WEB = "Web client and certificate"
_FILES = "Shared files"


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def serve(
    ctx: typer.Context,
    config: ConfigPath = None,
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on (0.0.0.0: every IPv4 address; :: for IPv6 too).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT", help="TCP port to listen on (0: any free port, logged at start).")] = DEFAULT_PORT,
    certs: CertsDir = CERTS_DEFAULT,
    db: DbUrl = DB_DEFAULT,
    web_port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT", help="Port for browsers: HTTPS and WebSocket, same certificate (0: any free port, logged at start).", rich_help_panel=_WEB)] = DEFAULT_WEB_PORT,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not listen for browsers; terminal clients only.", rich_help_panel=_WEB)] = False,
    cert: Annotated[Path | None, typer.Option(metavar="FILE", help="Server certificate from your own CA (PEM, intermediates after it) instead of the certificate folder's server.pem; ca.pem there must be the CA that issued it. Needs --key.", rich_help_panel=_WEB)] = None,
    key: Annotated[Path | None, typer.Option(metavar="FILE", help="The private key of --cert (PEM, unencrypted).", rich_help_panel=_WEB)] = None,
    trusted_proxy: Annotated[list[str] | None, typer.Option(metavar="ADDR|CIDR", help="A proxy in front of this server (HAProxy with send-proxy-v2) whose PROXY protocol header names the client; repeatable. Connections from it must start with the header (v1 or v2), and the client's address is then used for every limit, throttle and log line; a header from any other address is refused. Default: none.", show_default=False)] = None,
    log_level: Annotated[LogLevel, typer.Option(metavar="LEVEL", help="Least severe log level to print: debug, info, warning or error.")] = LogLevel.info,
    max_connections: Annotated[int, typer.Option(metavar="N", min=1, help="Connections held at once.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_connections,
    max_unauthenticated: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, overall.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated,
    max_unauthenticated_per_ip: Annotated[int, typer.Option(metavar="N", min=1, help="Connections not yet logged in, per source address (an IPv6 /64 counts as one); past it the longest waiting one is closed.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_unauthenticated_per_ip,
    max_sessions_per_user: Annotated[int, typer.Option(metavar="N", min=1, help="Logged-in sessions per user; one more login is refused (too_many_sessions).", rich_help_panel=_LIMITS)] = _DEFAULTS.max_sessions_per_user,
    max_rooms_per_user: Annotated[int, typer.Option(metavar="N", min=1, help="Rooms one user may hold: those they are in, plus those they left empty; one more join or create is refused (too_many_rooms). The admin's `securechat room create --owner` is not capped.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_rooms_per_user,
    auth_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=0.1, help="Seconds from TCP accept to a completed login.", rich_help_panel=_LIMITS)] = _DEFAULTS.auth_timeout,
    idle_timeout: Annotated[float, typer.Option(metavar="SECONDS", min=1, help="Seconds of client silence before disconnecting.", rich_help_panel=_LIMITS)] = _DEFAULTS.idle_timeout,
    max_frame: Annotated[int, typer.Option(metavar="BYTES", min=1024, max=16 * 1024 * 1024, help="Largest frame (and WebSocket message) accepted, in bytes.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_frame,
    max_body: Annotated[int, typer.Option(metavar="CHARS", min=1, help="Longest message body, in characters.", rich_help_panel=_LIMITS)] = _DEFAULTS.max_body,
    rate: Annotated[float, typer.Option(metavar="PER_SECOND", min=1, help="Requests per second allowed per connection (bursts of twice that).", rich_help_panel=_LIMITS)] = _DEFAULTS.rate_per_second,
    files: Annotated[Path | None, typer.Option(metavar="DIR", help="Folder for shared files (made mode 0700). Default: beside a SQLite database (chat.db: chat-files); with PostgreSQL files are off until given, one folder every node reaches (docs/deploy.md, section 13).", show_default=False, rich_help_panel=_FILES)] = None,
    max_file_size: Annotated[str, typer.Option(metavar="SIZE", help="Largest file one may share: bytes, or with a unit (512KiB, 10MiB); past it file_too_large.", rich_help_panel=_FILES)] = "25MiB",
    file_quota_per_day: Annotated[str, typer.Option(metavar="SIZE", help="Bytes one user may upload in 24 hours; past it quota_exceeded.", rich_help_panel=_FILES)] = "1GiB",
    max_uploads_per_user: Annotated[int, typer.Option(metavar="N", min=1, help="Uploads in flight per user; one more is refused (too_many_uploads).", rich_help_panel=_FILES)] = _DEFAULTS.max_uploads_per_user,
    max_uploads: Annotated[int, typer.Option(metavar="N", min=1, help="Uploads in flight on this server, overall.", rich_help_panel=_FILES)] = _DEFAULTS.max_uploads,
    node_ttl: Annotated[float, typer.Option(metavar="SECONDS", min=1, help="Several nodes on one PostgreSQL: a node silent this long is taken for dead and its users for offline (heartbeats come every second).", rich_help_panel=_LIMITS)] = _DEFAULTS.node_ttl,
) -> None:  # fmt: skip
    """Run the chat server until Ctrl-C or SIGTERM.

    Terminal clients connect to --port; colleagues with a browser open
    https://HOST:WEB_PORT/ (the same certificate; see docs/deploy.md for trusting the CA
    in browsers). Behind HAProxy, give its address with --trusted-proxy (docs/deploy.md,
    section 13). Needs the files from `securechat init-certs` (or --cert/--key and the
    issuing CA as ca.pem) and at least one user from `securechat adduser`. Brings the
    database schema up to date before it starts. SIGHUP loads new certificate files at
    once (they are also checked every hour).

    Every option can be set in a configuration file (--config): certs and db at its top
    level, the others in its [serve] table. Command line > environment > file > default.
    """
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together")
    from securechat.server.peer import parse_trusted_proxy
    from securechat.server.runner import configure_logging, run_server

    proxies = tuple(dict.fromkeys(parse_trusted_proxy(text) for text in trusted_proxy or ()))
    configure_logging(log_level)
    limits = dataclasses.replace(
        _DEFAULTS,
        max_connections=max_connections,
        max_unauthenticated=max_unauthenticated,
        max_unauthenticated_per_ip=max_unauthenticated_per_ip,
        max_sessions_per_user=max_sessions_per_user,
        max_rooms_per_user=max_rooms_per_user,
        auth_timeout=auth_timeout,
        idle_timeout=idle_timeout,
        max_frame=max_frame,
        max_body=min(max_body, max_frame),
        rate_per_second=rate,
        rate_burst=max(int(rate * 2), 1),
        node_ttl=max(node_ttl, 2 * _DEFAULTS.node_heartbeat_interval),
        max_file_size=_size("--max-file-size", max_file_size),
        file_quota_per_day=_size("--file-quota-per-day", file_quota_per_day),
        max_uploads_per_user=max_uploads_per_user,
        max_uploads=max_uploads,
    )
    server_config = ServerConfig(
        host=host,
        port=port,
        web_port=None if no_web else web_port,
        certs_dir=certs,
        db_url=db,
        limits=limits,
        cert_file=cert,
        key_file=key,
        trusted_proxies=proxies,
        directory=configuration.directory(ctx),
        files_dir=files,
    )
    run_server(server_config)


def _size(option: str, text: str) -> int:
    """Raises: ConfigError naming ``option``."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from exc
