"""What a committed team operation, or a journal row another writer committed, does on a
live server: the hub's change, and the frames each session must get.

Theory of operation: the store decides and writes (``store/rooms.py`` and friends); the
hub mirrors it. :class:`Effects` runs in the committer's thread right after an
operation's COMMIT (and in the journal tail's thread for rows written elsewhere), so the
hub changes in commit order and before the operation's caller hears back. It returns the
writes for :meth:`Delivery.deliver`, which sends them after everything committed earlier.

Who hears what:

- a room event goes to every session of the room before and after the change (a kicked
  member hears of the kick), and to the invitee's for ``invite``; then each member removed
  by someone else gets ``left`` on every session (their client leaves the room), the rest
  ``member_left`` or ``member_joined`` as before #16, for clients that know no room events
  (a member's own ``join`` and ``leave`` are room events too, since #26);
- an edit or a deletion goes to the sessions that have the message: the room's, or the
  two parties' of a direct conversation;
- a read marker goes to the reader's other sessions.

The session that made the request gets its reply (``done``, ``joined``, ``ack``, ``read``)
from its own thread instead of the event, as a sender gets ``ack`` for its message.
"""

from __future__ import annotations

from collections.abc import Iterable

from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import (
    Event,
    Left,
    MemberJoined,
    MemberLeft,
    ReadMarker,
    encode,
)
from securechat.server.delivery import journal_event
from securechat.server.hub import Hub, Member, RoomChange
from securechat.store.message_rows import StoredMessage
from securechat.store.reads import ReadMark
from securechat.store.rooms import Outcome, RoomState

Writes = list[tuple[Member, bytes]]


def _frame(event: Event) -> bytes:
    return encode_frame(encode(event))


class _Outgoing:
    """Frames per member, in the order added; one write per member."""

    def __init__(self) -> None:
        self._frames: dict[Member, list[bytes]] = {}

    def add(self, members: Iterable[Member], frame: bytes, *, skip: Member | None = None) -> None:
        for member in members:
            if member is not skip:
                self._frames.setdefault(member, []).append(frame)

    def writes(self) -> Writes:
        return [(member, b"".join(frames)) for member, frames in self._frames.items()]


class Effects:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def of(self, result: object, origin: Member | None) -> Writes:
        """The effects of an operation's result (Outcome, journal row or read marker)."""
        if isinstance(result, Outcome):
            return self.room_changed(result, origin)
        if isinstance(result, StoredMessage):
            return self.journal_row(result, origin)
        if isinstance(result, ReadMark):
            marker = _frame(ReadMarker(id=result.id, room=result.room, peer=result.peer))
            out = _Outgoing()
            out.add(self._hub.sessions_of(result.user), marker, skip=origin)
            return out.writes()
        return []

    def room_changed(self, outcome: Outcome, origin: Member | None) -> Writes:
        """Apply an operation's outcome to the hub; the frames it makes."""
        if not outcome.changed:
            return []
        if outcome.members is not None:  # what other nodes did to the room counts too
            change = self._hub.update_room(outcome.room, outcome.meta, members=outcome.members)
        else:
            change = self._hub.update_room(
                outcome.room, outcome.meta, added=outcome.added, removed=outcome.removed
            )
        return self._announce(change, outcome.entries, origin)

    def journal_row(self, entry: StoredMessage, origin: Member | None) -> Writes:
        """A message, an edit or a deletion, for the sessions that have its conversation."""
        if entry.room is not None:
            targets: Iterable[Member] = self._hub.room_targets(entry.room)
        else:
            assert entry.to is not None
            targets = {*self._hub.sessions_of(entry.to), *self._hub.sessions_of(entry.sender)}
        out = _Outgoing()
        out.add(targets, _frame(journal_event(entry)), skip=origin)
        return out.writes()

    def external(self, entry: StoredMessage, state: RoomState | None) -> Writes:
        """A row another writer committed: a room event with the room as the store has it
        now (``state``; None once deleted), or a message, edit or deletion. An edit whose
        text is gone (edited again or deleted since it was written) is not announced: the
        later row, read after it, brings the message as it is."""
        if entry.kind == "edit" and entry.deleted:
            return []
        if entry.kind != "event":
            return self.journal_row(entry, None)
        assert entry.room is not None
        meta, members = (None, None) if state is None else (state.meta, state.members)
        if entry.action == "delete":
            meta, members = None, None
        change = self._hub.update_room(entry.room, meta, members=members)
        return self._announce(change, (entry,), None)

    def external_rows(self, rows: Iterable[tuple[StoredMessage, RoomState | None]]) -> Writes:
        """:meth:`external` for a batch of rows in commit order: one write per member for
        the lot (the journal tail reads up to a thousand rows at once)."""
        out = _Outgoing()
        for entry, state in rows:
            for member, data in self.external(entry, state):
                out.add((member,), data)
        return out.writes()

    def room_reloaded(self, room: str, state: RoomState | None) -> Writes:
        """``room`` as the store has it now (``state``; None: gone), after another node
        changed it without a journal row: a plain join or leave."""
        meta, members = (None, None) if state is None else (state.meta, state.members)
        change = self._hub.update_room(room, meta, members=members)
        return self._announce(change, (), None)

    def _announce(
        self, change: RoomChange, entries: Iterable[StoredMessage], origin: Member | None
    ) -> Writes:
        out = _Outgoing()
        hub = self._hub
        everyone = dict.fromkeys((*change.before, *change.after))
        entries = tuple(entries)
        for entry in entries:
            hearing = dict(everyone)
            if entry.action == "invite" and entry.subject is not None:
                hearing.update(dict.fromkeys(hub.sessions_of(entry.subject)))
            out.add(hearing, _frame(journal_event(entry)), skip=origin)
        room = change.room
        removed_by_others = any(entry.action != "leave" for entry in entries)
        for user in change.removed:
            if removed_by_others:  # by a moderator or the room's deletion: leave it
                out.add(hub.sessions_of(user), _frame(Left(room=room)))
                out.add(change.after, _frame(MemberLeft(room=room, user=user)), skip=origin)
            else:  # left by themselves: as before #16
                out.add(change.before, _frame(MemberLeft(room=room, user=user)), skip=origin)
        for user in change.added:
            out.add(change.after, _frame(MemberJoined(room=room, user=user)), skip=origin)
        return out.writes()
