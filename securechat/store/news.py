"""News for the other nodes that no journal row carries (#17): a room whose members
changed by a plain join or leave, and a read marker that moved.

Such a team operation NOTIFYs the journal channel (``messages.JOURNAL_CHANNEL``) in its
own transaction, so the news arrives at COMMIT like a journal row's wake-up. The payload
names things only (a room, a user, a message id) and is JSON, so it cannot be confused
with a journal wake-up, whose payload is just the writer's origin; a name is at most
``NAME_MAX`` characters, far below NOTIFY's 8,000 bytes. Each node then reads the room
from the table, or tells the reader's sessions where their marker is now.
"""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import Connection, bindparam, func, select

from securechat.store.messages import CONSOLE_ORIGIN, JOURNAL_CHANNEL
from securechat.store.reads import ReadMark
from securechat.store.rooms import Outcome


@dataclasses.dataclass(frozen=True, slots=True)
class RoomTouched:
    """``room``'s members or settings changed without a journal row: read it again."""

    room: str


@dataclasses.dataclass(frozen=True, slots=True)
class Resync:
    """News may have been missed (the listening connection was lost): read every room."""


News = RoomTouched | ReadMark | Resync

_NOTIFY = select(func.pg_notify(JOURNAL_CHANNEL, bindparam("payload")))


def news_of(result: object) -> News | None:
    """What other nodes must hear of a team operation's result that has no journal row."""
    if isinstance(result, Outcome) and result.changed and not result.entries:
        return RoomTouched(result.room)
    if isinstance(result, ReadMark):
        return result
    return None


def announce(conn: Connection, origin: str | None, news: News) -> None:
    """Have this transaction's COMMIT tell the other nodes ``news`` (PostgreSQL only)."""
    if conn.dialect.name != "postgresql":
        return
    fields: dict[str, object] = {"origin": origin or CONSOLE_ORIGIN}
    if isinstance(news, RoomTouched):
        fields["room"] = news.room
    elif isinstance(news, ReadMark):
        fields.update(read=news.user, id=news.id, in_room=news.room, peer=news.peer)
    conn.execute(_NOTIFY, {"payload": json.dumps(fields, separators=(",", ":"))})


def decode(payload: str) -> tuple[str, News | None]:
    """A notification's writer and its news (None: a journal wake-up, or unknown news)."""
    if not payload.startswith("{"):
        return payload, None
    try:
        fields = json.loads(payload)
        origin = str(fields["origin"])
        if "room" in fields:
            return origin, RoomTouched(str(fields["room"]))
        return origin, ReadMark(
            str(fields["read"]), int(fields["id"]), fields.get("in_room"), fields.get("peer")
        )
    except (ValueError, KeyError, TypeError):  # not ours: read the table, to be safe
        return "", None
