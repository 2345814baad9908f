"""Mentions (the rule: protocol/mentions.py), recorded for each user named who may read it.

The group commit records them for new messages in the batch's transaction (only bodies
holding an ``@`` cost anything), an edit counts them again, and a deletion drops them.
Unread counts read them (``reads.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, insert, select

from securechat.protocol.mentions import mentioned_names
from securechat.store.models import Membership, Mention, User

Mentioned = tuple[int, str, int | None, int | None, int | None, Sequence[str]]


def add_mentions(conn: Connection, messages: Iterable[Mentioned]) -> None:
    """Record who each new message mentions: (id, body, room id, recipient id, sender id,
    the users a granted ``@room``/``@here`` reaches besides the names in the body).

    A name counts if it is a user who may read the message: a member of its room, or a
    party to its direct conversation. Cheap when no body holds an ``@``.
    """
    wanted = [(m, names | set(m[5])) for m in messages if (names := mentioned_names(m[1])) or m[5]]
    if not wanted:
        return
    every = sorted({name for _, names in wanted for name in names})
    ids = {
        name: user_id
        for name, user_id in conn.execute(select(User.name, User.id).where(User.name.in_(every)))
    }
    rows: list[dict[str, int]] = []
    for (message_id, _, room_id, recipient_id, sender_id, _), names in wanted:
        users = {ids[name] for name in names if name in ids}
        if room_id is not None and users:
            users &= set(
                conn.execute(
                    select(Membership.user_id).where(
                        Membership.room_id == room_id,
                        Membership.user_id.in_(sorted(users)),
                        Membership.left_at_id.is_(None),
                    )
                ).scalars()
            )
        elif room_id is None:
            users &= {party for party in (recipient_id, sender_id) if party is not None}
        rows += [{"user_id": user, "message_id": message_id} for user in sorted(users)]
    if rows:
        conn.execute(insert(Mention), rows)


def drop_mentions(conn: Connection, message_id: int) -> None:
    conn.execute(delete(Mention).where(Mention.message_id == message_id))
