"""Who is in a room and who is asked in (#26), both directions, with their decoders.

``invitations`` lists the user's pending invitations to rooms (so a reload, or another
device, shows them as the live ``room_event`` ``invite`` did); ``members`` lists a room's
members with their roles and presence. Both page by a key (``after``: a room name, a
user name) like ``people``, and a reply fits one frame. docs/protocol.md has the prose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from securechat.protocol.wire import Fields, WireMessage

ROLES = ("owner", "moderator", "member")

# --- requests (client -> server) -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GetInvitations(WireMessage):
    """The user's pending invitations, by room name; ``after`` pages on."""

    TYPE: ClassVar[str] = "invitations"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetMembers(WireMessage):
    """``room``'s members with their roles, by name; ``after`` pages on."""

    TYPE: ClassVar[str] = "members"
    room: str
    after: str | None = None
    ref: str | None = None


MembershipRequest = GetInvitations | GetMembers

# --- events (server -> client) --------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Invitation:
    """A pending invitation to ``room`` from ``by``, at ``ts`` (ISO 8601 UTC)."""

    room: str
    by: str
    ts: str
    private: bool | None = None
    topic: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class InvitationList(WireMessage):
    TYPE: ClassVar[str] = "invitations"
    invitations: tuple[Invitation, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomMember:
    """A member: ``role`` is one of ``ROLES``; ``muted`` only when true."""

    name: str
    role: str
    online: bool
    muted: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MemberList(WireMessage):
    TYPE: ClassVar[str] = "members"
    room: str
    members: tuple[RoomMember, ...]
    more: bool = False
    ref: str | None = None


MembershipEvent = InvitationList | MemberList

# --- decoding ------------------------------------------------------------------------


def _invitation(o: dict[str, Any]) -> Invitation:
    f = Fields({"type": "invitation", **o})
    return Invitation(
        room=f.text("room"), by=f.text("by"), ts=f.text("ts"), private=f.opt_boolean("private"),
        topic=f.opt_text("topic"),
    )  # fmt: skip


def _member(o: dict[str, Any]) -> RoomMember:
    f = Fields({"type": "member", **o})
    role = f.text("role")
    if role not in ROLES:
        raise f.fail(f"'role' must be one of {', '.join(ROLES)}")
    return RoomMember(
        name=f.text("name"), role=role, online=f.boolean("online"), muted=f.opt_boolean("muted")
    )


REQUESTS: dict[str, Callable[[Fields], MembershipRequest]] = {
    "invitations": lambda f: GetInvitations(after=f.opt_name("after"), ref=f.ref),
    "members": lambda f: GetMembers(room=f.name("room"), after=f.opt_name("after"), ref=f.ref),
}
EVENTS: dict[str, Callable[[Fields], MembershipEvent]] = {
    "invitations": lambda f: InvitationList(
        invitations=tuple(_invitation(o) for o in f.objects("invitations")),
        more=f.boolean("more"),
        ref=f.ref,
    ),
    "members": lambda f: MemberList(
        room=f.text("room"),
        members=tuple(_member(o) for o in f.objects("members")),
        more=f.boolean("more"),
        ref=f.ref,
    ),
}
