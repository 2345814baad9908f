"""``eventually()``: wait for something another thread or process makes true, with one bound.

Tests wait for the server's threads, files and logs; a loaded machine makes each wait
longer, never shorter. So every wait has the same generous default (:data:`TIMEOUT` x 3)
and says, when it gives up, what never became true.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tests.conftest import TIMEOUT

T = TypeVar("T")

#: The default bound: far above what any wait takes, so a slow run is slow, not red.
EVENTUALLY = 3 * TIMEOUT


def eventually(
    condition: Callable[[], T | None],
    what: str | Callable[[], str],
    *,
    timeout: float = EVENTUALLY,
    interval: float = 0.05,
) -> T:
    """The first truthy value ``condition()`` returns, checking every ``interval`` s.

    Raises:
        AssertionError: it stayed falsy for ``timeout`` s; the message says ``what`` never
            became true (a callable is asked then, to show the state at that moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"never became true in {timeout:g} s: {said}")
        time.sleep(interval)
