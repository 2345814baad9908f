"""The nodes sharing a PostgreSQL database and who is online on each (#17).

Each node writes, every heartbeat, its row in ``nodes`` (``seen_at`` = the database's
``now()``) and the set of users with a session on it in ``node_sessions`` (only what
changed since its last beat). Every node reads the users online on the *other* nodes
seen within the ttl: a node killed with SIGKILL stops beating, and its users go offline
everywhere after at most ttl plus a heartbeat. A node silent for three ttls has its row
deleted by the next beat of any other, and its sessions with it (ON DELETE CASCADE); one
that comes back after that writes its row and its users again.
"""

from __future__ import annotations

from collections.abc import Set

from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select, text, update

from securechat.store.database import Database
from securechat.store.models import Node, NodeSession, User

_SINCE = text("now() - make_interval(secs => :ttl)")


class NodeTable:
    """One node's view of ``nodes`` and ``node_sessions``. Used by one thread."""

    def __init__(self, database: Database, node: str, *, ttl: float) -> None:
        self._db = database
        self._node = node
        self._ttl = ttl
        self._written: set[int] | None = None  # the user ids in the table, once beaten

    def beat(self, online: Set[int]) -> set[str]:
        """Record this node alive with users ``online``; return those online elsewhere.

        Raises:
            StoreError: the database cannot be reached (the next beat tries again).
        """
        with self._db.transaction() as conn:
            written = self._written
            if written is not None:
                seen = update(Node).where(Node.name == self._node).values(seen_at=func.now())
                if conn.execute(seen).rowcount == 0:  # taken for dead by the others
                    written = None
            if written is None:
                conn.execute(insert(Node).values(name=self._node, seen_at=func.now()))
                written = set()
            self._write_sessions(conn, written, online)
            conn.execute(delete(Node).where(Node.seen_at < _SINCE.bindparams(ttl=self._ttl * 3)))
            elsewhere = conn.execute(
                select(User.name)
                .distinct()
                .join(NodeSession, NodeSession.user_id == User.id)
                .join(Node, Node.name == NodeSession.node)
                .where(Node.name != self._node, Node.seen_at >= _SINCE.bindparams(ttl=self._ttl))
            ).scalars()
            result = set(elsewhere)
        self._written = set(online)
        return result

    def _write_sessions(self, conn: Connection, written: Set[int], online: Set[int]) -> None:
        if gone := written - online:
            conn.execute(
                delete(NodeSession).where(
                    NodeSession.node == self._node,
                    NodeSession.user_id.in_(bindparam("ids", expanding=True)),
                ),
                {"ids": sorted(gone)},
            )
        if came := online - written:
            # A user deleted meanwhile would break the foreign key: only existing ids.
            conn.execute(
                insert(NodeSession).from_select(
                    ["node", "user_id"],
                    select(literal(self._node), User.id).where(User.id.in_(sorted(came))),
                )
            )

    def leave(self) -> None:
        """This node stops: its users go offline on the others at their next beat.

        Raises:
            StoreError: the database cannot be reached (the row then ages out).
        """
        with self._db.transaction() as conn:
            conn.execute(delete(Node).where(Node.name == self._node))
        self._written = None
