"""Runs of like room events, so that a burst of joins does not flood the screen.

A directory sync or a new team room can bring fifty joins at once. As Slack and Mattermost
show them, a run of like events (a member's own join, or own leave, in one room; or one
actor's invitations or kicks there) reads as one line: "bob, carol, dave and 47 others
joined #dev". A stored page (history) is grouped whole (:func:`page_lines`). Live,
lines cannot be taken back once printed: :class:`LiveRuns` prints a run's first
``LIVE_LINES`` events as they come, then holds the rest and prints one line for them when
the run ends (another kind of event or a message in its room, or ``QUIET`` seconds without
any event). Each room has its own run: new users' first logins join #general between
their joins elsewhere. The
page (web/timeline.js ``sameRun``) groups by the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from securechat.client.api import Client
from securechat.client.escaping import escape
from securechat.client.events import ClientEvent
from securechat.client.terminal.render import room_event_text
from securechat.protocol.messages import Message, RoomEvent

__all__ = ["LIVE_LINES", "NAMES_SHOWN", "QUIET", "LiveRuns", "names_text", "page_lines", "run_key"]

NAMES_SHOWN = 3  # a run's line names this many people, then "and N others"
LIVE_LINES = 3  # live, this many events of a run print their own line
QUIET = 2.0  # seconds without an event that end a live run (its held line is printed)
_RUN_ACTIONS = frozenset({"join", "leave", "invite", "kick"})


def run_key(event: RoomEvent) -> tuple[str, ...] | None:
    """Which run ``event`` belongs to; None: it is never grouped."""
    if event.action not in _RUN_ACTIONS:
        return None
    if event.action in ("join", "leave"):
        return (event.room, event.action)
    return (event.room, event.action, event.actor)


def names_text(names: Sequence[str], me: str) -> str:
    """``bob``, ``bob and carol``, ``bob, carol and dave``, ``bob, carol, dave and 2 others``
    (escaped; ``me`` reads ``you``)."""
    shown = ["you" if name == me else escape(name) for name in dict.fromkeys(names)]
    if len(shown) <= 1:
        return "".join(shown)
    if len(shown) <= NAMES_SHOWN:
        return f"{', '.join(shown[:-1])} and {shown[-1]}"
    others = len(shown) - NAMES_SHOWN
    return f"{', '.join(shown[:NAMES_SHOWN])} and {others} other{'s' if others > 1 else ''}"


def run_text(run: Sequence[RoomEvent], me: str) -> str:
    """One line for a run (oldest first)."""
    last = run[-1]
    if len(run) == 1:
        return room_event_text(last, me)
    return room_event_text(last, me, names_text([e.user or e.actor for e in run], me))


def page_lines(items: Iterable[Message | RoomEvent], me: str) -> Iterator[Message | str]:
    """A stored page in order: each message, and a line per room event or run of them."""
    run: list[RoomEvent] = []
    for item in items:
        key = run_key(item) if isinstance(item, RoomEvent) else None
        if run and (key is None or key != run_key(run[-1])):
            yield run_text(run, me)
            run = []
        if isinstance(item, RoomEvent) and key is not None:
            run.append(item)
        elif isinstance(item, RoomEvent):
            yield room_event_text(item, me)
        else:
            yield item
    if run:
        yield run_text(run, me)


class LiveRuns:
    """The event thread's live runs, one per room (one thread: no lock)."""

    def __init__(self, me: str) -> None:
        self._me = me
        self._runs: dict[str, tuple[tuple[str, ...], int]] = {}  # room -> (key, events seen)
        self._held: dict[str, list[RoomEvent]] = {}  # room -> past LIVE_LINES, not printed

    def paced(self, client: Client, say: Callable[[str], None]) -> Iterator[ClientEvent]:
        """``client``'s events until it closes; a held run's line is said when the run ends:
        at a message in its room, or after ``QUIET`` seconds without any event."""
        while True:
            event = client.next_event(QUIET if self._held else None)
            if event is None and not self._held:
                return
            ended = self.end() if event is None else []
            if isinstance(event, Message) and event.room is not None:
                ended = self.end(event.room)
            for line in ended:
                say(line)
            if event is not None:
                yield event

    def lines(self, event: RoomEvent) -> list[str]:
        """What to print for ``event`` now (its room's held line first, when it ends a run)."""
        key, room = run_key(event), event.room
        run = self._runs.get(room)
        out = self.end(room) if run is None or key != run[0] else []
        if key is None:
            return [*out, room_event_text(event, self._me)]
        seen = self._runs.get(room, (key, 0))[1] + 1
        self._runs[room] = (key, seen)
        if seen <= LIVE_LINES:
            return [*out, room_event_text(event, self._me)]
        self._held.setdefault(room, []).append(event)
        return out

    def end(self, room: str | None = None) -> list[str]:
        """The run in ``room`` (None: every room) is over: the lines for its held events."""
        rooms = list(self._runs) if room is None else [room]
        out = []
        for name in rooms:
            self._runs.pop(name, None)
            held = self._held.pop(name, [])
            if len(held) == 1:
                out.append(room_event_text(held[0], self._me))
            elif held:
                more = names_text([e.user or e.actor for e in held], self._me)
                out.append(room_event_text(held[-1], self._me, more))
        return out
