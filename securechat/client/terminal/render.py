"""Pure formatting for the terminal: safe text, local times and styled lines.

Everything a remote peer controls (bodies, names, room names, server messages) passes
through :func:`escape` (securechat.client.escaping) before it reaches the terminal, so
nobody can move the cursor, retitle the window or hide text with control characters, ANSI
sequences, bidi overrides or invisible characters. Message bodies are rendered as the
page renders them (markdown.py). Lines are prompt_toolkit style fragments; the style
classes are in ``STYLE``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from prompt_toolkit.formatted_text import FormattedText, StyleAndTextTuples
from prompt_toolkit.styles import Style

from securechat.attachments.sizes import format_size
from securechat.client.escaping import escape
from securechat.client.events import Disconnected, SendFailed
from securechat.client.terminal.markdown import body_lines
from securechat.protocol.files import Attachment
from securechat.protocol.membership import Invitation, RoomMember
from securechat.protocol.mentions import mentions as protocol_mentions
from securechat.protocol.messages import (
    Conversation,
    Deleted,
    Edited,
    Error,
    Message,
    Presence,
    PresenceBatch,
    RoomEvent,
)

__all__ = [
    "STYLE",
    "change_line",
    "conversation",
    "conversation_line",
    "escape",
    "file_line",
    "invitation_line",
    "is_mentioned",
    "local_time",
    "member_line",
    "mentions",
    "message_line",
    "notice_text",
    "pending_line",
    "presence_changes",
    "presence_text",
    "prompt_text",
    "room_event_text",
    "room_list",
    "send_failed_text",
    "system_line",
    "unread_summary",
]

STYLE = Style.from_dict(
    {
        "time": "#888888",
        "room": "#5f87af",
        "sender": "bold",
        "own": "#5faf5f",
        "own.sender": "bold #5faf5f",
        "mention": "bold #ffaf00",
        "dm": "#af87ff",
        "dm.sender": "bold #af87ff",
        "system": "italic #888888",
        "error": "bold #ff5f5f",
        "pending": "#666666 italic",
        "status": "reverse",
        "prompt": "bold",
        "echo": "#888888",
        "heading": "bold",
        "md.code": "#d7875f",
        "md.quote": "#5f87af",
        "md.link": "underline",
        "md.url": "#5f87af",
        "file": "#5fafaf",
    }
)


CONTINUATION = " " * 6  # indent of a message's second and later lines
QUOTE_MAX = 60  # characters of a message quoted in an edit or deletion notice


def local_time(ts: str, *, now: dt.datetime | None = None) -> str:
    """A protocol timestamp as local ``HH:MM``, with the date when it is not today."""
    try:
        moment = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return "??:??"
    now = now or dt.datetime.now().astimezone()
    if moment.date() == now.date():
        return f"{moment:%H:%M}"
    if moment.year == now.year:
        return f"{moment:%b %d %H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def mentions(body: str, user: str) -> bool:
    """Whether ``body`` names ``user`` as a word (``alice``, ``@alice``, ``Alice:``)."""
    return re.search(rf"(?<![\w.-]){re.escape(user)}(?![\w-])", body, re.IGNORECASE) is not None


def is_mentioned(body: str, user: str, *, live: bool = False) -> bool:
    """Whether ``body`` mentions ``user`` as ``@user``, ``@room`` or (``live``: received as
    it was sent) ``@here``: the protocol's rule, the one the server counts and that rings
    the bell (:func:`mentions` is the looser rule for highlighting a name)."""
    return protocol_mentions(body, user, online=live)


def conversation(message: Message, me: str) -> str:
    """Where a message belongs: ``#room``, or ``@peer`` for a direct message."""
    if message.room is not None:
        return f"#{message.room}"
    return f"@{message.to if message.sender == me else message.sender}"


