"""The tests' PostgreSQL: the session's throwaway cluster (``securechat.bench.postgres``, which
the bench shares: initdb in a temporary folder, pg_ctl on a free loopback port, owned by
``nobody`` under root, fsync off) and a pool of databases at head for the tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from securechat.bench.postgres import PostgresCluster, find_bindir

__all__ = ["INSTALL_HINT", "DatabasePool", "PostgresCluster", "find_bindir", "missing"]

INSTALL_HINT = "apt-get install postgresql (Debian's package; the tests start their own cluster)"


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
