"""``securechat doctor``'s database checks: reachable, at a known revision, users, file modes,
and on PostgreSQL who may connect.

They only read: the database is never migrated.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator

from securechat.doctor.findings import Check, Finding, Installation, Status
from securechat.errors import StoreError
from securechat.store.backup import known_revisions
from securechat.store.database import Database, safe_url
from securechat.store.lock import sqlite_file
from securechat.store.migrate import current_revision, head_revision
from securechat.store.users import UserStore


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


def _database_access(inst: Installation) -> Iterator[Finding]:
    """On PostgreSQL, whether every role may connect (``createdb`` grants PUBLIC CONNECT).

    A role that may connect can LISTEN to the nodes' notifications and send its own, and
    take advisory locks, without any table privilege: securechat trusts none of that
    (``server/bus.py``), but such roles have no business in the chat's database.
    """
    try:
        if sqlite_file(inst.db_url) is not None or not inst.db_url.startswith("postgresql"):
            return
        database = Database(inst.db_url)
    except StoreError:
        return  # _database has said why
    try:
        name, public = database.public_may_connect()
    except StoreError:
        return  # _database has said why
    finally:
        database.dispose()
    if public:
        yield Finding(
            Status.WARN,
            "database access",
            f"every PostgreSQL role may connect to database {name!r} (PUBLIC has CONNECT)",
            f'run `REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC;` as its owner, and allow '
            "only the securechat role in pg_hba.conf (docs/deploy.md, section 12)",
        )
    else:
        yield Finding(
            Status.OK, "database access", f"only roles granted CONNECT may connect to {name!r}"
        )


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
    counts = UserStore(database).counts()
    users, admins = counts.users, counts.enabled_admins
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


CHECKS: tuple[Check, ...] = (_database, _database_file, _database_access)