def message_line(
    message: Message, me: str, *, now: dt.datetime | None = None, live: bool = False
) -> FormattedText:
    """One chat message, e.g. ``12:01 #general bob: hi`` or ``12:02 (dm) bob: psst``.

    Own messages, direct messages and mentions of ``me`` (``live``: it came as sent, so an
    ``@here`` is one) each get their own style.
    """
    own = message.sender == me
    if message.room is not None:
        where, kind = f"#{message.room}", "own" if own else ""
    else:
        where, kind = (f"(dm → {message.to})" if own else "(dm)"), "own" if own else "dm"
    body_style = f"class:{kind}" if kind else ""
    if not own and (mentions(message.body, me) or is_mentioned(message.body, me, live=live)):
        body_style = "class:mention"
    line: StyleAndTextTuples = [
        ("class:time", f"{local_time(message.ts, now=now)} "),
        ("class:room", f"{escape(where)} "),
        (f"class:{kind}.sender" if kind else "class:sender", f"{escape(message.sender)}: "),
    ]
    if message.deleted:
        line.append(("class:system", "message deleted"))
        return FormattedText(line)
    caption, files = split_files(message)
    shown = body_lines(caption, body_style) if caption else []
    shown += [[("class:file", file_line(file))] for file in files]
    for n, body_line in enumerate(shown):
        if n:
            line.append(("", f"\n{CONTINUATION}"))
        line.extend(body_line)
    if message.edited:
        line.append(("class:system", " (edited)"))
    return FormattedText(line)


def split_files(message: Message) -> tuple[str, tuple[Attachment, ...]]:
    """A message's caption and its files. The server ends the body with one line per file
    for older clients (docs/protocol.md "Files"): those are taken off here and shown from
    ``files`` instead, plain (a name is never read as markdown), so each shows once. A
    line is taken for a file's only if it names that file's id, in order; our own message
    as acknowledged has none (its body is the caption we typed)."""
    files = message.files or ()
    lines = message.body.split("\n")
    tail = lines[len(lines) - len(files) :] if files and len(lines) >= len(files) else []
    if tail and all(
        line.startswith("[file: ") and line.endswith(f", id {file.id}]")
        for line, file in zip(tail, files, strict=True)
    ):
        lines = lines[: len(lines) - len(files)]
    return "\n".join(lines), files


def file_line(file: Attachment) -> str:
    """``[file: report.pdf, 1.2 MiB, id 7kq2…]``, escaped: ``/download ID`` saves it."""
    return f"[file: {escape(file.name)}, {format_size(file.size)}, id {escape(file.id)}]"


