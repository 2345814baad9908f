"""Password checks on a few low-priority threads, so a login storm leaves the CPU to chat.

An argon2id verification with the default parameters holds 64 MiB and, with parallelism
4, keeps four of libargon2's own threads busy for a good fraction of a second. Connection
threads hand the whole check to this pool and wait for its result, so

- at most ``workers`` checks run at once, which bounds their memory; and
- the workers raise their own ``nice`` value by 10 when they start. Linux schedules
  threads, not processes, so this lowers only them and the threads libargon2 starts
  from them, which inherit it: when a login storm and the chat both want the CPU, the
  threads that move messages get most of it (docs/performance.md, chat latency during
  a login storm).

Not ``SCHED_IDLE``, which would keep the chat's share even higher: a worker also runs
Python (the database lookups around the hash), and a ``SCHED_IDLE`` thread preempted
while it holds the GIL may wait for an idle core for hundreds of milliseconds, stalling
every other thread of the server behind it. A niced thread still gets its turn within
milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from securechat.errors import RateLimited

log = logging.getLogger("securechat.server")

T = TypeVar("T")

NICE_INCREMENT = 10


def _lower_priority() -> None:
    if not hasattr(os, "setpriority"):  # pragma: no cover - not POSIX
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + NICE_INCREMENT, 19))
    except OSError as exc:  # pragma: no cover - e.g. a sandbox without setpriority
        log.warning("cannot lower the priority of password checks: %s", exc)


class HashPool:
    def __init__(self, workers: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_lower_priority
        )

    def run(self, check: Callable[[], T], timeout: float) -> T:
        """``check()`` on a pool thread, if one comes free within ``timeout`` seconds.

        Raises:
            RateLimited: every worker stayed busy for ``timeout`` seconds.
            Whatever ``check`` raises.
        """
        future = self._executor.submit(check)
        try:
            try:
                return future.result(timeout=max(timeout, 0.0))
            except concurrent.futures.TimeoutError:
                if future.cancel():
                    raise RateLimited(
                        "the server is busy with other logins; try again", retry_after=1
                    ) from None
                return future.result()  # already running: it ends within one verification
        except concurrent.futures.CancelledError:  # close() while waiting: shutting down
            raise RateLimited("the server is shutting down; try again", retry_after=1) from None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
