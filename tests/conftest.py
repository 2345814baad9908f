"""Fixtures shared by the whole suite. Area-specific fixtures live in their test modules."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypedDict, Unpack

import pytest

if TYPE_CHECKING:
    from securechat.certs import CertificateAuthority
    from securechat.client import Backoff, Client
    from securechat.config import ThrottlePolicy
    from securechat.directory.settings import DirectoryConfig
    from securechat.server.server import ChatServer
    from securechat.store.database import Database
    from tests.peer import Peer
    from tests.postgres import DatabasePool, PostgresCluster
    from tests.pty_terminal import Terminal
    from tests.serve_process import ServeProcess
    from tests.slapd import Slapd

#: Upper bound, in seconds, for any single wait in a test.
TIMEOUT = 10.0
#: How long a WebSocket session's opening (TLS, then the HTTP upgrade) may take in the
#: tests, on both sides: several thread hand-overs on each, slow when two test workers
#: and a browser fill both cores (one took over 10 s in a full run).
WEB_OPENING_TIMEOUT = 3 * TIMEOUT


class CliRunner(Protocol):
    """The ``run_cli`` fixture: ``run_cli("adduser", "alice", input=...)``."""

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_cli(tmp_path: Path) -> CliRunner:
    """Run ``python -m securechat ARGS`` as a real subprocess in ``tmp_path``."""

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        full_env.update(env or {})
        argv: Sequence[str] = [sys.executable, "-m", "securechat", *args]
        return subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run


# --- certificates and a running server ------------------------------------------------


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """securechat's wheel, built once per session from this checkout (about 10 s)."""
    import importlib.util

    out = tmp_path_factory.mktemp("dist")
    # Without isolation when hatchling is at hand (fast, offline); else build fetches it.
    isolation = ["--no-isolation"] if importlib.util.find_spec("hatchling") else []
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(out), str(repo)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (built,) = out.glob("securechat-*.whl")
    return built


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for localhost, made once per test run."""
    from securechat.certs import init_certs

    directory = tmp_path_factory.mktemp("certs")
    init_certs(directory, hosts=["localhost", "127.0.0.1", "::1"])
    return directory


PASSWORD = "correct horse battery"
USERS = ("alice", "bob", "carol", "dave")


def add_accounts(db_url: str, *names: str, admin: bool = False) -> None:
    """More users than ``USERS``, with ``PASSWORD`` (the cheap argon2 profile)."""
    from securechat.accounts import Accounts
    from securechat.config import HashParams
    from securechat.store.database import open_database

    database = open_database(db_url)
    accounts = Accounts(database, hash_params=HashParams.for_tests())
    for name in names:
        accounts.add(name, PASSWORD, admin=admin)
    database.dispose()


@dataclasses.dataclass
class RunningServer:
    server: ChatServer
    address: tuple[str, int]
    ca_file: Path
    db_url: str
    peers: list[Peer] = dataclasses.field(default_factory=list)
    web_address: tuple[str, int] | None = None  # with web_port=: where browsers connect

    def peer(self, source: str | None = None, prefix: bytes = b"") -> Peer:
        """A new raw-protocol connection (from ``source``, a loopback address), closed after;
        ``prefix`` goes before the TLS handshake (a PROXY header)."""
        from tests.peer import Peer

        peer = Peer(self.address, self.ca_file, source=source, prefix=prefix)
        self.peers.append(peer)
        return peer

    def login(self, user: str, password: str = PASSWORD, source: str | None = None) -> Peer:
        peer = self.peer(source)
        peer.login(user, password)
        return peer


# --- databases: tests that touch SQL run on SQLite and on PostgreSQL -------------------

DATABASE_KINDS = ("sqlite", "postgresql")
#: The group commit's ways to add rows (store/messages.py) on each kind of database.
WRITE_PATHS = {"sqlite": ("sqlite-cursor", "portable"), "postgresql": ("portable",)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test marked ``postgresql`` (on the test or its module) that uses a database
    on both kinds, and one that takes ``write_path`` on each path of each kind.

    The others use SQLite only: the PostgreSQL variants are kept to the modules that touch
    SQL (store, migrations, committer, faults, accounts, server, CLI), so that ``make
    check`` stays within its time on 2 cores.
    ``@pytest.mark.sqlite_only(reason=...)`` keeps one test of a marked module to SQLite;
    ``@pytest.mark.postgresql_only`` (with ``postgresql``) runs it on PostgreSQL alone.
    """
    if "database_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("sqlite_only")
    if marker is not None and not marker.kwargs.get("reason"):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs reason=...")
    on_postgresql = metafunc.definition.get_closest_marker("postgresql") is not None
    kinds = list(DATABASE_KINDS) if on_postgresql and marker is None else ["sqlite"]
    if metafunc.definition.get_closest_marker("postgresql_only") is not None:
        on_postgresql, kinds = True, ["postgresql"]
    if "write_path" in metafunc.fixturenames:
        pairs = [(kind, path) for kind in kinds for path in WRITE_PATHS[kind]]
        metafunc.parametrize(("database_kind", "write_path"), pairs, indirect=True)
    elif on_postgresql:
        metafunc.parametrize("database_kind", kinds, indirect=True)


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the database this run of the test uses (SQLite unless
    the test is marked ``postgresql``)."""
    kind: str = getattr(request, "param", "sqlite")
    return kind


@pytest.fixture
def write_path(request: pytest.FixtureRequest) -> str:
    """How the group commit adds rows: ``sqlite-cursor`` or ``portable`` (ChatStore)."""
    path: str = request.param
    return path


@dataclasses.dataclass(frozen=True)
class PostgresFixture:
    """The session's PostgreSQL cluster and its pool of databases at head (see ``postgres``)."""

    cluster: PostgresCluster
    pool: DatabasePool
    users: list[dict[str, Any]]  # the rows of USERS in the users table

    def database(self, *, with_users: bool) -> contextlib.AbstractContextManager[str]:
        """A database at head for one test, empty or holding only USERS."""
        return self.pool.lease({"users": self.users} if with_users else None)

    @contextlib.contextmanager
    def blank_database(self) -> Iterator[str]:
        """A new database without even a schema, dropped after the test."""
        url = self.cluster.create_database()
        try:
            yield url
        finally:
            self.cluster.drop_database(url)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresFixture]:
    """A throwaway PostgreSQL cluster for the whole run (tests/postgres.py), started by the
    first test that needs it; stopped and removed at the end, by its watchdog even when the
    run is killed (SIGTERM, SIGKILL).

    The tests' databases come from a pool (``DatabasePool``): copies of one migrated
    template, emptied before each test and given USERS again by copying their rows.
    """
    from securechat.accounts import Accounts
    from securechat.config import HashParams
    from securechat.store.database import open_database
    from tests.postgres import DatabasePool, PostgresCluster, find_bindir, missing

    reason = missing()
    if reason is not None:
        skip_or_fail(reason)
    bindir = find_bindir()
    assert bindir is not None
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        database = open_database(cluster.create_database(name="template_at_head"))
        try:
            accounts = Accounts(database, hash_params=HashParams.for_tests())
            for user in USERS:
                accounts.add(user, PASSWORD)
        finally:
            database.dispose()
        users = cluster.rows("template_at_head", "users")
        cluster.execute("template_at_head", "TRUNCATE users RESTART IDENTITY CASCADE")
        yield PostgresFixture(cluster, DatabasePool(cluster, "template_at_head"), users)
    finally:
        cluster.stop()


