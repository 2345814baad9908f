"""What a person's directory groups give them here: the admin role and room roles.

Pure: groups in, grants out, for login, the sync and ``directory test`` alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from securechat.directory.settings import DirectoryConfig

__all__ = ["Grants", "grants_for"]

_RANK = {"member": 1, "moderator": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class Grants:
    """``is_admin`` None: no group maps to admin, so the role is left as it is.
    ``rooms``: every mapped room, with the role the person should have there (None: none).
    """

    is_admin: bool | None
    rooms: Mapping[str, str | None]


def grants_for(config: DirectoryConfig, groups: Collection[str]) -> Grants:
    """The grants of someone in ``groups`` (DNs of configured groups, as configured)."""
    rooms: dict[str, str | None] = dict.fromkeys(config.mapped_rooms())
    for group in config.groups:
        if group.dn not in groups:
            continue
        for room in group.rooms:
            held = rooms[room]
            if held is None or _RANK[group.role] > _RANK[held]:
                rooms[room] = group.role
    maps_admin = any(group.admin for group in config.groups)
    is_admin = any(group.admin and group.dn in groups for group in config.groups)
    return Grants(is_admin if maps_admin else None, rooms)
