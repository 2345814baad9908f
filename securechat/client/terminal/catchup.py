"""What the chat screen remembers per conversation: your own recent messages and read markers.

A conversation is named as the server names it in ``unread``: ``r:<room>`` or ``u:<user>``.
Own message ids come from acks, from your messages on other devices, and from every page of
history shown, so ``/edit`` and ``/delete`` find your last messages after a reconnect or a
fresh login too. Read markers come from the server (``unread``, ``read`` replies and the
``read`` pushed when another of your sessions reads): a marker only moves forward, so the
screen asks the server to move it only when something newer was shown. Both threads of the
screen use this object; ``_lock`` guards everything in it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

from securechat.client.api import Client
from securechat.errors import ConnectionLost, RequestError
from securechat.protocol.messages import Message, RoomEvent

__all__ = ["OWN_KEPT", "ReadMarks", "ReadState", "key_of", "key_of_message"]

OWN_KEPT = 50  # own message ids kept per conversation: /edit N and /delete N reach this far


def key_of(room: str | None, peer: str | None) -> str:
    """The server's key for a room or a direct conversation (see ``unread``)."""
    return f"r:{room}" if room is not None else f"u:{peer}"


def key_of_message(message: Message, me: str) -> str:
    if message.room is not None:
        return key_of(message.room, None)
    return key_of(None, message.to if message.sender == me else message.sender)


class ReadState:
    def __init__(self, me: str) -> None:
        self.me = me
        self._lock = threading.Lock()
        self._own: dict[str, list[int]] = {}  # key -> own message ids, ascending
        self._markers: dict[str, int] = {}  # key -> last read id, as the server has it

    def note(self, messages: Iterable[Message | RoomEvent]) -> None:
        """Remember which of ``messages`` are ours (a tombstone is forgotten)."""
        with self._lock:
            for message in messages:
                if not isinstance(message, Message) or message.sender != self.me:
                    continue
                ids = self._own.setdefault(key_of_message(message, self.me), [])
                if message.deleted:
                    _discard(ids, message.id)
                elif message.id not in ids:
                    bisect.insort(ids, message.id)
                    del ids[:-OWN_KEPT]

    def forget(self, message_id: int) -> None:
        """``message_id`` was deleted: it is no longer one of ours to edit."""
        with self._lock:
            for ids in self._own.values():
                _discard(ids, message_id)

    def own(self, key: str, nth: int) -> int | None:
        """The id of our ``nth`` last message (1: the last) in conversation ``key``."""
        with self._lock:
            ids = self._own.get(key, [])
            return ids[-nth] if 1 <= nth <= len(ids) else None

    def own_count(self, key: str) -> int:
        with self._lock:
            return len(self._own.get(key, []))

    def marker(self, key: str) -> int:
        with self._lock:
            return self._markers.get(key, 0)

    def set_marker(self, key: str, message_id: int) -> bool:
        """Record a marker the server reported; False if it is not newer than the known one."""
        with self._lock:
            if message_id <= self._markers.get(key, 0):
                return False
            self._markers[key] = message_id
            return True


class ReadMarks:
    """Tells the server what the screen has shown, from a thread of its own.

    ``mark`` never blocks (the event thread calls it for every line it prints); marks for
    one conversation coalesce into the newest. While the connection is down they wait and
    are sent once it is back; a refused one (a room we were just removed from) is dropped.
    """

    RETRY = 1.0  # seconds between tries while the connection is down

    def __init__(self, client: Client, state: ReadState) -> None:
        self._client = client
        self._state = state
        self._lock = threading.Lock()  # guards _due and _closed
        self._due: dict[str, tuple[str | None, str | None, int]] = {}  # key -> (room, peer, id)
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-marks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def mark(self, room: str | None, peer: str | None, message_id: int) -> None:
        if self._queue(room, peer, message_id):
            self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def _queue(self, room: str | None, peer: str | None, message_id: int) -> bool:
        key = key_of(room, peer)
        if message_id <= self._state.marker(key):
            return False
        with self._lock:
            _, _, due = self._due.get(key, (room, peer, 0))
            self._due[key] = (room, peer, max(due, message_id))
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                retrying = bool(self._due)
            self._wake.wait(self.RETRY if retrying else None)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                due, self._due = self._due, {}
            for key, (room, peer, message_id) in due.items():
                if not self._send(key, room, peer, message_id):
                    self._queue(room, peer, message_id)  # again after the reconnect

    def _send(self, key: str, room: str | None, peer: str | None, message_id: int) -> bool:
        """Move the server's marker; False if the connection is down (try again later)."""
        if message_id <= self._state.marker(key):
            return True
        try:
            marker = self._client.mark_read(message_id, room=room, peer=peer)
        except ConnectionLost:
            return False
        except RequestError:
            return True  # no longer ours to read (kicked, the room deleted): nothing to mark
        self._state.set_marker(key, marker.id)
        return True


def _discard(ids: list[int], message_id: int) -> None:
    index = bisect.bisect_left(ids, message_id)
    if index < len(ids) and ids[index] == message_id:
        del ids[index]