@pytest.fixture
def empty_db(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Database]:
    """A fresh, empty database at head, opened: a SQLite file, or a PostgreSQL database."""
    from securechat.store.database import open_database

    with contextlib.ExitStack() as stack:
        if database_kind == "postgresql":
            postgres: PostgresFixture = request.getfixturevalue("postgres")
            url = stack.enter_context(postgres.database(with_users=False))
        else:
            url = f"sqlite:///{tmp_path / 'empty.db'}"
        database = open_database(url)
        stack.callback(database.dispose)
        yield database


@pytest.fixture
def db_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database at head with USERS (password PASSWORD) in it; its URL."""
    from securechat.accounts import Accounts
    from securechat.config import HashParams
    from securechat.store.database import open_database

    if database_kind == "postgresql":
        postgres: PostgresFixture = request.getfixturevalue("postgres")
        with postgres.database(with_users=True) as url:
            yield url
        return
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    database = open_database(url)
    accounts = Accounts(database, hash_params=HashParams.for_tests())
    for user in USERS:
        accounts.add(user, PASSWORD)
    database.dispose()
    yield url


@pytest.fixture
def users_db(db_url: str) -> Iterator[Database]:
    """The database of ``db_url`` (USERS in it), opened."""
    from securechat.store.database import open_database

    database = open_database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def blank_db_url(
    database_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of a database with nothing in it, not even a schema (SQLite: no file yet)."""
    if database_kind == "postgresql":
        postgres: PostgresFixture = request.getfixturevalue("postgres")
        with postgres.blank_database() as url:
            yield url
        return
    yield f"sqlite:///{tmp_path / 'blank.db'}"


