"""The commands a team runs its rooms with, and /edit and /delete.

Moderation acts on the current room. Each success prints what was done, worded as the
room will see it ("you kicked bob from #ops"; the room's own copy of that event is then not
printed twice); each refusal is one red line naming the room. Most refusals come worded by
the server ("only moderators of #ops can kick"); the ones that name only a code
(no_such_user, not_member, no_such_room) are worded here.
"""

from __future__ import annotations

from securechat.client.terminal.render import escape, room_event_text
from securechat.client.terminal.screen import Screen, Target
from securechat.errors import NoSuchMessage, NoSuchRoom, NoSuchUser, NotMember, RoomExists
from securechat.errors import RequestError as Refused
from securechat.protocol.messages import Deleted, Edited, RoomEvent
from securechat.protocol.names import normalize_name

__all__ = ["OWN_LOOKBACK", "TEAM_HELP", "USER_ACTIONS", "TeamCommands", "refusal"]

OWN_LOOKBACK = 200  # messages of history searched for yours when /edit N knows too few

# moderate actions on a user: /NAME USER, with the help text.
USER_ACTIONS = {
    "invite": "let USER join the current room (a private room needs it)",
    "kick": "remove USER from the current room",
    "ban": "remove USER and keep them out until /unban",
    "unban": "let a banned USER join again",
    "mute": "USER still reads the current room but cannot write in it",
    "unmute": "let a muted USER write again",
    "op": "make USER a moderator of the current room (owner only)",
    "deop": "make a moderator a plain member again (owner only)",
}

TEAM_HELP = (
    ("/create ROOM [private]", "create a room you own and enter it (private: invitation only)"),
    *((f"/{action} USER", text) for action, text in USER_ACTIONS.items()),
    ("/topic [TEXT]", "set the current room's topic; alone: show it"),
    ("/private", "make the current room invitation only (owner only)"),
    ("/public", "make the current room open to everyone (owner only)"),
    ("/edit [N] TEXT", "replace the text of your last (or N-th last) message here"),
    ("/delete [N]", "delete your last (or N-th last) message here"),
)


def refusal(exc: Refused, room: str, action: str, user: str | None = None) -> str:
    """One escaped sentence saying why ``action`` in ``room`` (on ``user``) was refused."""
    where = f"#{escape(room)}"
    if isinstance(exc, NoSuchRoom):
        return f"{where} does not exist (any more)"
    if isinstance(exc, NoSuchUser):
        return f"cannot {action} {escape(user or '?')}: there is no such user"
    if isinstance(exc, NotMember):
        if user is not None and exc.message.startswith(f"{user} "):
            return f"cannot {action} {escape(user)}: they are not in {where}"
        return f"you are not in {where}: /join {escape(room)} first"
    return escape(exc.message)  # the server names the room: "only moderators of #ops can kick"


