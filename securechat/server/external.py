"""What the bus brings, applied: rows and news that another writer committed.

``securechat room ...`` (another process) and, on PostgreSQL, the other nodes of a
service write journal rows and news this server did not make. The bus (``bus.py``) reads
them in its thread and hands them here: each row or piece of news becomes the hub's change
and the frames to send (:class:`Effects`, as for our own commits), delivered after
everything committed earlier (:class:`Delivery`). An event row reads its room as the
store has it now, so the hub mirrors the room's state, not a replay of each step.
"""

from __future__ import annotations

from securechat.server.delivery import Delivery
from securechat.server.effects import Effects
from securechat.server.hub import Hub
from securechat.store.chat import ChatStore
from securechat.store.message_rows import StoredMessage
from securechat.store.news import News, Resync, RoomTouched
from securechat.store.rooms import RoomState

__all__ = ["ExternalChanges"]


class ExternalChanges:
    """The bus's subscriber: :meth:`apply_rows` and :meth:`apply_news`, in the bus's thread."""

    def __init__(self, store: ChatStore, hub: Hub, effects: Effects, delivery: Delivery) -> None:
        self._store = store
        self._hub = hub
        self._effects = effects
        self._delivery = delivery

    def apply_rows(self, rows: list[StoredMessage]) -> None:
        """Apply rows written elsewhere to the hub and deliver them."""
        self._delivery.deliver(
            self._effects.external_rows((row, self._state_for(row)) for row in rows)
        )

    def apply_news(self, news: News) -> None:
        """Apply another node's news that has no journal row."""
        deliver = self._delivery.deliver
        if isinstance(news, RoomTouched):
            deliver(self._effects.room_reloaded(news.room, self._store.room_state(news.room)))
        elif isinstance(news, Resync):
            states = self._store.room_states()
            for room in {*states, *self._hub.room_names()}:
                deliver(self._effects.room_reloaded(room, states.get(room)))
        else:
            deliver(self._effects.of(news, None))

    def _state_for(self, row: StoredMessage) -> RoomState | None:
        """The room of an event row as the store has it now (None: not an event, or gone)."""
        if row.kind != "event" or row.room is None:
            return None
        if row.action == "delete":
            self._store.forget_room(row.room)
            return None
        return self._store.room_state(row.room)
