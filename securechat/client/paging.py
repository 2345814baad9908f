"""Walking a list the server pages by key (rooms, unread, conversations, people, members,
invitations): one loop for every such call of the Client."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["every_page"]

Item = TypeVar("Item")


def every_page(
    page: Callable[[str | None], tuple[tuple[Item, ...], bool]], key: Callable[[Item], str]
) -> tuple[Item, ...]:
    """Every item of a list the server pages by key: ask again after the last key received
    while it says there is ``more`` (and the page was not empty)."""
    found: list[Item] = []
    after: str | None = None
    while True:
        items, more = page(after)
        found.extend(items)
        if not more or not items:
            return tuple(found)
        after = key(items[-1])
