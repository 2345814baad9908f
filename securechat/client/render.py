"""Pure formatting for the terminal: safe text, local times and styled lines.

Everything a remote peer controls (bodies, names, room names, server messages) passes
through :func:`escape` (securechat.client.escaping) before it reaches the terminal, so
nobody can move the cursor, retitle the window or hide text with control characters, ANSI
sequences, bidi overrides or invisible characters. Lines are prompt_toolkit style
fragments; the style classes are in ``STYLE``.
"""

from __future__ import annotations

import datetime as dt
import re

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import Style

from securechat.client.escaping import escape
from securechat.protocol.messages import Message

__all__ = [
    "STYLE",
    "conversation",
    "escape",
    "local_time",
    "mentions",
    "message_line",
    "pending_line",
    "system_line",
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
    }
)


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


def conversation(message: Message, me: str) -> str:
    """Where a message belongs: ``#room``, or ``@peer`` for a direct message."""
    if message.room is not None:
        return f"#{message.room}"
    return f"@{message.to if message.sender == me else message.sender}"


def message_line(message: Message, me: str, *, now: dt.datetime | None = None) -> FormattedText:
    """One chat message, e.g. ``12:01 #general bob: hi`` or ``12:02 (dm) bob: psst``.

    Own messages, direct messages and mentions of ``me`` each get their own style.
    """
    own = message.sender == me
    if message.room is not None:
        where, kind = f"#{message.room}", "own" if own else ""
    else:
        where, kind = (f"(dm → {message.to})" if own else "(dm)"), "own" if own else "dm"
    body_style = f"class:{kind}" if kind else ""
    if not own and mentions(message.body, me):
        body_style = "class:mention"
    body = escape(message.body, keep_newlines=True).replace("\n", "\n      ")
    return FormattedText(
        [
            ("class:time", f"{local_time(message.ts, now=now)} "),
            ("class:room", f"{escape(where)} "),
            (f"class:{kind}.sender" if kind else "class:sender", f"{escape(message.sender)}: "),
            (body_style, body),
        ]
    )


def system_line(text: str, *, style: str = "class:system") -> FormattedText:
    """A local notice (joins, reconnects, command output); ``text`` must be escaped already."""
    marker = "»" if style == "class:echo" else "--"
    return FormattedText([(style, f"{marker} {text}")])


def pending_line(body: str, target: str) -> FormattedText:
    """A message typed but not yet acknowledged by the server."""
    return FormattedText([("class:pending", f"  … {escape(target)} {escape(body)}  (sending)")])