class TeamCommands:
    """The commands of the module docstring; :class:`Commands` adds the everyday ones."""

    def __init__(self, terminal: Screen) -> None:
        self.t = terminal

    def _name(self, raw: str, what: str, usage: str) -> str | None:
        name = normalize_name(raw.split()[0]) if raw.split() else None
        if name is None:
            self.t.fail(f"usage: {usage}  ({what} names are 2-32 of a-z 0-9 . _ -)")
        return name

    def _room_here(self, command: str) -> str | None:
        room = self.t.target.room if self.t.target else None
        if room is None:
            self.t.fail(f"{command} needs a room: /room NAME first")
        return room

    def _moderate(
        self, room: str, action: str, *, user: str | None = None, topic: str | None = None
    ) -> None:
        """Ask the server; print the outcome as the room will see it, or the refusal."""
        me = self.t.client.user
        self.t.expect_event((room, action, user))
        try:
            self.t.client.moderate(room, action, user=user, topic=topic)
        except Refused as exc:
            self.t.expect_event(None)
            self.t.fail(refusal(exc, room, action, user))
            return
        event = RoomEvent(id=0, room=room, action=action, actor=me, ts="", user=user, topic=topic)
        self.t.say(room_event_text(event, me))

    def on_user(self, action: str, arg: str) -> None:
        """``/kick USER`` and the other :data:`USER_ACTIONS`."""
        room = self._room_here(f"/{action}")
        user = self._name(arg, "user", f"/{action} USER") if room else None
        if room is None or user is None:
            return
        self.t.known_users.add(user)
        self._moderate(room, action, user=user)

    def cmd_create(self, arg: str) -> None:
        usage = "/create ROOM [private]"
        words = arg.split()
        if (len(words) == 2 and words[1].lower() != "private") or len(words) > 2:
            self.t.fail(f"usage: {usage}")
            return
        room = self._name(arg, "room", usage)
        if room is None:
            return
        private = len(words) == 2
        try:
            joined = self.t.client.create(room, private=private)
        except RoomExists:
            self.t.fail(f"#{escape(room)} exists already: /join {escape(room)}, or another name")
            return
        self.t.known_rooms.add(joined.room)
        self.t.target = Target(room=joined.room)
        kind = ", a private room (invitation only: /invite USER)" if private else ""
        self.t.say(f"created #{escape(joined.room)}{kind}; you own it and are in it")

    def cmd_topic(self, arg: str) -> None:
        room = self._room_here("/topic")
        if room is None:
            return
        if arg:
            self._moderate(room, "topic", topic=arg)
            return
        info = next((r for r in self.t.client.list_rooms() if r.name == room), None)
        if info is not None and info.topic:
            self.t.say(f"topic of #{escape(room)}: {escape(info.topic)}")
        else:
            self.t.say(f"#{escape(room)} has no topic: /topic TEXT sets one")

    def cmd_private(self, _: str) -> None:
        room = self._room_here("/private")
        if room is not None:
            self._moderate(room, "private")

    def cmd_public(self, _: str) -> None:
        room = self._room_here("/public")
        if room is not None:
            self._moderate(room, "public")

    # --- your own messages -------------------------------------------------------------

    def cmd_edit(self, arg: str) -> None:
        first, _, rest = arg.partition(" ")
        nth, text = (int(first), rest.strip()) if first.isdecimal() else (1, arg)
        target = self.t.target
        if target is None or not text:  # "/edit 2" alone is taken for a missing TEXT
            self.t.fail("usage: /edit [N] TEXT  (in a room or a conversation)")
            return
        message_id = self._own(target, nth, "edit")
        if message_id is None:
            return
        try:
            ack = self.t.client.edit(message_id, text)
        except NoSuchMessage:
            self._gone(message_id)
            return
        self.t.changed(
            Edited(id=ack.id, target=message_id, sender=self.t.client.user, body=text,
                   ts=ack.ts, room=target.room, to=target.peer)
        )  # fmt: skip

    def cmd_delete(self, arg: str) -> None:
        target = self.t.target
        if target is None or (arg and not arg.isdecimal()):
            self.t.fail("usage: /delete [N]  (in a room or a conversation)")
            return
        message_id = self._own(target, int(arg or 1), "delete")
        if message_id is None:
            return
        try:
            ack = self.t.client.delete(message_id)
        except NoSuchMessage:
            self._gone(message_id)
            return
        self.t.reads.forget(message_id)
        self.t.changed(
            Deleted(id=ack.id, target=message_id, by=self.t.client.user, ts=ack.ts,
                    room=target.room, to=target.peer)
        )  # fmt: skip

    def _own(self, target: Target, nth: int, verb: str) -> int | None:
        """The id of our ``nth`` last message in ``target``, looking in history if need be."""
        reads = self.t.reads
        if reads.own_count(target.key) < nth:
            query = target.history_query() | {"events": False}  # messages only
            page = self.t.client.history(**query, limit=OWN_LOOKBACK)
            reads.note(page.messages)
        found = reads.own(target.key, nth) if nth >= 1 else None
        if found is None:
            mine = "no message of yours" if nth == 1 else f"fewer than {nth} messages of yours"
            self.t.fail(f"{mine} to {verb} in {escape(target.label)}")
        return found

    def _gone(self, message_id: int) -> None:
        self.t.reads.forget(message_id)
        self.t.fail("that message is gone (deleted): try again for the one before it")
