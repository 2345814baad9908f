"""``securechat room``: run rooms from the server's console, as an admin ("console").

Each command opens the database (bringing it to the newest schema) and runs the very
operation the server runs for a ``moderate`` request (``store/moderation.py``), with the same
permission table, journal row and audit entry, in a transaction of its own. A running
server picks the row up from the journal within ``journal_poll_interval`` (0.25 s) and
applies it to its live sessions (``server/bus.py``). Refusals are ``SecureChatError``s,
which ``securechat.cli.main`` prints as one line. The store is imported when a command runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from securechat.cli.app import command_group
from securechat.cli.options import DB_DEFAULT, ConfigPath, DbUrl
from securechat.errors import UserError
from securechat.protocol.names import normalize_name

if TYPE_CHECKING:
    from securechat.store.chat import ChatStore
    from securechat.store.journal import Tx

T = TypeVar("T")

room_app = command_group(
    "room",
    "Run rooms as the server's admin: create, delete, invite, kick, ban, mute, op, "
    "topic, privacy, ownership, and the audit log. Live sessions see each change at once.",
)

RoomName = Annotated[str, typer.Argument(metavar="ROOM", help="The room.", show_default=False)]
UserName = Annotated[str, typer.Argument(metavar="USER", help="The user.", show_default=False)]


def _name(value: str, what: str) -> str:
    name = normalize_name(value)
    if name is None:
        raise UserError(f"bad {what} name {value!r}: 2-32 characters from a-z 0-9 . _ -")
    return name


@contextmanager
def _store(db_url: str) -> Iterator[ChatStore]:
    from securechat.store.chat import ChatStore
    from securechat.store.database import open_database

    database = open_database(db_url)
    try:
        yield ChatStore(database)  # origin None: the console's rows
    finally:
        database.dispose()


def _run(db_url: str, operation: Callable[[Tx], T]) -> T:
    with _store(db_url) as store:
        return store.perform(operation)


def _moderate(db_url: str, room: str, action: str, *, user: str | None = None,
              topic: str | None = None) -> None:  # fmt: skip
    from securechat.store import moderation
    from securechat.store.journal import CONSOLE

    room = _name(room, "room")
    target = None if user is None else _name(user, "user")
    outcome = _run(db_url, functools.partial(
        moderation.moderate, actor=CONSOLE, room=room, action=action, user=target, topic=topic,
    ))  # fmt: skip
    about = f"#{room}" if target is None else f"{target} in #{room}"
    if not outcome.changed:
        typer.echo(f"{action}: nothing to change for {about}")
    else:
        typer.echo(f"{action}: done for {about}")


@room_app.command("list")
def list_rooms(config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Every room: privacy, owner, members, topic."""
    with _store(db) as store:
        states = store.room_states()
    for name in sorted(states):
        meta, members = states[name].meta, states[name].members
        kind = "private" if meta.private else "public"
        line = f"#{name}  {kind}  owner={meta.owner or '-'}  members={len(members)}"
        if meta.topic:
            line += f"  topic={meta.topic!r}"
        typer.echo(line)


@room_app.command()
def create(
    room: RoomName,
    private: Annotated[bool, typer.Option("--private", help="Invitation only, unlisted.")] = False,
    topic: Annotated[str | None, typer.Option("--topic", help="The room's topic.")] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who owns it (default: nobody).")
    ] = None,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Create a room, public or private, owned by --owner (who joins it) or by nobody."""
    from securechat.protocol.messages import MAX_TOPIC

    name = _name(room, "room")
    if topic is not None and len(topic) > MAX_TOPIC:
        raise UserError(f"the topic is longer than {MAX_TOPIC} characters")
    from securechat.store import rooms
    from securechat.store.journal import CONSOLE

    _run(db, functools.partial(
        rooms.create, actor=CONSOLE, room=name, private=private, topic=topic,
        owner=None if owner is None else _name(owner, "user"),
    ))  # fmt: skip
    typer.echo(f"created {'private' if private else 'public'} room #{name}")


@room_app.command()
def delete(room: RoomName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Delete a room with its messages, members, invitations and bans."""
    _moderate(db, room, "delete")


def _user_command(action: str, doc: str) -> None:
    def command(
        room: RoomName, user: UserName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT
    ) -> None:
        _moderate(db, room, action, user=user)

    command.__doc__ = doc
    room_app.command(action)(command)


for _action, _doc in (
    ("invite", "Invite USER to ROOM (the one way into a private room)."),
    ("kick", "Remove USER from ROOM now."),
    ("ban", "Remove USER from ROOM and keep them out until unbanned."),
    ("unban", "Let a banned USER join ROOM again."),
    ("mute", "USER may read ROOM but not send to it."),
    ("unmute", "Let a muted USER send to ROOM again."),
    ("op", "Make USER a moderator of ROOM."),
    ("deop", "Make a moderator of ROOM a plain member again."),
    ("transfer", "Make USER (a member) the owner of ROOM; the old owner stays a moderator."),
):
    _user_command(_action, _doc)


@room_app.command()
def topic(
    room: RoomName,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The topic; '' clears it.")],
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Set (or with '' clear) the topic of ROOM."""
    from securechat.protocol.messages import MAX_TOPIC

    if len(text) > MAX_TOPIC:
        raise UserError(f"the topic is longer than {MAX_TOPIC} characters")
    _moderate(db, room, "topic", topic=text)


@room_app.command()
def private(room: RoomName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Make ROOM invitation-only and unlisted to non-members."""
    _moderate(db, room, "private")


@room_app.command()
def public(room: RoomName, config: ConfigPath = None, db: DbUrl = DB_DEFAULT) -> None:
    """Make ROOM open and listed again."""
    _moderate(db, room, "public")


@room_app.command()
def audit(
    room: Annotated[
        str | None, typer.Argument(metavar="[ROOM]", help="Only this room.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N entries.")] = 50,
    config: ConfigPath = None,
    db: DbUrl = DB_DEFAULT,
) -> None:
    """Print the audit log (oldest first): when, who, what, where, whom."""
    with _store(db) as store:
        entries = store.audit_log(None if room is None else _name(room, "room"), limit=limit)
    for entry in entries:
        when = entry.at.strftime("%Y-%m-%d %H:%M:%S")
        line = f"{when}  {entry.actor}  {entry.action}  #{entry.room or '-'}"
        if entry.target:
            line += f"  {entry.target}"
        if entry.message_id is not None and entry.action == "delete_message":
            line += f"  message {entry.message_id}"
        if entry.detail:
            line += f"  {entry.detail!r}"
        typer.echo(line)
