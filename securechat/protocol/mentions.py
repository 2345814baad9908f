"""The mention rule: what in a message's text mentions a user, stated once.

The server counts mentions with it (store/mentions.py), the terminal highlights and rings
with it, and the page follows it through the conformance vectors in tests/vectors/
(``mentions.json``), which both languages run.

A mention is ``@`` that does not follow a name character (so ``bob@alice.example`` is an
address, not a mention) and the run of name characters after it, less trailing dots (so
``ping @alice.`` mentions alice). The run must then be a valid name (protocol/names.py),
compared in lowercase.

Two names reach more than one person: ``@room`` mentions every member of the room and
``@here`` those online when it is sent (:data:`BROADCASTS`; :func:`broadcast` says which a
body holds, ``room`` winning). Only a room's owners and moderators (and admins) may use
them; the server refuses them from others, so a client may take them at their word: a
body with ``@room`` mentions the reader, one with ``@here`` mentions a reader who was
online to receive it (``online``: it came live, not from history or a catch-up).
"""

from __future__ import annotations

import re

from securechat.protocol.names import normalize_name

_MENTION = re.compile(r"(?<![A-Za-z0-9._-])@([A-Za-z0-9._-]+)")


def mention_spans(body: str) -> list[tuple[int, int, str]]:
    """Each mention in ``body``: its [start, end) (the ``@`` and the name, in code points)
    and the name."""
    if "@" not in body:
        return []
    spans = []
    for match in _MENTION.finditer(body):
        run = match.group(1).rstrip(".")
        name = normalize_name(run)
        if name is not None:
            spans.append((match.start(), match.start() + 1 + len(run), name))
    return spans


def mentioned_names(body: str) -> set[str]:
    """The names ``body`` mentions, lowercased."""
    return {name for _, _, name in mention_spans(body)}


BROADCASTS = ("room", "here")  # widest first


def broadcast(body: str) -> str | None:
    """``room`` or ``here`` when ``body`` mentions one of them (``room`` if both), else None."""
    names = mentioned_names(body)
    return next((name for name in BROADCASTS if name in names), None)


def mentions(body: str, user: str, *, online: bool = False) -> bool:
    """Whether ``body`` mentions ``user``: by name, by ``@room``, or by ``@here`` when
    ``online`` (the reader received it live)."""
    names = mentioned_names(body)
    return user.lower() in names or "room" in names or (online and "here" in names)
