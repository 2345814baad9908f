"""The mention rule: what in a message's text mentions a user, stated once.

The server counts mentions with it (store/mentions.py), the terminal highlights and rings
with it, and the page follows it through the conformance vectors in tests/vectors/
(``mentions.json``), which both languages run.

A mention is ``@`` that does not follow a name character (so ``bob@alice.example`` is an
address, not a mention) and the run of name characters after it, less trailing dots (so
``ping @alice.`` mentions alice). The run must then be a valid name (protocol/names.py),
compared in lowercase.
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


def mentions(body: str, user: str) -> bool:
    """Whether ``body`` mentions ``user``."""
    return user.lower() in mentioned_names(body)
