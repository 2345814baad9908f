"""Who may do what in a room: the one permission table, and the refusals it makes.

Roles rank member < moderator < owner. A server admin (``users.is_admin``) acts as an
owner in every room without being in it; the console (``securechat room ...``) is such an
admin. ``PERMISSIONS`` names the least role each action needs; everything that decides
whether a request about a room is allowed reads it, in the server and the command line.

Two more rules, about the target of an action: a moderator cannot act on the owner, nor
delete the owner's messages (``OWNER_PROTECTED``), and nobody kicks, bans, mutes or
unmutes themselves. A private
room is seen only by its members and admins: to everyone else it does not exist, and
every refusal about it is :func:`no_such_room`'s, byte for byte the one for a room that
does not exist.
"""

from __future__ import annotations

import enum

from securechat.errors import Forbidden, NoSuchRoom, NotMember


class Role(enum.IntEnum):
    NONE = 0  # not a member
    MEMBER = 1
    MODERATOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        """The role as the protocol spells it (``joined.role``)."""
        return self.name.lower()


#: The least role each action needs in the room it names; docs/protocol.md, "Roles".
PERMISSIONS: dict[str, Role] = {
    "send": Role.MEMBER,  # and not muted
    "history": Role.MEMBER,
    "read": Role.MEMBER,
    "leave": Role.MEMBER,  # an owner hands the room over first, unless last to leave
    "edit": Role.MEMBER,  # one's own messages
    "delete_own": Role.MEMBER,
    "invite": Role.MODERATOR,
    "kick": Role.MODERATOR,
    "ban": Role.MODERATOR,
    "unban": Role.MODERATOR,
    "mute": Role.MODERATOR,
    "unmute": Role.MODERATOR,
    "topic": Role.MODERATOR,
    "delete_others": Role.MODERATOR,  # others' messages in the room
    "mention_all": Role.MODERATOR,  # @room (every member) and @here (those online)
    "op": Role.OWNER,
    "deop": Role.OWNER,
    "private": Role.OWNER,
    "public": Role.OWNER,
    "transfer": Role.OWNER,
    "delete": Role.OWNER,  # the room, with everything in it
}

#: Actions a moderator may not take against the owner (an admin may), as refusals say them.
OWNER_PROTECTED: dict[str, str] = {
    "kick": "kick the owner of",
    "ban": "ban the owner of",
    "mute": "mute the owner of",
    "deop": "deop the owner of",
    "delete_others": "delete the owner's messages in",
}
#: Actions nobody takes against themselves.
NOT_ON_ONESELF = frozenset({"kick", "ban", "mute", "unmute"})

_DOING = {
    "invite": "invite",
    "kick": "kick",
    "ban": "ban",
    "unban": "unban",
    "mute": "mute",
    "unmute": "unmute",
    "topic": "set its topic",
    "delete_others": "delete others' messages",
    "mention_all": "mention @room or @here",
    "op": "name moderators",
    "deop": "remove moderators",
    "private": "make it private",
    "public": "make it public",
    "transfer": "hand it over",
    "delete": "delete it",
}


def acting_role(role: Role, *, is_admin: bool) -> Role:
    """The role an actor acts with: an admin's is the owner's, member or not."""
    return Role.OWNER if is_admin else role


def may_see(*, private: bool, role: Role, is_admin: bool) -> bool:
    """Whether the room exists for this user: a public room, or one they are in (or admin)."""
    return not private or role >= Role.MEMBER or is_admin


def no_such_room(room: str) -> NoSuchRoom:
    """The refusal for a room that does not exist, or that the asker may not see."""
    return NoSuchRoom(f"no room {room!r}")


def not_member(room: str) -> NotMember:
    return NotMember(f"you are not in room {room!r}; join it first")


def check(action: str, room: str, *, role: Role, is_admin: bool) -> None:
    """Allow ``action`` in ``room`` (which the actor may see) to one of ``role``, or raise.

    Raises:
        NotMember: the action needs membership and the actor is not a member.
        Forbidden: the actor's role is too low; the message names the role needed.
    """
    needed = PERMISSIONS[action]
    if acting_role(role, is_admin=is_admin) >= needed:
        return
    if needed is Role.MEMBER:
        raise not_member(room)
    who = "moderators" if needed is Role.MODERATOR else "the owner"
    raise Forbidden(f"only {who} of #{room} can {_DOING[action]}")


def check_target(
    action: str, room: str, *, actor: str, target: str, actor_role: Role, target_role: Role,
    is_admin: bool,
) -> None:  # fmt: skip
    """The rules about whom ``action`` may be taken against (after :func:`check`).

    Raises:
        Forbidden: oneself, or the owner by a moderator.
    """
    if action in NOT_ON_ONESELF and actor == target:
        raise Forbidden(f"you cannot {action} yourself")
    if (
        action in OWNER_PROTECTED
        and target_role is Role.OWNER
        and acting_role(actor_role, is_admin=is_admin) < Role.OWNER
    ):
        raise Forbidden(f"moderators cannot {OWNER_PROTECTED[action]} #{room}")
