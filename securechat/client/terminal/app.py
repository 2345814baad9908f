"""The interactive chat screen: a prompt_toolkit prompt over a :class:`Client`.

Two threads share the screen. The main thread runs the prompt and the commands; an event
thread reads ``Client.events()`` and prints each line with ``print_formatted_text``, which
prompt_toolkit draws above the input line without touching what is being typed. Messages
being sent sit just above the prompt, dimmed, until their ``ack`` arrives; then they move
into the scrollback as normal lines (once: lines are de-duplicated by message id). The
prompt also carries the reconnect countdown.

At login the screen shows what was missed (missed.py; catchup.py keeps the state): a
summary of the unread conversations, the unread direct messages, then what is unread in
the current conversation; entering a conversation shows what is unread there. Whatever is shown of the current conversation is marked read, so the user's other
devices see it read. A mention (``@me``) or a direct message elsewhere than the current
conversation rings the terminal's bell. ``_lock`` guards ``_pending``, ``_status``,
``_shown``, ``_bodies``, ``_expected`` and ``_files``, which both threads (and transfers'
workers, file_transfers.py) touch; ``target`` is replaced whole (by the main thread, or by
the event thread, which sets it to None when we are removed from the current room: never
to another room, so no line goes there unseen).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Sequence

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from securechat.client.api import Client
from securechat.client.events import (
    ClientEvent,
    Delivered,
    Disconnected,
    Reconnected,
    Reconnecting,
    SendFailed,
)
from securechat.client.outgoing import Outgoing
from securechat.client.terminal.catchup import ReadMarks, ReadState, key_of, key_of_message
from securechat.client.terminal.commands import Commands, UserCompleter
from securechat.client.terminal.file_transfers import Transfers, progress_line
from securechat.client.terminal.missed import catch_up, show_unread
from securechat.client.terminal.render import (
    STYLE,
    change_line,
    escape,
    is_mentioned,
    message_line,
    notice_text,
    pending_line,
    presence_changes,
    presence_text,
    prompt_text,
    room_list,
    send_failed_text,
    system_line,
)
from securechat.client.terminal.runs import LiveRuns, page_lines
from securechat.client.terminal.screen import Target
from securechat.errors import SecureChatError
from securechat.protocol.files import Attachment
from securechat.protocol.messages import (
    UNREAD_CAP,
    Conversation,
    Deleted,
    Edited,
    Error,
    Left,
    MemberJoined,
    MemberLeft,
    Message,
    ReadMarker,
    RoomEvent,
)

QUIT_WAIT = 5.0  # seconds /quit waits for pending messages to be acknowledged
BODIES_KEPT = 2000  # shown messages remembered (sender, body) to name what an edit changes


class ChatTerminal:
    def __init__(
        self,
        client: Client,
        *,
        label: str,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.client = client
        self.label = label
        self.target: Target | None = Target.first_of(client.rooms)
        self.known_users: set[str] = {client.user}
        self.known_rooms: set[str] = set(client.rooms)
        self.reads = ReadState(client.user)
        self._marks = ReadMarks(client, self.reads)
        self._lock = threading.Lock()
        self._shown: set[int] = set()  # journal ids printed (messages, edits, deletions)
        self._bodies: dict[int, tuple[str, str]] = {}  # id -> (sender, body), BODIES_KEPT newest
        self._expected: tuple[str, str, str | None] | None = None  # our last moderation
        self._runs = LiveRuns(client.user)  # the event thread's alone
        self._pending: dict[str, tuple[Outgoing, str]] = {}  # ref -> (outgoing, target label)
        self._files: dict[str, tuple[Attachment, ...]] = {}  # ref -> files of a pending send
        self.transfers = Transfers(lambda: self._session.app.invalidate())  # any thread
        self._status: tuple[int, float] | None = None  # (attempt, countdown end)
        self._ended = threading.Event()
        self._commands = Commands(self)
        self._session: PromptSession[str] = PromptSession(
            message=self._prompt,
            completer=UserCompleter(self),
            complete_while_typing=False,
            history=InMemoryHistory(),  # never written to disk: it holds message text
            style=STYLE,
            refresh_interval=0.5,
            erase_when_done=True,  # the sent line comes back formatted, with its time
            input=input,
            output=output,
        )

    # --- the main thread ----------------------------------------------------------------

    def run(self) -> None:
        """Run until /quit, Ctrl-C, Ctrl-D or a fatal disconnect, then close the client."""
        with patch_stdout(raw=True):
            self._marks.start()
            self._greet()
            reader = threading.Thread(target=self._read_events, name="events", daemon=True)
            reader.start()
            try:
                while not self._ended.is_set():
                    try:
                        line = self._session.prompt()
                    except (KeyboardInterrupt, EOFError) as exc:
                        if isinstance(exc, KeyboardInterrupt) and self._commands.interrupted():
                            continue  # Ctrl-C cancelled the transfers under way
                        break
                    if self._ended.is_set() or not self._commands.handle(line):
                        break
            finally:
                self._leave()
                reader.join(1.0)
        print_formatted_text("bye")

    def say(self, text: str, style: str = "class:system") -> None:
        """Print a local notice; ``text`` must already be escaped."""
        print_formatted_text(system_line(text, style=style), style=STYLE)

    def fail(self, text: str) -> None:
        self.say(text, "class:error")

    def show(self, message: Message, *, live: bool = False) -> None:
        with self._lock:
            self._shown.add(message.id)
            if not message.deleted:
                self._remember(message.id, message.sender, message.body)
        line = message_line(message, self.client.user, live=live)
        print_formatted_text(line, style=STYLE)

    def show_page(self, items: Sequence[Message | RoomEvent], target: Target | None) -> None:
        """Show a stored page (messages, and a room's events); with ``target`` (where they
        all are), they are now read."""
        for item in page_lines(items, self.client.user):
            if isinstance(item, str):
                self.say(item)
            else:
                self.show(item)
        self.reads.note(items)
        if target is not None and items:
            self._marks.mark(target.room, target.peer, items[-1].id)

    def enter(self, target: Target, unread: Conversation | None = None) -> bool:
        """Make ``target`` current and show what is unread there; False if nothing is.

        ``unread`` is the server's count for it, when just asked; else it is asked now.
        """
        self.target = target
        return show_unread(self, target, unread)

    def changed(self, event: Edited | Deleted) -> None:
        """Show an edit or a deletion, naming the message it changes (once: our own come
        from the command and from the server)."""
        with self._lock:
            if event.id in self._shown:
                return
            self._shown.add(event.id)
            before = self._bodies.get(event.target)
            if isinstance(event, Edited):
                self._remember(event.target, event.sender, event.body)
            else:
                self._bodies.pop(event.target, None)
        if isinstance(event, Deleted):
            self.reads.forget(event.target)
        print_formatted_text(change_line(event, before, self.client.user), style=STYLE)

    def _remember(self, message_id: int, sender: str, body: str) -> None:
        """Keep a shown message's sender and body for the notice of its edit or deletion;
        the caller holds ``_lock``."""
        self._bodies.pop(message_id, None)  # an edited one becomes the newest
        self._bodies[message_id] = (sender, body)
        while len(self._bodies) > BODIES_KEPT:
            del self._bodies[next(iter(self._bodies))]

    def expect_event(self, expected: tuple[str, str, str | None] | None) -> None:
        """Our own moderation (room, action, user) under way: its room event is not printed,
        the command prints the outcome; None once it was refused."""
        with self._lock:
            self._expected = expected

    def submit(self, body: str, target: Target, files: tuple[Attachment, ...] = ()) -> None:
        """Send ``body`` (with ``files``, uploaded already) to ``target``; from any thread."""
        with self._lock:  # held over the submit, so that its ack's Delivered finds it noted
            try:
                outgoing = self.client.submit(body, **target.address(), files=[f.id for f in files])
            except SecureChatError as exc:
                refused: str | None = exc.message
            else:
                refused = None
                if not outgoing.is_done:
                    self._pending[outgoing.ref] = (outgoing, target.label)
                    if files:  # the ack's message knows their ids only: shown from these
                        self._files[outgoing.ref] = files
        if refused is not None:
            self.fail(f"not sent: {escape(refused)}")

    def _greet(self) -> None:
        client = self.client
        self.say(
            f"connected to {escape(self.label)} as {escape(client.user)} "
            f"({escape(client.server)}). Type /help for commands."
        )
        try:
            conversations = catch_up(self, UNREAD_CAP)
            self.known_users.update(p.name for p in client.people())  # for Tab completion
        except SecureChatError as exc:
            self.fail(f"cannot show what you missed: {escape(exc.message)}")
        else:
            self.known_rooms.update(c.room for c in conversations if c.room is not None)
        if self.target is None:
            self.say("you are in no room yet: /join ROOM, or /msg USER TEXT")
        else:
            self.say(f"you are in {escape(self.target.label)}; rooms: {room_list(client.rooms)}")

    def _leave(self) -> None:
        self._ended.set()
        waiting = [outgoing for outgoing, _ in self._pending_items()]
        if waiting and self.client.is_connected:
            self.say(f"waiting up to {QUIT_WAIT:.0f} s for {len(waiting)} message(s) to be sent…")
            deadline = time.monotonic() + QUIT_WAIT
            for outgoing in waiting:
                if not outgoing.is_done:
                    _wait_quietly(outgoing, deadline)
        if self.transfers.cancel_all():
            self.transfers.join(QUIT_WAIT)
        self._marks.close()
        self.client.close()
        for outgoing, label in self._pending_items():
            if not outgoing.is_done:
                self.fail(
                    f"not sent to {escape(label)}: {escape(outgoing.request.body or '(a file)')}"
                )

    def _pending_items(self) -> list[tuple[Outgoing, str]]:
        with self._lock:
            return list(self._pending.values())

    def _prompt(self) -> FormattedText:
        """Pending messages, transfers, the connection status, then ``[room] user> ``."""
        above: list[StyleAndTextTuples] = [
            pending_line(o.request.body, label) for o, label in self._pending_items()
        ]
        above += [progress_line(transfer) for transfer in self.transfers.running()]
        with self._lock:
            status = self._status
        reconnect = None if status is None else (status[0], status[1] - time.monotonic())
        where = self.target.prompt if self.target else "no room"
        return prompt_text(above, reconnect, where, self.client.user)

    # --- the event thread ---------------------------------------------------------------

    def _read_events(self) -> None:
        for event in self._runs.paced(self.client, self.say):
            self._on_event(event)
            if isinstance(event, Disconnected):
                self._ended.set()
                app, loop = self._session.app, self._session.app.loop
                if app.is_running and loop is not None:
                    loop.call_soon_threadsafe(functools.partial(app.exit, exception=EOFError))
                return

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, Message):
            self._on_message(event, live=True)
        elif isinstance(event, Delivered):
            with self._lock:
                files = self._files.pop(event.ref, None)
            self._on_message(dataclasses.replace(event.message, files=files), live=False)
            with self._lock:
                self._pending.pop(event.ref, None)
        elif isinstance(event, Edited | Deleted):
            self.changed(event)
        elif isinstance(event, RoomEvent):
            self._on_room_event(event)
        elif isinstance(event, Left):
            self._on_removed(event.room)
        elif isinstance(event, ReadMarker):
            self.reads.set_marker(key_of(event.room, event.peer), event.id)  # another device
        elif isinstance(event, SendFailed):
            self._on_send_failed(event)
        elif isinstance(event, Reconnecting):
            if event.attempt == 1:
                self.fail(f"connection lost: {escape(event.reason)}")
            with self._lock:
                self._status = (event.attempt, time.monotonic() + event.delay)
        elif isinstance(event, Reconnected):
            with self._lock:
                self._status = None
            self.known_rooms.update(event.rooms)
            self.say("reconnected; catching up on missed messages")
            target = self.target
            if target is not None and target.room is not None and target.room not in event.rooms:
                self._on_removed(target.room)  # kicked or banned while we were away
        elif isinstance(event, MemberJoined | MemberLeft):
            self.known_users.add(event.user)  # its line is the room event's (join, leave)
        elif (changes := presence_changes(event, me=self.client.user)) is not None:
            self.known_users.update(*changes)  # (online, offline)
            if text := presence_text(*changes):
                self.say(text)
        elif isinstance(event, Disconnected | Error):
            self.fail(notice_text(event))
        # anything else a newer server pushes is not for this version's screen

    def _on_message(self, message: Message, *, live: bool) -> None:
        me = self.client.user
        self.known_users.add(message.sender)
        with self._lock:
            if message.id in self._shown:
                return
        self.show(message, live=live)
        self.reads.note([message])
        target = self.target
        if target is not None and key_of_message(message, me) == target.key:
            self._marks.mark(target.room, target.peer, message.id)  # seen where we look
        elif (
            live
            and message.sender != me
            and (message.room is None or is_mentioned(message.body, me, live=True))
        ):
            self._ring()

    def _on_room_event(self, event: RoomEvent) -> None:
        with self._lock:
            ours = self._expected == (event.room, event.action, event.user)
            if ours and event.actor == self.client.user:
                self._expected = None
                return
        if event.action == "create" and event.actor == self.client.user:
            self.known_rooms.add(event.room)  # made on another device: we are in it
        if event.user is not None:
            self.known_users.add(event.user)
        for line in self._runs.lines(event):
            self.say(line)

    def _on_removed(self, room: str) -> None:
        """Kicked, banned, or the room deleted: it is no longer ours to be in.

        When it was the current room, no other room takes its place: a line typed in the
        middle of a conversation must not land, unseen, in front of other people. The
        prompt says ``[no room]`` and the next line is refused until the user chooses.
        """
        target = self.target
        if target is None or target.room != room:
            self.fail(f"you are no longer in #{escape(room)}")
            return
        self.target = None
        rest = self.client.rooms
        back = f"/room {escape(rest[0])}, " if rest else ""
        self.fail(
            f"you are no longer in #{escape(room)} and in no room now: nothing you type is "
            f"sent until you choose where ({back}/join ROOM or /query USER)"
        )

    def _ring(self) -> None:
        """The terminal's bell, written by prompt_toolkit so the prompt stays intact."""
        app, loop = self._session.app, self._session.app.loop
        if app.is_running and loop is not None:
            loop.call_soon_threadsafe(app.output.bell)

    def _on_send_failed(self, event: SendFailed) -> None:
        with self._lock:
            self._pending.pop(event.ref, None)
            files = self._files.pop(event.ref, ())
        self.fail(send_failed_text(event, [file.name for file in files]))


def _wait_quietly(outgoing: Outgoing, deadline: float) -> None:
    """Wait for an ack until ``deadline``; a failure is reported by the event thread."""
    try:
        outgoing.wait(max(deadline - time.monotonic(), 0.0))
    except SecureChatError:
        return  # reported as SendFailed, or listed as not sent by _leave
