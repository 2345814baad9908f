"""Waiting for a server to go quiet: its CPU over a short window falls below a threshold.

The idle workload measures what holding sessions costs, so it must not start measuring
while the server is still writing the announcements of the last logins (presence, room
joins): it waits until one :data:`WINDOW_S` window of the server's CPU stays under
:data:`QUIET_PCT` of a core, up to :data:`LIMIT_S`, and reports how long that took. The
CPU reading and the clock are parameters, so the rule is tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

QUIET_PCT = 10.0  # of one core: above what idle sessions cost (pings), below any storm
WINDOW_S = 1.0  # one reading of the server's CPU
LIMIT_S = 60.0  # a server not quiet by then is reported as such, and measured anyway


def wait_until_quiet(
    cpu_seconds: Callable[[], float],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    quiet_pct: float = QUIET_PCT,
    window_s: float = WINDOW_S,
    limit_s: float = LIMIT_S,
) -> float | None:
    """Seconds until a window of ``cpu_seconds()`` (a process's CPU time so far) used less
    than ``quiet_pct`` of a core, counted from the call to the window's end; None if no
    window did within ``limit_s``."""
    started = clock()
    while True:
        begun, cpu0 = clock(), cpu_seconds()
        sleep(window_s)
        ended = clock()
        used_pct = 100 * (cpu_seconds() - cpu0) / max(ended - begun, 1e-9)
        if used_pct < quiet_pct:
            return ended - started
        if ended - started >= limit_s:
            return None
