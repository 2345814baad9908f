"""Putting a person's room grants into effect, through whichever writer the caller has:
the server's committer (its hub follows at once) or the command line's own transaction
(a running server picks the rows up from the journal)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from securechat.directory.mapping import Grants
from securechat.errors import RequestError
from securechat.store import grants
from securechat.store.directory import DIRECTORY
from securechat.store.journal import Tx
from securechat.store.rooms import Outcome

__all__ = ["Perform", "place_rooms"]

log = logging.getLogger("securechat.directory")

#: Runs a team operation and returns its result (``Committer.perform`` or ``ChatStore.perform``).
Perform = Callable[[Callable[[Tx], Any]], Any]


def place_rooms(perform: Perform, name: str, given: Grants) -> list[str]:
    """Make ``name``'s memberships of the mapped rooms what ``given`` says; a line per
    change made (``"+dev"``, ``"-dev"``, ``"dev: moderator"``)."""
    changes: list[str] = []
    for room, role in sorted(given.rooms.items()):
        operation = functools.partial(
            grants.place, actor=DIRECTORY, room=room, user=name, role=role
        )
        try:
            outcome: Outcome = perform(operation)
        except RequestError as exc:
            log.warning("cannot place %s in #%s: %s", name, room, exc.message)
            continue
        if not outcome.changed:
            continue
        if outcome.added:
            changes.append(f"+{room}")
        elif outcome.removed:
            changes.append(f"-{room}")
        else:
            changes.append(f"{room}: {role}")
    return changes
