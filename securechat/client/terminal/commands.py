"""The slash commands of the chat screen and their Tab completion.

Each command is a method named ``cmd_<name>`` taking the rest of the line; ``HELP`` is the
one list of what exists. Commands run on the main thread between prompts, call the
blocking :class:`Client`, and print their result; a refusal from the server becomes one
red line, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from securechat.client.terminal.file_commands import FILE_HELP, FileCommands
from securechat.client.terminal.render import (
    conversation_line,
    escape,
    invitation_line,
    member_line,
)
from securechat.client.terminal.screen import Screen, Target
from securechat.client.terminal.team_commands import TEAM_HELP, USER_ACTIONS, TeamCommands
from securechat.errors import NoSuchRoom, SecureChatError
from securechat.protocol.messages import MAX_QUERY, MIN_QUERY, UNREAD_CAP

__all__ = ["COMMANDS", "HELP", "Commands", "Screen", "Target", "UserCompleter"]

HISTORY_DEFAULT = 20
HISTORY_MAX = 500
SEARCH_PAGE = 20

HELP = (
    ("/join ROOM", "join a room and make it current (/create ROOM makes a new one)"),
    ("/leave [ROOM]", "leave a room (default: the current one)"),
    ("/room ROOM", "switch the current room"),
    ("/msg USER TEXT", "send a direct message"),
    ("/query USER", "make the direct conversation with USER current"),
    ("/rooms", "list your conversations, then the other rooms on the server"),
    ("/who", "list who is online"),
    ("/members [ROOM]", "list a room's members and their roles (default: the current room)"),
    ("/history [N]", f"show the last N messages here (default {HISTORY_DEFAULT})"),
    ("/search TEXT", f"find the newest {SEARCH_PAGE} messages you may read that hold TEXT"),
    *TEAM_HELP,
    *FILE_HELP,
    ("/help", "show this help"),
    ("/quit", "leave (also Ctrl-D or Ctrl-C)"),
)
COMMANDS = tuple(usage.split()[0] for usage, _ in HELP)
USER_COMMANDS = ("/msg", "/query", *(f"/{action}" for action in USER_ACTIONS))


class Commands(TeamCommands, FileCommands):
    def handle(self, line: str) -> bool:
        """Act on one input line; False means quit."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("//"):
            return self._say(text[1:])
        if not text.startswith("/"):
            return self._say(text)
        self.t.say(escape(text), "class:echo")
        name, _, rest = text.partition(" ")
        if name in ("/quit", "/exit"):
            return False
        command = name[1:].lower()
        method: Callable[[str], None] | None = getattr(self, f"cmd_{command}", None)
        if command in USER_ACTIONS:
            method = functools.partial(self.on_user, command)
        if method is None:
            self.t.fail(f"unknown command {escape(name)}: /help lists them")
            return True
        try:
            method(rest.strip())
        except SecureChatError as exc:
            self.t.fail(escape(exc.message))
        return True

    def _say(self, body: str) -> bool:
        if self.t.target is None:
            self.t.fail(
                f"not sent, you are in no room: /room ROOM or /join ROOM first, or /msg USER "
                f"TEXT (your text: {escape(body)})"
            )
        else:
            self.t.submit(body, self.t.target)
        return True

    def cmd_help(self, _: str) -> None:
        width = max(len(usage) for usage, _ in HELP)
        self.t.say("commands (Tab completes; Up/Down recall what you typed):")
        for usage, text in HELP:
            self.t.say(f"  {usage:<{width}}  {text}")
        self.t.say("anything else is sent to the current room or conversation; //text sends /text")

    def cmd_join(self, arg: str) -> None:
        room = self._name(arg, "room", "/join ROOM")
        if room is None:
            return
        try:
            joined = self.t.client.join(room, create=False)
        except NoSuchRoom:
            self.t.fail(
                f"there is no room #{escape(room)} you can join (a private room needs an "
                f"invitation): /create {escape(room)} makes it, with you as its owner"
            )
            return
        self.t.known_rooms.add(joined.room)
        self.t.known_users.update(joined.members)
        online = ", ".join(escape(u) for u in joined.online)
        topic = f"; topic: {escape(joined.topic)}" if joined.topic else ""
        self.t.say(
            f"joined #{escape(joined.room)}: {len(joined.members)} member(s), online: {online}"
            f"{topic}"
        )
        self.t.enter(Target(room=joined.room))

    def cmd_leave(self, arg: str) -> None:
        current = self.t.target.room if self.t.target else None
        room = self._name(arg, "room", "/leave [ROOM]") if arg else current
        if room is None:
            if not arg:
                self.t.fail("usage: /leave ROOM  (the current conversation is not a room)")
            return
        self.t.client.leave(room)
        rest = self.t.client.rooms
        if current == room and rest:
            self.t.say(f"left #{escape(room)}; now in #{escape(rest[0])}")
            self.t.enter(Target(room=rest[0]))
        elif current == room:
            self.t.target = None
            self.t.say(f"left #{escape(room)}; now in no room: /join ROOM")
        else:
            where = self.t.target.label if self.t.target else "no room"
            self.t.say(f"left #{escape(room)}; still in {escape(where)}")

    def cmd_room(self, arg: str) -> None:
        room = self._name(arg, "room", "/room ROOM")
        if room is None:
            return
        if room not in self.t.client.rooms:
            self.t.fail(f"you are not in #{escape(room)}: /join {escape(room)} first")
            return
        self.t.say(f"now in #{escape(room)}")
        self.t.enter(Target(room=room))

    def cmd_msg(self, arg: str) -> None:
        user = self._name(arg, "user", "/msg USER TEXT")
        body = arg.partition(" ")[2].strip()
        if user is None:
            return
        if not body:
            self.t.fail("usage: /msg USER TEXT  (or /query USER to talk to them)")
            return
        self.t.known_users.add(user)
        self.t.submit(body, Target(peer=user))

    def cmd_query(self, arg: str) -> None:
        user = self._name(arg, "user", "/query USER")
        if user is None:
            return
        page = self.t.client.history(peer=user, limit=10)  # also checks that the user exists
        self.t.known_users.add(user)
        self.t.say(f"now talking to @{escape(user)}; /room ROOM to go back")
        target = Target(peer=user)
        if not self.t.enter(target):
            self.t.show_page(page.timeline(), target)

    def cmd_rooms(self, _: str) -> None:
        client = self.t.client
        conversations, rooms = client.conversations(), client.list_rooms()
        self.t.known_rooms.update(r.name for r in rooms)
        self.t.known_users.update(c.peer for c in conversations if c.peer is not None)
        if conversations:
            self.t.say(f"your conversations ({len(conversations)}):")
        for item in conversations:
            self.t.say(f"  {conversation_line(item, UNREAD_CAP)}")
        invitations = client.invitations()
        if invitations:
            self.t.say(f"pending invitations ({len(invitations)}):")
        for invitation in invitations:
            self.t.say(f"  {invitation_line(invitation)}")
        others = [info for info in rooms if not info.joined]
        if others:
            self.t.say(f"other rooms ({len(others)}), /join ROOM to enter:")
        for info in others:
            topic = f"  {escape(info.topic)}" if info.topic else ""
            self.t.say(f"  #{escape(info.name)}  {info.members} member(s){topic}")
        if not conversations and not others and not invitations:
            self.t.say("no rooms yet: /create ROOM makes one")

    def cmd_members(self, arg: str) -> None:
        room = self._name(arg, "room", "/members [ROOM]") if arg else self._room_here("/members")
        if room is None:
            return
        members = self.t.client.members(room)
        self.t.known_users.update(member.name for member in members)
        self.t.say(f"members of #{escape(room)} ({len(members)}): {member_line(members)}")

    def cmd_who(self, _: str) -> None:
        online = self.t.client.who()
        self.t.known_users.update(online)
        self.t.say(f"online ({len(online)}): {', '.join(escape(u) for u in online)}")

    def cmd_history(self, arg: str) -> None:
        target = self.t.target
        if target is None:
            self.t.fail("you are in no room: /join ROOM first")
            return
        if arg and not (arg.isdecimal() and 1 <= int(arg) <= HISTORY_MAX):
            self.t.fail(f"usage: /history [N]  (N from 1 to {HISTORY_MAX})")
            return
        count = int(arg) if arg else HISTORY_DEFAULT
        page = self.t.client.history(**target.history_query(), limit=count)
        timeline = page.timeline()
        if not timeline:
            self.t.say(f"no messages in {escape(target.label)} yet")
            return
        events = f" and {len(page.events)} room event(s)" if page.events else ""
        self.t.say(f"last {len(page.messages)} message(s){events} in {escape(target.label)}:")
        self.t.show_page(timeline, target)
        self.t.say("end of history")

    def cmd_search(self, arg: str) -> None:
        if not MIN_QUERY <= len(arg) <= MAX_QUERY:
            self.t.fail(f"usage: /search TEXT  ({MIN_QUERY} to {MAX_QUERY} characters)")
            return
        page = self.t.client.search(arg, limit=SEARCH_PAGE)
        quoted = escape(repr(arg))
        if not page.messages:
            more = " in the newest messages: search for more words" if page.more else ""
            self.t.say(f"nothing found for {quoted}{more}")
            return
        self.t.say(f"{len(page.messages)} message(s) with {quoted}, newest first:")
        self.t.show_page(page.messages, None)
        self.t.say("older matches exist: search for more words" if page.more else "end of results")