class LimitOverrides(TypedDict, total=False):
    """``server_factory``'s keyword arguments that replace a default of ``config.Limits``."""

    max_frame: int
    max_body: int
    max_connections: int
    max_unauthenticated: int
    max_unauthenticated_per_ip: int
    max_sessions_per_user: int
    max_sessions_per_address: int
    handshake_timeout: float
    max_proxy_header: int
    auth_timeout: float
    idle_timeout: float
    heartbeat: int
    outbox_frames: int
    outbox_bytes: int
    stuck_writer_timeout: float
    rate_per_second: float
    rate_burst: int
    history_default: int
    history_limit: int
    sync_page: int
    sync_reply_bytes: int
    rooms_page: int
    members_page: int
    invitations_page: int
    room_mention_interval: float
    room_mention_burst: int
    hash_concurrency: int
    token_ttl: float
    max_tokens_per_user: int
    account_check_interval: float
    certificate_check_interval: float
    certificate_retry_interval: float
    presence_interval: float
    commit_batch: int
    commit_queue: int
    commit_queue_bytes: int
    shutdown_grace: float
    bus_check_interval: float
    bus_retry_interval: float
    node_heartbeat_interval: float
    node_ttl: float
    max_rooms_per_user: int
    search_scan_limit: int
    search_rate_per_second: float
    search_burst: int
    max_file_size: int
    file_quota_per_day: int
    max_uploads_per_user: int
    max_uploads: int
    file_unsent_ttl: float
    file_collect_interval: float
    transfer_idle_timeout: float


class ServerFactory(Protocol):
    """The ``server_factory`` fixture: ``server_factory(web_port=0, max_body=20)``."""

    def __call__(
        self,
        port: int = 0,
        throttle: ThrottlePolicy | None = None,
        web_port: int | None = None,
        trusted_proxies: tuple[str, ...] = (),
        directory: DirectoryConfig | None = None,
        files_dir: Path | None = None,
        **limits: Unpack[LimitOverrides],
    ) -> RunningServer: ...


@pytest.fixture
def server_factory(certs_dir: Path, db_url: str) -> Iterator[ServerFactory]:
    """Start in-process servers on 127.0.0.1:0 with the cheap argon2 profile; stop them after."""
    from securechat.config import HashParams, Limits, ServerConfig, ThrottlePolicy
    from securechat.server.runner import build_server
    from securechat.store.database import open_database
    from securechat.tls import server_context

    started: list[tuple[RunningServer, Database]] = []

    def start(
        port: int = 0,
        throttle: ThrottlePolicy | None = None,
        web_port: int | None = None,
        trusted_proxies: tuple[str, ...] = (),
        directory: DirectoryConfig | None = None,
        files_dir: Path | None = None,
        **limits: Unpack[LimitOverrides],
    ) -> RunningServer:
        if web_port is not None:  # the server's side of the opening waits as long as WebPeer's
            limits.setdefault("handshake_timeout", WEB_OPENING_TIMEOUT)
            limits.setdefault("auth_timeout", WEB_OPENING_TIMEOUT)
        config = ServerConfig(
            host="127.0.0.1",
            port=port,
            web_port=web_port,
            certs_dir=certs_dir,
            db_url=db_url,
            limits=Limits(**limits),
            hash_params=HashParams.for_tests(),
            throttle=throttle or ThrottlePolicy(),
            trusted_proxies=tuple(ipaddress.ip_network(proxy) for proxy in trusted_proxies),
            directory=directory,
            files_dir=files_dir,
        )
        database = open_database(db_url)
        tls = server_context(certs_dir / "server.pem", certs_dir / "server.key")
        server = build_server(config, tls=tls, database=database)
        server.start()
        running = RunningServer(
            server, server.address, certs_dir / "ca.pem", db_url, web_address=server.web_address
        )
        started.append((running, database))
        return running

    yield start
    for running, database in started:
        for peer in running.peers:
            peer.close()
        running.server.shutdown()
        database.dispose()


@pytest.fixture
def running_server(server_factory: ServerFactory) -> RunningServer:
    return server_factory()


class NewClient(Protocol):
    """The ``new_client`` fixture: a logged-in :class:`Client` of ``running_server``, closed
    after the test: ``new_client("alice", port=..., reconnect=True, backoff=...)``."""

    def __call__(
        self,
        user: str,
        *,
        port: int | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
    ) -> Client: ...


