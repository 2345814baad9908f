"""The interactive chat screen: a prompt_toolkit prompt over a :class:`Client`.

Two threads share the screen. The main thread runs the prompt and the commands; an event
thread reads ``Client.events()`` and prints each line with ``print_formatted_text``, which
prompt_toolkit draws above the input line without touching what is being typed. Messages
being sent sit just above the prompt, dimmed, until their ``ack`` arrives; then they move
into the scrollback as normal lines (once: lines are de-duplicated by message id). The
prompt also carries the reconnect countdown. ``_lock`` guards ``_pending`` and ``_status``,
which both threads touch; everything else belongs to one thread.
"""

from __future__ import annotations

import functools
import threading
import time

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.patch_stdout import patch_stdout

from securechat.client.api import Client
from securechat.client.commands import Commands, Target, UserCompleter
from securechat.client.events import (
    ClientEvent,
    Delivered,
    Disconnected,
    Reconnected,
    Reconnecting,
    SendFailed,
)
from securechat.client.outgoing import Outgoing
from securechat.client.render import (
    STYLE,
    escape,
    message_line,
    pending_line,
    system_line,
)
from securechat.errors import SecureChatError
from securechat.protocol.messages import Error, MemberJoined, MemberLeft, Message, Presence

QUIT_WAIT = 5.0  # seconds /quit waits for pending messages to be acknowledged
RECENT = 10  # messages of the current room shown at start


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
        self.target: Target | None = _first_target(client.rooms)
        self.known_users: set[str] = {client.user}
        self.known_rooms: set[str] = set(client.rooms)
        self._shown: set[int] = set()
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Outgoing, str]] = {}  # ref -> (outgoing, target label)
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
            self._greet()
            reader = threading.Thread(target=self._read_events, name="events", daemon=True)
            reader.start()
            try:
                while not self._ended.is_set():
                    try:
                        line = self._session.prompt()
                    except (KeyboardInterrupt, EOFError):
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

    def show(self, message: Message) -> None:
        print_formatted_text(message_line(message, self.client.user), style=STYLE)

    def submit(self, body: str, target: Target) -> None:
        try:
            outgoing = self.client.submit(body, **target.address())
        except SecureChatError as exc:
            self.fail(f"not sent: {escape(exc.message)}")
            return
        with self._lock:
            if not outgoing.is_done:
                self._pending[outgoing.ref] = (outgoing, target.label)

    def _greet(self) -> None:
        client = self.client
        self.say(
            f"connected to {escape(self.label)} as {escape(client.user)} "
            f"({escape(client.server)}). Type /help for commands."
        )
        if self.target is None:
            self.say("you are in no room yet: /join ROOM, or /msg USER TEXT")
            return
        try:
            page = client.history(self.target.room, limit=RECENT)
        except SecureChatError as exc:
            self.fail(f"cannot load recent messages: {escape(exc.message)}")
            return
        for message in page.messages:
            self._shown.add(message.id)
            self.show(message)
        self.say(f"you are in {escape(self.target.label)}; rooms: {_rooms(client.rooms)}")

    def _leave(self) -> None:
        self._ended.set()
        waiting = [outgoing for outgoing, _ in self._pending_items()]
        if waiting and self.client.is_connected:
            self.say(f"waiting up to {QUIT_WAIT:.0f} s for {len(waiting)} message(s) to be sent…")
            deadline = time.monotonic() + QUIT_WAIT
            for outgoing in waiting:
                if not outgoing.is_done:
                    _wait_quietly(outgoing, deadline)
        self.client.close()
        for outgoing, label in self._pending_items():
            if not outgoing.is_done:
                self.fail(f"not sent to {escape(label)}: {escape(outgoing.request.body)}")

    def _pending_items(self) -> list[tuple[Outgoing, str]]:
        with self._lock:
            return list(self._pending.values())

    def _prompt(self) -> FormattedText:
        """Pending messages, the connection status, then ``[room] user> ``."""
        parts: StyleAndTextTuples = []
        for outgoing, label in self._pending_items():
            parts.extend(pending_line(outgoing.request.body, label))
            parts.append(("", "\n"))
        with self._lock:
            status = self._status
        if status is not None:
            attempt, until = status
            left = until - time.monotonic()
            when = f"in {left:.0f} s" if left >= 0.5 else "now"
            parts.append(("class:status", f" offline: reconnecting {when} (attempt {attempt}) "))
            parts.append(("class:system", " what you type is sent once connected\n"))
        where = self.target.prompt if self.target else "no room"
        parts.append(("class:prompt", f"[{escape(where)}] {escape(self.client.user)}> "))
        return FormattedText(parts)

    # --- the event thread ---------------------------------------------------------------

    def _read_events(self) -> None:
        for event in self.client.events():
            self._on_event(event)
            if isinstance(event, Disconnected):
                self._ended.set()
                app, loop = self._session.app, self._session.app.loop
                if app.is_running and loop is not None:
                    loop.call_soon_threadsafe(functools.partial(app.exit, exception=EOFError))
                return

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, Message):
            self._on_message(event)
        elif isinstance(event, Delivered):
            self._on_message(event.message)
            with self._lock:
                self._pending.pop(event.ref, None)
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
        elif isinstance(event, Disconnected):
            self.fail(f"disconnected: {escape(event.reason)}")
        elif isinstance(event, MemberJoined | MemberLeft):
            self.known_users.add(event.user)
            verb = "joined" if isinstance(event, MemberJoined) else "left"
            self.say(f"{escape(event.user)} {verb} #{escape(event.room)}")
        elif isinstance(event, Presence):
            self.known_users.add(event.user)
            self.say(f"{escape(event.user)} is {'online' if event.online else 'offline'}")
        elif isinstance(event, Error):
            self.fail(f"server: {escape(event.message)} ({escape(event.code)})")
        # anything else a newer server pushes is not for this version's screen

    def _on_message(self, message: Message) -> None:
        self.known_users.add(message.sender)
        if message.id not in self._shown:
            self._shown.add(message.id)
            self.show(message)

    def _on_send_failed(self, event: SendFailed) -> None:
        with self._lock:
            self._pending.pop(event.ref, None)
        where = f"#{event.room}" if event.room else f"@{event.to}"
        self.fail(
            f"not delivered to {escape(where)}: {escape(event.reason)} "
            f"(your text: {escape(event.body)})"
        )


def _first_target(rooms: tuple[str, ...]) -> Target | None:
    if "general" in rooms:
        return Target(room="general")
    return Target(room=rooms[0]) if rooms else None


def _rooms(rooms: tuple[str, ...]) -> str:
    return ", ".join(f"#{escape(r)}" for r in rooms) or "none"


def _wait_quietly(outgoing: Outgoing, deadline: float) -> None:
    """Wait for an ack until ``deadline``; a failure is reported by the event thread."""
    try:
        outgoing.wait(max(deadline - time.monotonic(), 0.0))
    except SecureChatError:
        return  # reported as SendFailed, or listed as not sent by _leave
