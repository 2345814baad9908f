"""The rooms a team runs, as :class:`~securechat.client.api.Client` calls: creating one,
each moderation action (docs/protocol.md, "Moderation"), a room's members with their
roles and the user's pending invitations.

Each call is one request answered by one reply; :class:`TeamRooms` leaves the asking and
the waiting (:meth:`TeamRooms._request`) to the ``Client`` that inherits it.
"""

from __future__ import annotations

import abc
from typing import TypeVar

from securechat.client.paging import every_page
from securechat.protocol.membership import (
    GetInvitations,
    GetMembers,
    Invitation,
    InvitationList,
    MemberList,
    RoomMember,
)
from securechat.protocol.messages import Asked, Create, Done, Event, Joined, Moderate

__all__ = ["TeamRooms"]

T = TypeVar("T", bound=Event)


class TeamRooms(abc.ABC):
    """``create`` and ``moderate``, with one shortcut per moderation action."""

    @abc.abstractmethod
    def _request(self, request: Asked, kind: type[T]) -> T:
        """Ask the server ``request`` and wait for its reply, of type ``kind``."""

    def create(self, room: str, *, private: bool = False, topic: str | None = None) -> Joined:
        """Create ``room``, owned by us: public, or private (invitation only).

        Raises:
            RoomExists: the name is taken (perhaps by a private room we cannot see).
        """
        return self._request(Create(room=room, private=private, topic=topic), Joined)

    def moderate(
        self, room: str, action: str, *, user: str | None = None, topic: str | None = None
    ) -> Done:
        """One moderation action in ``room``: on ``user`` (invite, kick, ban, unban, mute,
        unmute, op, deop, transfer) or on the room (private, public, topic, delete).

        Raises:
            Forbidden: our role is too low, or the target is protected (the owner).
            NoSuchRoom, NoSuchUser, NotMember: see docs/protocol.md, "Moderation".
        """
        return self._request(Moderate(room=room, action=action, user=user, topic=topic), Done)

    def members(self, room: str) -> tuple[RoomMember, ...]:
        """``room``'s members by name, each with role, presence and whether muted.

        Raises:
            NoSuchRoom: no such room, or a private one we are not in.
        """

        def page(after: str | None) -> tuple[tuple[RoomMember, ...], bool]:
            reply = self._request(GetMembers(room=room, after=after), MemberList)
            return reply.members, reply.more

        return every_page(page, key=lambda member: member.name)

    def invitations(self) -> tuple[Invitation, ...]:
        """Our pending invitations, by room name: where ``join`` lets us in."""

        def page(after: str | None) -> tuple[tuple[Invitation, ...], bool]:
            reply = self._request(GetInvitations(after=after), InvitationList)
            return reply.invitations, reply.more

        return every_page(page, key=lambda invitation: invitation.room)

    def invite(self, room: str, user: str) -> Done:
        return self.moderate(room, "invite", user=user)

    def kick(self, room: str, user: str) -> Done:
        return self.moderate(room, "kick", user=user)

    def ban(self, room: str, user: str) -> Done:
        return self.moderate(room, "ban", user=user)

    def unban(self, room: str, user: str) -> Done:
        return self.moderate(room, "unban", user=user)

    def mute(self, room: str, user: str) -> Done:
        return self.moderate(room, "mute", user=user)

    def unmute(self, room: str, user: str) -> Done:
        return self.moderate(room, "unmute", user=user)

    def op(self, room: str, user: str) -> Done:
        """Make ``user`` a moderator of ``room`` (owner only)."""
        return self.moderate(room, "op", user=user)

    def deop(self, room: str, user: str) -> Done:
        return self.moderate(room, "deop", user=user)

    def transfer(self, room: str, user: str) -> Done:
        """Hand ``room`` over to ``user`` (a member); we stay on as a moderator."""
        return self.moderate(room, "transfer", user=user)

    def set_topic(self, room: str, topic: str) -> Done:
        """Set (an empty ``topic``: clear) the room's topic."""
        return self.moderate(room, "topic", topic=topic)

    def set_private(self, room: str, private: bool = True) -> Done:
        return self.moderate(room, "private" if private else "public")

    def delete_room(self, room: str) -> Done:
        """Delete ``room`` and everything in it (owner or admin)."""
        return self.moderate(room, "delete")
