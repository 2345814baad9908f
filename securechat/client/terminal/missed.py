"""What you missed: the catch-up at login and the unread shown on entering a conversation.

The server counts, per conversation, what arrived after your read marker
(``conversations`` lists them all, the same on every device; ``unread`` those with news);
the login's part sits between a heading and a closing rule, so that the backlog is
not mistaken for what arrives live. These functions show it through the chat screen (screen.py) and, by showing it,
mark it read (``Screen.show_page``). Direct messages are for you, so the login shows
every unread one wherever you are; rooms only say how much is waiting until you enter.
"""

from __future__ import annotations

from securechat.client.terminal.commands import HISTORY_MAX
from securechat.client.terminal.render import escape, invitation_line, unread_summary
from securechat.client.terminal.screen import Screen, Target
from securechat.errors import SecureChatError
from securechat.protocol.messages import Conversation

__all__ = [
    "FOOTER",
    "HEADING",
    "RECENT",
    "SCREENFUL",
    "catch_up",
    "show_invitations",
    "show_unread",
]

HEADING = "catch-up: what you missed while away"  # above the login backlog
FOOTER = "end of catch-up; what arrives now shows below"
RECENT = 10  # messages of the current room shown at login when nothing there is unread
SCREENFUL = 20  # unread messages shown on entering a conversation; /history shows more

_NOTHING = Conversation(key="", count=0, mentions=0, last_read=0)


def catch_up(screen: Screen, cap: int) -> list[Conversation]:
    """The summary of what is unread (``cap``: the server's count limit), the unread
    direct messages, then the current conversation's unread (or, when nothing there is
    unread, its last messages). Returns every conversation the server holds for you.

    Raises:
        SecureChatError: the server could not be asked.
    """
    conversations = list(screen.client.conversations())
    for item in conversations:
        screen.reads.set_marker(item.key, item.last_read)
    unread = [item for item in conversations if item.count > 0]
    screen.say(f"{HEADING} ──", "class:heading")
    screen.say(unread_summary(unread, cap) or "no unread messages")
    show_invitations(screen)
    target = screen.target
    for item in unread:
        if item.peer is not None and Target(peer=item.peer) != target:
            show_unread(screen, Target(peer=item.peer), item)
    if target is not None:
        here = next((item for item in unread if item.key == target.key), _NOTHING)
        if not screen.enter(target, here):
            _show_recent(screen, target)
    screen.say(f"{FOOTER} ──", "class:heading")
    return conversations


def show_invitations(screen: Screen) -> None:
    """The pending invitations, if any: where ``/join`` lets you in (kept by the server, so
    they are here after a restart or on another device as well)."""
    invitations = screen.client.invitations()
    screen.known_rooms.update(item.room for item in invitations)
    if invitations:
        screen.say(f"pending invitations ({len(invitations)}):")
    for item in invitations:
        screen.say(f"  {invitation_line(item)}")


def show_unread(screen: Screen, target: Target, unread: Conversation | None) -> bool:
    """Show the unread messages of ``target`` (a screenful, the newest) and mark them read;
    False if there are none. ``unread`` is its entry in ``unread``, asked now when None."""
    client = screen.client
    if unread is None:
        unread = next((c for c in client.unread() if c.key == target.key), _NOTHING)
    if unread.count <= 0:
        return False
    query = target.history_query()
    page = client.history(**query, after=unread.last_read, limit=SCREENFUL)
    earlier = 0
    if page.more:  # more than a screenful: the newest, and how to see the rest
        page = client.history(**query, limit=SCREENFUL)
        seen = sum(1 for m in page.messages if m.sender != client.user and not m.deleted)
        earlier = max(unread.count - seen, 0)
    mentions = f", {unread.mentions} mentioning you" if unread.mentions else ""
    screen.say(f"unread in {escape(target.label)} ({unread.count}{mentions}):")
    if earlier:
        more = min(len(page.messages) + earlier, HISTORY_MAX)
        there = "" if target == screen.target else f"{_switch(target)}, then "
        screen.say(f"… {earlier} earlier unread not shown: {there}/history {more} shows them")
    screen.show_page(page.timeline(), target)
    return True


def _show_recent(screen: Screen, target: Target) -> None:
    try:
        page = screen.client.history(**target.history_query(), limit=RECENT)
    except SecureChatError as exc:
        screen.fail(f"cannot load recent messages: {escape(exc.message)}")
        return
    if page.messages:
        screen.say(f"the last messages in {escape(target.label)}, read already:")
    screen.show_page(page.timeline(), target)


def _switch(target: Target) -> str:
    """The command that makes ``target`` current."""
    return f"/room {escape(target.room)}" if target.room else f"/query {escape(target.peer or '')}"
