"""News for the other nodes that no journal row carries (#17): a room whose members
changed by a plain join or leave, and a read marker that moved.

Such a team operation writes a row of ``node_news`` in its own transaction, under the
commit-order lock (``commit_order.lock_commit_order``), so news ids commit in order like the
journal's, and the lock's NOTIFY wakes the other nodes at COMMIT. The notification carries
the writer's origin only: any role that may connect to the database can LISTEN and NOTIFY
(issue 23 saw a spoofed payload move two users' read markers to 999999, and a listener learn
who read whose messages), so nothing in a payload is trusted or private. A node reads the
news rows after the last it has seen (:func:`news_after`), and each marker from
``memberships`` or ``dm_reads``, as it is now. Only the newest ``NEWS_KEPT`` rows are kept:
a node reads them within ``bus_check_interval``, and after a lost listening connection it
reads every room again anyway (:class:`Resync`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, select
from sqlalchemy.orm import aliased

from securechat.store.models import DirectRead, Membership, NodeNews, Room, User
from securechat.store.reads import ReadMark
from securechat.store.rooms import Outcome

#: How many news rows the table keeps: far more than the nodes write in the seconds it
#: takes them to read the rows.
NEWS_KEPT = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class RoomTouched:
    """``room``'s members or settings changed without a journal row: read it again."""

    room: str


@dataclasses.dataclass(frozen=True, slots=True)
class Resync:
    """News may have been missed (the listening connection was lost): read every room."""


News = RoomTouched | ReadMark | Resync

_LAST_NEWS = select(func.max(NodeNews.id))
_READER = aliased(User)
_PEER = aliased(User)
#: Each news row with what it names as the tables have it now: the room's name, or the
#: reader's name and marker in the room or the direct conversation.
_NEWS = (
    select(
        NodeNews.id, Room.name, _READER.name, _PEER.name,
        Membership.last_read_id, DirectRead.last_read_id,
    )
    .outerjoin(Room, Room.id == NodeNews.room_id)
    .outerjoin(_READER, _READER.id == NodeNews.user_id)
    .outerjoin(_PEER, _PEER.id == NodeNews.peer_id)
    .outerjoin(Membership, and_(
        Membership.room_id == NodeNews.room_id, Membership.user_id == NodeNews.user_id,
    ))
    .outerjoin(DirectRead, and_(
        DirectRead.user_id == NodeNews.user_id, DirectRead.peer_id == NodeNews.peer_id,
    ))
)  # fmt: skip


def _nullable(row: Row[int, str, str, str, int, int]) -> tuple[Any, ...]:
    """A row of ``_NEWS``: the outer joins make any of its names and markers NULL."""
    return tuple(row)


def news_of(result: object) -> RoomTouched | ReadMark | None:
    """What other nodes must hear of a team operation's result that has no journal row."""
    if isinstance(result, Outcome) and result.changed and not result.entries:
        return RoomTouched(result.room)
    if isinstance(result, ReadMark):
        return result
    return None


def announce(conn: Connection, origin: str | None, news: RoomTouched | ReadMark) -> None:
    """Record ``news`` for the other nodes (PostgreSQL only), in this transaction, which
    holds the commit-order lock; forget all but the newest ``NEWS_KEPT`` rows."""
    if conn.dialect.name != "postgresql":
        return
    values: dict[str, object] = {"origin": origin}
    if news.room is not None:
        values["room_id"] = select(Room.id).where(Room.name == news.room).scalar_subquery()
    if isinstance(news, ReadMark):
        values["user_id"] = select(User.id).where(User.name == news.user).scalar_subquery()
        if news.peer is not None:
            values["peer_id"] = select(User.id).where(User.name == news.peer).scalar_subquery()
    added = conn.execute(insert(NodeNews).values(values).returning(NodeNews.id)).scalar_one()
    conn.execute(delete(NodeNews).where(NodeNews.id <= added - NEWS_KEPT))


def last_news_id(conn: Connection) -> int:
    """The newest news row's id (0: none): a node starting now reads after it."""
    return int(conn.execute(_LAST_NEWS).scalar_one() or 0)


def news_after(
    conn: Connection, after: int, *, exclude_origin: str, limit: int
) -> tuple[list[News], int, bool]:
    """News after id ``after`` from writers other than ``exclude_origin``, in id order, read
    as ``ChatStore.journal_after`` reads rows: at most ``limit`` of them, the id to read
    after next time, and whether more may follow at once."""
    newest = last_news_id(conn)
    if newest <= after:
        return [], after, False
    rows = conn.execute(
        _NEWS.where(
            NodeNews.id > after, NodeNews.id <= newest,
            NodeNews.origin.is_distinct_from(exclude_origin),
        )
        .order_by(NodeNews.id)
        .limit(limit)
    ).all()  # fmt: skip
    found: list[News] = []
    for _id, room, reader, peer, room_marker, peer_marker in map(_nullable, rows):
        if reader is None and room is not None:
            found.append(RoomTouched(room))
        elif reader is not None and room is not None and room_marker is not None:
            found.append(ReadMark(reader, int(room_marker), room=room))
        elif reader is not None and peer is not None and peer_marker is not None:
            found.append(ReadMark(reader, int(peer_marker), peer=peer))
    if len(rows) == limit:
        return found, int(rows[-1][0]), True
    return found, newest, False
