"""The server process's composition root: check the set-up, wire the parts, run until a signal.

``securechat serve`` and the bench's throwaway server (``securechat.bench.throwaway``) both
build a :class:`ServerConfig` and call :func:`run_server`, so the two run the same start-up:
certificate checks, the TLS context, the one-server lock, the database (migrated), the
:class:`ChatServer`, signal handling and the start-up log lines. :func:`build_server` is
the one place that builds the server's object graph (tests call it too); each part's
constructor takes only what it uses.

SIGINT and SIGTERM stop the server cleanly; SIGHUP makes it load its certificate files now
(``systemctl reload securechat``).
"""

from __future__ import annotations

import gc
import logging
import queue
import secrets
import signal
import ssl
from types import FrameType

from securechat import __version__
from securechat.accounts import DEFAULT_POLICY, Accounts
from securechat.attachments.layout import default_files_dir
from securechat.attachments.storage import open_files_dir
from securechat.attachments.thumbnails import Thumbnailer
from securechat.cert_files import ServerCertFiles, check_key_modes, read_ca_pem, server_cert_info
from securechat.certs import SERVER_CERT
from securechat.config import ServerConfig
from securechat.devices import Devices
from securechat.directory.login import DirectoryLogin
from securechat.directory.sync import server_sync
from securechat.errors import CertificatesMissing
from securechat.server.account_watch import AccountWatcher
from securechat.server.admission import Admission
from securechat.server.bus import Bus, NotifyBus, PollingBus
from securechat.server.committer import Committer
from securechat.server.effects import Effects
from securechat.server.external import ExternalChanges
from securechat.server.files import FileService
from securechat.server.hashpool import HashPool
from securechat.server.hub import Hub
from securechat.server.nodes import NodePresence
from securechat.server.peer import TrustedProxies
from securechat.server.periodic import Periodic
from securechat.server.presence import PresencePacer
from securechat.server.renewal import (
    CertificateRenewer,
    Credentials,
    CurrentCredentials,
    ServerFiles,
)
from securechat.server.server import ChatServer, ServerParts
from securechat.server.service import ChatService
from securechat.server.web import WebServer
from securechat.store.attachments import FileRecords
from securechat.store.backup import existing_users
from securechat.store.chat import ChatStore
from securechat.store.database import Database, open_database, safe_url
from securechat.store.listener import JournalListener
from securechat.store.lock import ServerLock
from securechat.store.nodes import NodeTable
from securechat.tls import server_context

log = logging.getLogger("securechat.server")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def freeze_start_up_objects() -> None:
    """Take what start-up made out of the cyclic collector's walks.

    Modules, SQLAlchemy's mappers and compiled statements, the TLS contexts: some 100,000
    objects that live as long as the process, yet every full collection walked them all,
    holding the GIL 60-90 ms on the reference VM and so stalling every session at once
    (fanout-rate's delivery max was 56-218 ms in most runs; docs/performance.md, "The
    WebSocket transport within 1.5x (#15), and the collector's pauses"). Objects made
    afterwards are collected as before, cycles included.
    """
    gc.collect()
    gc.freeze()


