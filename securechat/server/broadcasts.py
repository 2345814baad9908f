"""``@room`` and ``@here`` in a send: who may, how often, and whom they reach.

The rule of what a body says is the protocol's (protocol/mentions.py ``broadcast``). Here
the server grants it: only a room's owners and moderators (and admins, who act as owners
everywhere) may (``mention_all`` in permissions.py), each user at most
``room_mention_burst`` at once and then one per ``room_mention_interval`` seconds, over
all rooms. A granted ``@room`` reaches every member and ``@here`` the members online
(on any node) at the send, as the hub sees them; the group commit records those mentions
with the message (store/mentions.py). An edit never widens them (store/edits.py).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import MentionLimited
from securechat.permissions import Role, check
from securechat.protocol.mentions import broadcast
from securechat.server.hub import Hub
from securechat.server.ratelimit import SharedBuckets


class Caller(Protocol):
    @property
    def user(self) -> str: ...

    @property
    def account(self) -> Account: ...


class RoomMentions:
    """Grants ``@room`` / ``@here``; one per server (its buckets are shared by threads)."""

    def __init__(self, hub: Hub, limits: Limits) -> None:
        self._hub = hub
        self._buckets = SharedBuckets(
            rate=1.0 / limits.room_mention_interval, burst=limits.room_mention_burst
        )

    def reach(self, caller: Caller, room: str, body: str) -> tuple[str, ...]:
        """Whom ``body``'s ``@room`` or ``@here`` reaches in ``room`` (a member's send);
        () when it has neither.

        Raises:
            Forbidden: the caller is a plain member. MentionLimited: too often.
        """
        kind = broadcast(body)
        if kind is None:
            return ()
        standing = self._hub.standing(room, caller.user)
        role = Role.NONE if standing is None else standing.role
        check("mention_all", room, role=role, is_admin=caller.account.is_admin)
        wait = self._buckets.take(caller.account.id, time.monotonic())
        if wait:
            raise MentionLimited(
                f"@room and @here are limited: try again in {math.ceil(wait)} s",
                retry_after=round(wait, 3),
            )
        members, online, _ = self._hub.joined_view(room, caller.user)
        return tuple(online if kind == "here" else members)
