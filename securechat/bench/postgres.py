"""A throwaway PostgreSQL cluster: initdb in a temporary folder, pg_ctl on a free loopback
port, stopped and removed at the end. The tests start one (``tests/postgres.py``), and so
does ``securechat bench nodes``.

It uses Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``). PostgreSQL
refuses to run as root, so when run as root (CI does) the cluster is owned by the
unprivileged ``nobody`` user, in a folder of its own under /tmp. The cluster trusts
connections from 127.0.0.1 only. Unless made ``durable`` it skips fsync: the tests' data is
thrown away, and a bench that compares with SQLite's ``synchronous=FULL`` must not.

A watchdog process (``pg_watchdog.py``) stops the cluster and removes its folder once the
process that started it ends, even by SIGTERM or SIGKILL, so a killed test run or bench
leaves no PostgreSQL behind; :meth:`PostgresCluster.stop` lets it do so at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START_TIMEOUT = 30.0


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries, or None when the package is missing."""
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    versions = sorted(
        (p for p in root.iterdir() if (p / "bin" / "pg_ctl").is_file()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return versions[-1] / "bin" if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresCluster:
    """One running cluster; :meth:`create_database` hands out fresh, empty databases."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self._bin = bindir
        self._durable = durable
        self._owner = "nobody" if os.geteuid() == 0 else None
        self._root = Path(tempfile.mkdtemp(prefix="securechat-pg-"))
        self._data = self._root / "data"
        self.port = _free_port()
        self._databases = 0
        self._started = False
        self._admin_connection: Any = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None  # the pipe's write end: open while we live

    @property
    def superuser(self) -> str:
        import pwd  # POSIX only, like the cluster; the CLI that loads this runs on Windows too

        return self._owner or pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self._owner is not None:
            import pwd

            entry = pwd.getpwnam(self._owner)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self._data), "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "-U", self.superuser)  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self._root} -c max_connections=200"
        )
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._watch()
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l",
                  str(self._root / "log"), "-w", "-t", str(int(START_TIMEOUT)), "start")  # fmt: skip
        self._started = True

    def _watch(self) -> None:
        """Start the watchdog, before the cluster, so no moment has a cluster unwatched."""
        read_end, self._lifeline = os.pipe()
        os.set_inheritable(read_end, True)
        argv = [sys.executable, "-m", "securechat.bench.pg_watchdog", str(read_end),
                str(self._bin / "pg_ctl"), str(self._data), str(self._root)]  # fmt: skip
        if self._owner is not None:
            argv.append(self._owner)
        try:
            self._watchdog = subprocess.Popen(
                argv, pass_fds=(read_end,), start_new_session=True,  # Ctrl-C is not for it
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            os.close(read_end)

    def create_database(self, *, template: str | None = None, name: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; returns its SQLAlchemy URL.

        Copying a template costs a file copy: no migration, no password hashing.
        """
        if name is None:
            self._databases += 1
            name = f"test_{self._databases}"
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        self._admin().execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database behind ``url``, ending any connection still open to it."""
        name = url.rsplit("/", 1)[1]
        self._admin().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def make_template(self, url: str) -> str:
        """Mark the database behind ``url`` as a template (nobody connects to it again)."""
        name = url.rsplit("/", 1)[1]
        self._admin().execute(
            f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false'
        )
        return name

    def _admin(self) -> Any:
        """One autocommit connection to the ``postgres`` database, kept for the session."""
        import psycopg

        if self._admin_connection is None or self._admin_connection.closed:
            self._admin_connection = psycopg.connect(self.dsn("postgres"), autocommit=True)
        return self._admin_connection

    def execute(self, database: str, sql: str) -> None:
        """Run ``sql`` as the superuser (e.g. ``pg_terminate_backend``)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as connection:
            connection.execute(sql)

    def query(self, database: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows ``sql`` selects in ``database``."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as connection:
            return list(connection.execute(sql))

    def rows(self, database: str, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` in ``database``, by id, as column -> value."""
        import psycopg
        from psycopg import sql
        from psycopg.rows import dict_row

        with psycopg.connect(self.dsn(database), row_factory=dict_row) as connection:
            query = sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
            return list(connection.execute(query))

    def terminate_connections(self, database: str) -> None:
        """End every connection to ``database`` (a test's server may have left some)."""
        self._admin().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={database}"

    def stop(self) -> None:
        if self._admin_connection is not None:
            self._admin_connection.close()
            self._admin_connection = None
        if self._lifeline is not None:  # the watchdog stops the cluster and removes it
            os.close(self._lifeline)
            self._lifeline = None
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # then do it here as well
                self._watchdog.wait(START_TIMEOUT)
            self._watchdog = None
        if self._started and (self._data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        self._started = False
        shutil.rmtree(self._root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [str(self._bin / program), *args],
            capture_output=True,
            text=True,
            user=self._owner,
            cwd=self._root,
            timeout=START_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            log = (self._root / "log").read_text() if (self._root / "log").exists() else ""
            raise RuntimeError(
                f"{program} failed after {time.monotonic() - started:.1f} s "
                f"({result.returncode}): {result.stderr.strip()} {log[-2000:]}"
            )