class UserCompleter(Completer):
    """Completes commands, then room names, user names or paths depending on the command."""

    def __init__(self, terminal: Screen) -> None:
        self.t = terminal
        self._paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        word = document.get_word_before_cursor(WORD=True)
        words = text.split()
        arg_index = len(words) - (0 if text.endswith(" ") else 1)
        if text.startswith("/") and arg_index == 0:
            yield from _matching(COMMANDS, word)
        elif (
            text.startswith("/")
            and arg_index == 1
            and words[0] in ("/join", "/leave", "/room", "/members")
        ):
            yield from _matching(self.t.known_rooms | set(self.t.client.rooms), word)
        elif text.startswith("/") and arg_index == 1 and words[0] == "/upload":
            yield from self._paths.get_completions(Document(word), event)
        elif text.startswith("/") and arg_index == 1 and words[0] in USER_COMMANDS:
            yield from _matching(self.t.known_users - {self.t.client.user}, word)
        elif not text.startswith("/") or words[0] == "/msg":
            prefix = "@" if word.startswith("@") else ""
            yield from _matching(self.t.known_users, word, prefix)


def _matching(candidates: Iterable[str], word: str, prefix: str = "") -> Iterator[Completion]:
    typed = word.lower()
    for candidate in sorted(candidates):
        text = prefix + candidate
        if text.startswith(typed) and text != typed:
            yield Completion(text, start_position=-len(word))