@pytest.fixture
def new_client(running_server: RunningServer) -> Iterator[NewClient]:
    from securechat.client import Client

    clients: list[Client] = []

    def make(
        user: str,
        *,
        port: int | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
    ) -> Client:
        client = Client(
            "localhost",
            port or running_server.address[1],
            ca_file=running_server.ca_file,
            user=user,
            password=PASSWORD,
            timeout=TIMEOUT,
            reconnect=reconnect,
            backoff=backoff,
        )
        clients.append(client)
        return client.connect()

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def serve(certs_dir: Path, db_url: str) -> Iterator[list[ServeProcess]]:
    """The ``securechat serve`` subprocesses a test appends here; all stopped after it."""
    started: list[ServeProcess] = []
    yield started
    for process in started:
        process.stop()


# --- browser tests ----------------------------------------------------------------------

#: Set by .ci/run: tests that need a system package (chromium, postgresql) must not skip.
REQUIRE_SYSTEM_TESTS = os.environ.get("SECURECHAT_REQUIRE_SYSTEM_TESTS") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a module whose system package is missing, with one loud line; fail in CI."""
    if REQUIRE_SYSTEM_TESTS:
        pytest.fail(f"{reason} (required: SECURECHAT_REQUIRE_SYSTEM_TESTS=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


CHROMIUM = Path("/usr/bin/chromium")
INSTALL_BROWSER = "apt-get install chromium libnss3-tools"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (one loud line), or None when they can."""
    import shutil

    missing = [
        name
        for name, present in (
            ("chromium", CHROMIUM.is_file()),
            ("certutil", shutil.which("certutil") is not None),
        )
        if not present
    ]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if not missing:
        return None
    return (
        f"BROWSER TESTS SKIPPED: {', '.join(missing)} not found; "
        f"install with `{INSTALL_BROWSER}` (Debian/Ubuntu)"
    )


# --- the directory (tests/slapd.py) ------------------------------------------------------


@pytest.fixture(scope="session")
def directory_ca() -> CertificateAuthority:
    """The CA of the tests' directory servers (made once for the run)."""
    from securechat.certs import CertificateAuthority

    return CertificateAuthority.create("test directory CA")


@pytest.fixture
def slapd(tmp_path: Path, directory_ca: CertificateAuthority) -> Iterator[Slapd]:
    """A throwaway OpenLDAP of this test's own, with tests/slapd.py's people and groups."""
    from tests.slapd import Slapd, missing

    reason = missing()
    if reason is not None:
        skip_or_fail(reason)
    server = Slapd(tmp_path / "slapd", directory_ca)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- the terminal client in a pseudo-terminal ----------------------------------------------


class StartTerminal(Protocol):
    """The ``terminal`` fixture: ``terminal(server, "alice")`` is alice's ``securechat connect``;
    ``hosts="a:1,b:2"`` connects to that list instead of the server's address, and
    ``typed_password=True`` types the password at the hidden prompt instead of passing it in
    the environment; ``at_password_prompt=True`` returns at once and leaves typing it (and
    waiting for the prompt) to the test."""

    def __call__(
        self, server: RunningServer, user: str, *, hosts: str | None = None,
        typed_password: bool = False, at_password_prompt: bool = False,
    ) -> Terminal: ...  # fmt: skip


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[StartTerminal]:
    """Start ``securechat connect`` for a user in a pty, once its prompt shows; killed after."""
    import pexpect

    from tests.pty_terminal import Terminal

    started: list[pexpect.spawn[str]] = []

    def start(
        server: RunningServer, user: str, *, hosts: str | None = None,
        typed_password: bool = False, at_password_prompt: bool = False,
    ) -> Terminal:  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        env.update(
            SECURECHAT_CONFIG_DIR=str(tmp_path / f"config-{user}"),
            TERM="xterm",
            NO_COLOR="1",
            PROMPT_TOOLKIT_NO_CPR="1",
        )
        if not (typed_password or at_password_prompt):
            env["SECURECHAT_PASSWORD"] = PASSWORD
        where = [hosts] if hosts else ["localhost", "--port", str(server.address[1])]
        argv = ["-m", "securechat", "connect", *where, "--user", user, "--ca", str(server.ca_file)]
        child = pexpect.spawn(
            sys.executable, argv, env=env, encoding="utf-8", dimensions=(30, 120), cwd=tmp_path
        )
        started.append(child)
        term = Terminal(child)
        if at_password_prompt:  # the test types the password(s)
            return term
        if typed_password:
            term.expect(rf"Password for {user} on \S+: ")
            term.line(PASSWORD)
        term.expect(rf"\[general\] {user}>")
        return term

    yield start
    for child in started:
        child.terminate(force=True)
        child.close()
