"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, pg_ctl on a
free loopback port, stopped and removed at the end.

It uses Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``). PostgreSQL
refuses to run as root, so when the tests run as root (CI does) the cluster is owned by
the unprivileged ``nobody`` user, in a folder of its own under /tmp (the tests' own
temporary folders are private to root). The cluster trusts connections from 127.0.0.1
only, and skips fsync: it holds test data that is thrown away.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INSTALL_HINT = "apt-get install postgresql (Debian's package; the tests start their own cluster)"
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

    def __init__(self, bindir: Path) -> None:
        self._bin = bindir
        self._owner = "nobody" if os.geteuid() == 0 else None
        self._root = Path(tempfile.mkdtemp(prefix="securechat-pg-"))
        self._data = self._root / "data"
        self.port = _free_port()
        self._databases = 0
        self._started = False
        self._admin_connection: Any = None

    @property
    def superuser(self) -> str:
        return self._owner or pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self._owner is not None:
            entry = pwd.getpwnam(self._owner)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self._data), "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "-U", self.superuser)  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self._root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l",
                  str(self._root / "log"), "-w", "-t", str(int(START_TIMEOUT)), "start")  # fmt: skip
        self._started = True

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
        if self._started:
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


#: What a test may change in its database without costing the next test a new copy: rows
#: and sequences. Anything else (a table, a column, an index, an extension, the revision)
#: shows in this fingerprint, and the database is made again from the template.
_FINGERPRINT = """
    SELECT 'relation', c.relname || ':' || c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
    UNION ALL SELECT 'column', table_name || '.' || column_name || ':' || data_type
        FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT 'extension', extname FROM pg_extension
    UNION ALL SELECT 'revision', version_num FROM alembic_version
    ORDER BY 1, 2
"""


class DatabasePool:
    """Test databases at head, reused: a test leases one, and the lease empties it first.

    ``CREATE DATABASE ... TEMPLATE`` costs 0.7-1.7 s on a busy 2-core machine (it copies
    the catalogs, FILE_COPY also checkpoints); emptying the tables costs ~0.05 s. A
    database whose schema a test changed (see ``_FINGERPRINT``) is made again from the
    template; connections a test left open to it are ended.
    """

    def __init__(self, cluster: PostgresCluster, migrated: str) -> None:
        """Pool copies of the database ``migrated``, which becomes their template."""
        self._cluster = cluster
        self._fingerprint = cluster.query(migrated, _FINGERPRINT)
        self._template = cluster.make_template(cluster.url(migrated))
        self._idle: list[str] = []
        self._made = 0

    @contextlib.contextmanager
    def lease(self, rows: dict[str, list[dict[str, Any]]] | None = None) -> Iterator[str]:
        """A database at head holding only ``rows`` (table -> rows, inserted in order)."""
        name = self._idle.pop() if self._idle else self._make()
        try:
            self._empty(name, rows or {})
        except BaseException:
            self._cluster.drop_database(self._cluster.url(name))
            raise
        try:
            yield self._cluster.url(name)
        finally:
            self._idle.append(name)

    def _make(self) -> str:
        self._made += 1
        name = f"pooled_{self._made}"
        self._cluster.create_database(template=self._template, name=name)
        return name

    def _empty(self, name: str, rows: dict[str, list[dict[str, Any]]]) -> None:
        import psycopg
        from psycopg import sql

        self._cluster.terminate_connections(name)
        if self._cluster.query(name, _FINGERPRINT) != self._fingerprint:
            self._cluster.drop_database(self._cluster.url(name))
            self._cluster.create_database(template=self._template, name=name)
        with psycopg.connect(self._cluster.dsn(name)) as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            ]
            connection.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(map(sql.Identifier, tables))
                )
            )
            for table, table_rows in rows.items():
                for row in table_rows:
                    connection.execute(
                        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                            sql.Identifier(table),
                            sql.SQL(", ").join(map(sql.Identifier, row)),
                            sql.SQL(", ").join(sql.Placeholder() * len(row)),
                        ),
                        list(row.values()),
                    )
                connection.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({table}, 'id'), max(id))"
                        " FROM {ident} HAVING max(id) IS NOT NULL"
                    ).format(table=sql.Literal(table), ident=sql.Identifier(table))
                )


def missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (one loud line), or None when they can."""
    if find_bindir() is None:
        return f"POSTGRESQL TESTS SKIPPED: no PostgreSQL server; install it with `{INSTALL_HINT}`"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "POSTGRESQL TESTS SKIPPED: psycopg not found; pip install -e '.[test]'"
    return None
