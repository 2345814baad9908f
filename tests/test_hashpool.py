"""The pool that runs password checks: lower priority, bounded, and a clear refusal when busy."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from securechat.errors import RateLimited
from securechat.server.hashpool import NICE_INCREMENT, HashPool


@pytest.fixture
def pool() -> Iterator[HashPool]:
    hash_pool = HashPool(1)
    yield hash_pool
    hash_pool.close()


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _nice_of_a_child_thread() -> int:
    """What a thread started from a worker gets, like libargon2's lanes."""
    seen: list[int] = []
    child = threading.Thread(target=lambda: seen.append(_nice()))
    child.start()
    child.join()
    return seen[0]


def test_checks_and_their_threads_run_at_a_lower_priority(pool: HashPool) -> None:
    mine = _nice()
    lowered = min(mine + NICE_INCREMENT, 19)
    assert pool.run(_nice, timeout=5) == lowered
    assert pool.run(_nice_of_a_child_thread, timeout=5) == lowered
    assert _nice() == mine  # the caller's own priority is untouched
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_errors_of_the_check_reach_the_caller(pool: HashPool) -> None:
    def fails() -> None:
        raise ValueError("wrong password")

    with pytest.raises(ValueError, match="wrong password"):
        pool.run(fails, timeout=5)


def test_a_check_that_waits_too_long_for_a_worker_is_rate_limited(pool: HashPool) -> None:
    release = threading.Event()
    busy = threading.Thread(target=pool.run, args=(release.wait, 5))
    busy.start()
    try:
        started = time.monotonic()
        with pytest.raises(RateLimited, match="busy with other logins") as refused:
            pool.run(lambda: "never runs", timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 2
        assert refused.value.retry_after == 1
    finally:
        release.set()
        busy.join(5)
    assert pool.run(lambda: "free again", timeout=5) == "free again"
