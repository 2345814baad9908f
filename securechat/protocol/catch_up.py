"""Where a client's login stands in the journal: the last id seen, the ids seen, the catch-up.

Pure bookkeeping for :class:`~securechat.protocol.client.ClientSession`. A login on a later
connection is a resumption: the session asks for ``sync`` from the last message id it saw,
page after page. Message ids already seen are dropped, so a catch-up never shows a message
twice. The last id moves with the journal events received and ``synced``, never with an
``ack``: the server may ack a message (or an edit) before it delivers an earlier one,
which a sync from the ack's id would miss; the ack's id is marked seen instead.
"""

from __future__ import annotations

import collections

from securechat.protocol.messages import Journal, Sync, Synced

SEEN_IDS = 20_000  # message ids remembered for de-duplication

__all__ = ["SEEN_IDS", "CatchUp", "SeenIds"]


class SeenIds:
    """The last ``size`` message ids seen, to drop one that comes again (resend, catch-up)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: set[int] = set()
        self._order: collections.deque[int] = collections.deque()

    def add(self, message_id: int) -> bool:
        """Remember ``message_id``; False if it was seen before."""
        if message_id in self._ids:
            return False
        self._ids.add(message_id)
        self._order.append(message_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class CatchUp:
    """The journal's position for one login, and the catch-up ``sync`` in flight, if any."""

    def __init__(self, seen: int = SEEN_IDS) -> None:
        self.last_id = 0
        self._seen = SeenIds(seen)
        self._ref: str | None = None

    def receive(self, event: Journal) -> bool:
        """Note a message, an edit, a deletion or a room event; False if seen before."""
        self.last_id = max(self.last_id, event.id)
        return self._seen.add(event.id)

    def mark_seen(self, message_id: int) -> None:
        """An acknowledged id: dropped if it comes again, but the last id stays."""
        self._seen.add(message_id)

    def start(self, since: int, ref: str) -> Sync:
        """The ``sync`` that asks for what came after ``since``, under ``ref``."""
        self._ref = ref
        return Sync(since=since, ref=ref)

    def is_answered_by(self, synced: Synced) -> bool:
        return synced.ref == self._ref

    def synced(self, synced: Synced) -> int | None:
        """Take the catch-up's answer; the id to ask from next when there is more."""
        self.last_id = max(self.last_id, synced.last_id)
        self._ref = None
        return synced.last_id if synced.more else None

    def cancel(self) -> None:
        """The connection ended: the next login starts another catch-up."""
        self._ref = None