def configure_logging(level: str) -> None:
    """Log to stderr from ``level`` up (``"debug"``, ``"info"``, ...), one line per record."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise
    logging.getLogger("websockets").setLevel(logging.WARNING)  # a line per HTTP request too


def build_server(config: ServerConfig, *, tls: ssl.SSLContext, database: Database) -> ChatServer:
    """Build every part of a server on ``database`` and wire them together; not started.

    Raises:
        CertificateError: ca.pem (offered to clients for trust on first use) is unreadable.
        StoreError: the database cannot be read.
    """
    limits = config.limits
    credentials = CurrentCredentials(Credentials(tls, read_ca_pem(config.certs_dir)))
    origin = f"n-{secrets.token_hex(8)}"  # this process's name on its journal rows
    store = ChatStore(database, origin=origin, ref_window=limits.send_ref_window)
    hash_pool = HashPool(config.hash_params, limits.hash_concurrency)
    accounts = Accounts(database, hash_params=config.hash_params, hasher=hash_pool)
    # Ids first: a name deleted and added again in between then looks replaced, not new.
    owners = accounts.ids()
    # The journal's end before the rooms: what is written meanwhile is applied again.
    tail_from, news_from = store.last_message_id(), store.last_news_id()
    states = store.room_states()
    hub = Hub(
        {room: state.members for room, state in states.items()},
        owners,
        {room: state.meta for room, state in states.items()},
    )
    committer = Committer(store, hub, limits)
    bus: Bus
    nodes = None
    if database.engine.dialect.name == "postgresql":  # possibly one node of several
        bus = NotifyBus(
            store, JournalListener(database.url, name=f"securechat {origin}"),
            origin=origin, after=tail_from, news_after=news_from,
            check_interval=limits.bus_check_interval, retry_interval=limits.bus_retry_interval,
        )  # fmt: skip
        table = NodeTable(database, origin, ttl=limits.node_ttl)
        nodes = NodePresence(table, hub, interval=limits.node_heartbeat_interval)
    else:
        bus = PollingBus(
            store, origin=origin, after=tail_from, interval=limits.journal_poll_interval
        )
    external = ExternalChanges(store, hub, Effects(hub), committer.delivery)
    bus.subscribe(external.apply_rows)
    bus.subscribe_news(external.apply_news)
    directory = None
    if config.directory is not None:
        directory = DirectoryLogin(
            config.directory, database, max_password=DEFAULT_POLICY.max_length
        )
    files = build_files(config, database)
    service = ChatService(
        store=store, accounts=accounts, hub=hub, committer=committer, hash_pool=hash_pool,
        limits=limits, throttle=config.throttle, default_rooms=config.default_rooms,
        directory=directory, files=files,
    )  # fmt: skip
    proxies = TrustedProxies(config.trusted_proxies)
    admission = Admission(limits, proxies)
    renewer = CertificateRenewer(
        config.certs_dir, credentials.install, renew_before_days=config.renew_before_days,
        cert_file=config.cert_file, key_file=config.key_file,
        check_interval=limits.certificate_check_interval,
        retry_interval=limits.certificate_retry_interval,
    )  # fmt: skip
    watcher = AccountWatcher(accounts, hub, service, admission)
    # The directory's own sync ends the sessions of those it disabled at once, rather than
    # at the account watcher's next look.
    sync = server_sync(
        config.directory, database, lambda op: committer.perform(op, origin=None),
        on_disabled=watcher.check,
    )  # fmt: skip
    directory_sync = None
    if sync is not None:
        scheduled, every = sync
        directory_sync = Periodic(
            "directory-sync", scheduled.run_once, interval=every, at_start=True
        )
    web = None
    if config.web_port is not None:
        web = WebServer(
            host=config.host,
            port=config.web_port,
            credentials=credentials.get,
            names=server_cert_info(config.cert_file or config.certs_dir / SERVER_CERT).sans,
            service=service,
            limits=limits,
            admit=admission.admit,
            on_authenticated=admission.authenticated,
            on_closed=admission.closed,
            listen_backlog=config.listen_backlog,
            proxies=proxies,
            on_proxied=admission.proxied,
            devices=Devices(
                database, grant_ttl=limits.device_grant_ttl,
                idle_timeout=limits.device_idle_timeout, keep=limits.max_devices_per_user,
            ),
            files=files,
        )  # fmt: skip
    parts = ServerParts(
        origin=origin, hub=hub, accounts=accounts, service=service, committer=committer,
        hash_pool=hash_pool, bus=bus, nodes=nodes, admission=admission, proxies=proxies,
        credentials=credentials, renewer=renewer,
        renewal=Periodic(
            "cert-renewal", renewer.scheduled_check,
            interval=limits.certificate_check_interval, at_start=True,
        ),
        account_watcher=Periodic(
            "account-watcher", watcher.check, interval=limits.account_check_interval
        ),
        presence=Periodic("presence", PresencePacer(
            hub, interval=limits.presence_interval,
            interval_max=limits.presence_interval_max,
            interval_per_1000=limits.presence_interval_per_1000,
        ).tick, interval=limits.presence_interval),
        directory_sync=directory_sync,
        web=web,
        files=files,
        file_collector=Periodic(
            "file-collector", files.collect_now, interval=limits.file_collect_interval
        ) if files.enabled else None,
    )  # fmt: skip
    return ChatServer(config, parts)


def build_files(config: ServerConfig, database: Database) -> FileService:
    """Shared files (#27): on with a web port and a files folder (``--files``, or beside a
    SQLite database); a PostgreSQL database has no default, so they are off until named.

    Raises:
        ConfigError: the files folder cannot be made or written.
    """
    limits = config.limits
    records = FileRecords(database)
    folder = config.files_dir or default_files_dir(config.db_url)
    if config.web_port is None or folder is None:
        return FileService(records=records, storage=None, limits=limits, web_port=None)
    storage = open_files_dir(folder)
    bounds = config.files
    thumbnails = Thumbnailer(
        folder, max_pixels=bounds.thumbnail_max_pixels, size=bounds.thumbnail_size,
        queue_size=bounds.thumbnail_queue,
    )  # fmt: skip
    return FileService(
        records=records, storage=storage, limits=limits, web_port=config.web_port,
        thumbnails=thumbnails,
    )  # fmt: skip


def _files_state(config: ServerConfig) -> str:
    """Where shared files go, or why they are off: for the start-up log."""
    folder = config.files_dir or default_files_dir(config.db_url)
    if config.web_port is None:
        return "off: no web port"
    return f"in {folder}" if folder is not None else "off: no files folder (give --files DIR)"


def _check_files(config: ServerConfig) -> ServerCertFiles:
    """The certificate files, or an error that warns before making a second CA.

    Raises:
        CertificateError: the files are not usable (CertificatesMissing: none there).
    """
    try:
        return ServerFiles(config.certs_dir, config.cert_file, config.key_file).check()
    except CertificatesMissing as exc:
        users = existing_users(config.db_url)
        if not users:
            raise
        raise CertificatesMissing(
            f"{exc.message}. Careful: {safe_url(config.db_url)} already has {users} "
            f"user{'s' if users != 1 else ''}: a new CA means every colleague must trust "
            "it again (a new ca.pem and ca.crt)"
        ) from exc


def run_server(config: ServerConfig) -> None:
    """Check the set-up, start, wait for SIGINT or SIGTERM, shut down cleanly.

    SIGHUP asks the server to load its certificate files now. Call from the main thread
    (signal handlers can be set nowhere else).

    Raises:
        SecureChatError: the certificates, the database or the address are not usable, or
            another server holds the database.
    """
    files = _check_files(config)
    check_key_modes(config.certs_dir, files.key_file)
    info = server_cert_info(files.cert_file)
    tls = server_context(files.cert_file, files.key_file)
    lock = ServerLock(config.db_url)
    lock.acquire()  # before opening: a second server must not even migrate a live database
    database = open_database(config.db_url)
    server = build_server(config, tls=tls, database=database)
    # The handlers only note the signal and wake this thread, which logs and acts on it: a
    # handler runs between two bytecodes of this thread, maybe inside a write to stderr,
    # and logging from it there raised (a reentrant write), so SIGTERM was lost at start-up.
    received: queue.SimpleQueue[signal.Signals] = queue.SimpleQueue()

    def note(signum: int, _frame: FrameType | None) -> None:
        received.put(signal.Signals(signum))

    handlers = {signal.SIGINT: note, signal.SIGTERM: note, signal.SIGHUP: note}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        server.start()
        host, port = server.address
        log.info("securechat %s listening on %s port %d", __version__, host, port)
        if server.web_address is not None:
            web_port = server.web_address[1]
            log.info("web client on port %d: https://%s:%d/", web_port, info.sans[0], web_port)
        log.info("database %s", safe_url(config.db_url))
        log.info("shared files %s", _files_state(config))
        if config.trusted_proxies:
            proxies = ", ".join(map(str, config.trusted_proxies))
            log.info("PROXY protocol headers expected from (and only from) %s", proxies)
        expiry = f"{info.not_after:%Y-%m-%d %H:%M} UTC"
        log.info("certificate for %s, valid until %s", ", ".join(info.sans), expiry)
        log.info("password checks in %s", server.password_checks)
        if config.directory is not None:
            directory = config.directory
            every = "off" if directory.sync_interval is None else f"{directory.sync_interval:g} s"
            log.info("directory login (%s) through %s; sync every %s",
                     directory.preset, ", ".join(directory.urls), every)  # fmt: skip
        if not Accounts(database, hash_params=config.hash_params).list():
            log.warning("no users yet: add one with `securechat adduser NAME`")
        freeze_start_up_objects()
        while (signum := _next_signal(received)) is signal.SIGHUP:
            log.info("received SIGHUP, loading the certificate files in %s", config.certs_dir)
            server.reload_certificates()
        log.info("received %s, shutting down", signum.name)
    finally:
        server.shutdown()
        database.dispose()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _next_signal(received: queue.SimpleQueue[signal.Signals]) -> signal.Signals:
    """The next signal noted; the timeout lets the handlers run even where a blocked wait
    is not interrupted by a signal."""
    while True:
        try:
            return received.get(timeout=1.0)
        except queue.Empty:
            continue