def quote(body: str, limit: int = QUOTE_MAX) -> str:
    """``body`` on one line in quotes, shortened to ``limit`` characters, escaped."""
    flat = " ".join(body.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return f'"{escape(flat)}"'


def change_line(
    event: Edited | Deleted, before: tuple[str, str] | None, me: str,
    *, now: dt.datetime | None = None,
) -> FormattedText:  # fmt: skip
    """An edit or a deletion naming the message it changes, e.g.
    ``12:03 #general bob edited "lunch at 12" → "lunch at 1"`` or ``… bob deleted their
    message "lunch at 1"``. ``before`` is the message's (sender, body) when it was shown."""
    if event.room is not None:
        where = f"#{event.room}"
    else:
        where = f"(dm → {event.to})" if event.to and event.to != me else "(dm)"

    def who(name: str) -> str:
        return "you" if name == me else escape(name)

    if isinstance(event, Edited):
        was = f"{quote(before[1])} → " if before else "a message: "
        text = f"{who(event.sender)} edited {was}{quote(event.body)}"
    elif before is None:
        text = f"{who(event.by)} deleted a message"
    else:
        sender, body = before
        if sender == event.by:
            whose = "your" if sender == me else "their"
        else:
            whose = "your" if sender == me else f"{escape(sender)}'s"
        text = f"{who(event.by)} deleted {whose} message {quote(body)}"
    return FormattedText(
        [
            ("class:time", f"{local_time(event.ts, now=now)} "),
            ("class:room", f"{escape(where)} "),
            ("class:system", text),
        ]
    )


# What a room event says, by action: {actor}, {user}, {room} (with its #), {name} (without),
# {topic} and {action}. Only these templates of ours are ever formatted: the server's text
# goes in as values (a template made of its text could run attribute lookups or raise).
_ROOM_EVENTS = {
    "create": "{actor} created {room}",
    "invite": "{actor} invited {user} to {room}",
    "kick": "{actor} kicked {user} from {room}",
    "ban": "{actor} banned {user} from {room}",
    "unban": "{actor} unbanned {user} in {room}",
    "mute": "{actor} muted {user} in {room}",
    "unmute": "{actor} unmuted {user} in {room}",
    "op": "{actor} made {user} a moderator of {room}",
    "deop": "{actor} made {user} a plain member of {room}",
    "transfer": "{actor} handed {room} over to {user}",
    "private": "{room} is now private (invitation only), by {actor}",
    "public": "{room} is now public, by {actor}",
    "topic": "topic of {room}: {topic} (set by {actor})",
    "delete": "{actor} deleted {room}",
    "join": "{user} joined {room}",
    "leave": "{user} left {room}",
}
_UNKNOWN_ROOM_EVENT = "{actor} did '{action}' in {room}"  # an action a newer server added


def room_event_text(event: RoomEvent, me: str, users: str | None = None) -> str:
    """A room event as one escaped sentence, e.g. ``alice kicked you from #ops``;
    ``users`` (escaped) names a run's users instead of the event's (runs.py)."""
    template = _ROOM_EVENTS.get(event.action, _UNKNOWN_ROOM_EVENT)
    if event.action == "topic" and not event.topic:
        template = "{actor} cleared the topic of {room}"
    elif event.action == "create" and event.topic:
        template += " (topic: {topic})"
    elif event.action == "invite" and event.user == me:
        template += ": /join {name} to enter"

    def who(name: str | None) -> str:
        return "you" if name == me else escape(name or "?")

    return template.format(
        actor=who(event.actor), user=users or who(event.user), room=f"#{escape(event.room)}",
        name=escape(event.room), topic=escape(event.topic or ""), action=escape(event.action),
    )  # fmt: skip


def notice_text(event: Disconnected | Error) -> str:
    """The end of the session or a server error, escaped (a membership change has no line
    of its own: the room event's join or leave is; presence has presence_text)."""
    if isinstance(event, Disconnected):
        return f"disconnected: {escape(event.reason)}"
    return f"server: {escape(event.message)} ({escape(event.code)})"


def send_failed_text(event: SendFailed, files: Sequence[str] = ()) -> str:
    """A message the server refused for good, with what it held (its text, its files)."""
    where = f"#{event.room}" if event.room else f"@{event.to}"
    held = [f"your text: {escape(event.body)}"] if event.body else []
    held += [f"your file {escape(name)}: /upload it again" for name in files]
    return f"not delivered to {escape(where)}: {escape(event.reason)} ({'; '.join(held)})"


def room_list(rooms: Iterable[str]) -> str:
    """``#general, #ops``, escaped; ``none`` for no room."""
    return ", ".join(f"#{escape(r)}" for r in rooms) or "none"


PRESENCE_NAMES = 5  # names a presence line lists before "and N others"


def presence_changes(event: object, *, me: str) -> tuple[list[str], list[str]] | None:
    """Who came online and who went offline, as a presence batch says or one change (from a
    server before #30) did, leaving out ``me``; None for any other event."""
    online: tuple[str, ...]
    offline: tuple[str, ...]
    if isinstance(event, Presence):
        online, offline = ((event.user,), ()) if event.online else ((), (event.user,))
    elif isinstance(event, PresenceBatch):
        online, offline = event.online, event.offline
    else:
        return None
    return [u for u in online if u != me], [u for u in offline if u != me]


def presence_text(online: Sequence[str], offline: Sequence[str]) -> str | None:
    """``bob and carol are online; dave is offline``, escaped; a morning's login storm reads
    ``alice, bob, carol, dave, erin and 37 others are online``. None when both are empty."""
    parts = []
    for names, state in ((online, "online"), (offline, "offline")):
        if not names:
            continue
        shown = [escape(n) for n in names[:PRESENCE_NAMES]]
        rest = len(names) - len(shown)
        listed = (
            f"{', '.join(shown)} and {rest} other{'s' if rest > 1 else ''}" if rest
            else shown[0] if len(shown) == 1
            else f"{', '.join(shown[:-1])} and {shown[-1]}"
        )  # fmt: skip
        parts.append(f"{listed} {'is' if len(names) == 1 else 'are'} {state}")
    return "; ".join(parts) or None


def unread_summary(conversations: Iterable[Conversation], cap: int) -> str | None:
    """``3 unread in #ops (1 mention), 1 in @carol``; None when nothing is unread.

    ``cap`` is the server's count limit: a count that reaches it reads ``1000+``.
    """
    parts = []
    for item in conversations:
        if item.count <= 0:
            continue
        where = f"#{escape(item.room)}" if item.room else f"@{escape(item.peer or '?')}"
        count = f"{item.count}+" if item.count >= cap else str(item.count)
        part = f"{count} in {where}"
        if item.mentions:
            part += f" ({item.mentions} mention{'s' if item.mentions > 1 else ''})"
        parts.append(part)
    if not parts:
        return None
    return f"{parts[0].replace(' in ', ' unread in ', 1)}{''.join(', ' + p for p in parts[1:])}"


def conversation_line(item: Conversation, cap: int) -> str:
    """``#ops  3 unread (1 mention), last Dec 01 09:12``: one line of ``/rooms``, escaped."""
    where = f"#{escape(item.room)}" if item.room else f"@{escape(item.peer or '?')}"
    parts = [where]
    if item.count > 0:
        count = f"{item.count}+" if item.count >= cap else str(item.count)
        mentions = f" ({item.mentions} mention{'s' if item.mentions > 1 else ''})"
        parts.append(f"{count} unread{mentions if item.mentions else ''}")
    if item.last_ts is not None:
        parts.append(f"last {local_time(item.last_ts)}")
    return "  ".join(parts)


def invitation_line(item: Invitation) -> str:
    """``#ops (private) from alice, Dec 01 09:12: /join ops``: a pending invitation, escaped."""
    room = escape(item.room)
    private = " (private)" if item.private else ""
    topic = f" [{escape(item.topic)}]" if item.topic else ""
    return f"#{room}{private}{topic} from {escape(item.by)}, {local_time(item.ts)}: /join {room}"


def member_line(members: Sequence[RoomMember]) -> str:
    """``alice (owner), bob (moderator, offline), carol (muted)``: a room's members, escaped;
    plain members who are online say nothing more."""
    parts = []
    for member in members:
        notes = [member.role] if member.role != "member" else []
        notes += [] if member.online else ["offline"]
        notes += ["muted"] if member.muted else []
        parts.append(escape(member.name) + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def system_line(text: str, *, style: str = "class:system") -> FormattedText:
    """A local notice (joins, reconnects, command output), a heading (``class:heading``) or
    the echo of a command (``class:echo``); ``text`` must be escaped already."""
    marker = {"class:echo": "»", "class:heading": "──"}.get(style, "--")
    return FormattedText([(style, f"{marker} {text}")])


def pending_line(body: str, target: str) -> FormattedText:
    """A message typed but not yet acknowledged by the server (a file's may have no text)."""
    return FormattedText(
        [("class:pending", f"  … {escape(target)} {escape(body or '(a file)')}  (sending)")]
    )


def prompt_text(
    above: Iterable[StyleAndTextTuples], reconnect: tuple[int, float] | None, where: str,
    user: str,
) -> FormattedText:  # fmt: skip
    """The prompt: the lines ``above`` it (pending messages, transfers), the reconnect
    countdown (``(attempt, seconds left)``) if offline, then ``[room] user> ``."""
    parts: StyleAndTextTuples = []
    for line in above:
        parts.extend(line)
        parts.append(("", "\n"))
    if reconnect is not None:
        attempt, left = reconnect
        when = f"in {left:.0f} s" if left >= 0.5 else "now"
        parts.append(("class:status", f" offline: reconnecting {when} (attempt {attempt}) "))
        parts.append(("class:system", " what you type is sent once connected\n"))
    parts.append(("class:prompt", f"[{escape(where)}] {escape(user)}> "))
    return FormattedText(parts)
