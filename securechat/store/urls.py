"""Database URLs as the configuration file needs them: SQLAlchemy's parser stays in the store.

The CLI reads `db` and `db_password_file` from a file; what a URL holds (its backend, a
relative SQLite path, a password) is SQLAlchemy's to parse.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class BadDatabaseUrl(ValueError):
    """A URL that cannot take what was asked of it; the message says why."""


def without_password(url: str) -> str:
    """``url`` with no password at all (not masked: removed)."""
    # URL.set() takes None as "unchanged"; URL is a named tuple.
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def sqlite_beside(url: str, folder: Path) -> str:
    """A relative SQLite path taken from ``folder``; any other URL as it is (a malformed
    one too: opening it says what is wrong)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    absolute = folder.absolute() / database
    return parsed.set(database=str(absolute)).render_as_string(hide_password=False)


def with_password(url: str, password: str) -> str:
    """A PostgreSQL ``url`` that has no password, with ``password``.

    Raises:
        BadDatabaseUrl: malformed, not PostgreSQL, or it has a password already.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadDatabaseUrl(f"the database URL is malformed: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend != "postgresql":
        raise BadDatabaseUrl(f"it is for a PostgreSQL database, and the database is {backend}")
    if parsed.password is not None:
        raise BadDatabaseUrl("the database URL has a password already: keep only the file")
    return parsed.set(password=password).render_as_string(hide_password=False)
