"""The password hashing processes: idle priority, bounded, replaced when one dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2.exceptions import VerificationError

from securechat.config import HashParams
from securechat.errors import RateLimited
from securechat.server.hashpool import HashPool
from tests.eventually import eventually


@pytest.fixture
def pool() -> Iterator[HashPool]:
    hash_pool = HashPool(HashParams.for_tests(), workers=2)
    yield hash_pool
    hash_pool.close()


def test_hashing_runs_in_other_processes_at_idle_priority(pool: HashPool) -> None:
    workers = pool.start()
    assert workers
    for pid, scheduling in workers:
        assert pid != os.getpid()
        assert scheduling.startswith("SCHED_IDLE"), scheduling
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the server itself is untouched


def test_hash_and_verify_round_trip_with_argon2_errors_raised_here(pool: HashPool) -> None:
    stored = pool.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert pool.verify(stored, "correct horse") is True
    with pytest.raises(VerificationError):
        pool.verify(stored, "wrong horse")
    assert not pool.check_needs_rehash(stored)
    assert HashPool(HashParams(), workers=1).check_needs_rehash(stored)  # no process needed


def test_a_login_that_waits_too_long_for_a_slot_is_rate_limited() -> None:
    pool = HashPool(HashParams.for_tests(), workers=1)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pool.slot(timeout=30):
            taken.set()
            release.wait(30)  # held until the test is done: a slot() that ignored its timeout hangs

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(30)
        started = time.monotonic()
        with (
            pytest.raises(RateLimited, match="busy with other logins") as refused,
            pool.slot(timeout=0.2),
        ):
            pytest.fail("got a slot that was taken")
        assert 0.2 <= time.monotonic() - started < 20  # waited its 0.2 s, then gave up
        assert refused.value.retry_after == 1
    finally:
        release.set()
        holder.join(30)
        pool.close()
    with pool.slot(timeout=1):  # free again
        pass


def test_a_killed_process_costs_one_retry_then_new_ones_take_over(pool: HashPool) -> None:
    stored = pool.hash("correct horse")
    for pid in {pid for pid, _ in pool.start()}:
        os.kill(pid, signal.SIGKILL)
    assert "interrupted; try again" in _first_refusal(pool, stored).message
    assert pool.verify(stored, "correct horse") is True


def _first_refusal(pool: HashPool, stored: str) -> RateLimited:
    """The refusal a check gets once the pool has noticed its processes died."""

    def refusal() -> RateLimited | None:
        try:
            pool.verify(stored, "correct horse")
        except RateLimited as refused:
            return refused
        return None

    return eventually(refusal, "the pool noticed its killed hashing processes")


def test_after_close_checks_are_refused_not_hung(pool: HashPool) -> None:
    stored = pool.hash("correct horse")
    pool.close()
    with pytest.raises(RateLimited, match="shutting down"):
        pool.verify(stored, "correct horse")
    pool.close()  # idempotent


def test_hashing_processes_end_when_the_server_is_killed(tmp_path: Path) -> None:
    script = (
        "from securechat.config import HashParams\n"
        "from securechat.server.hashpool import HashPool\n"
        "pool = HashPool(HashParams.for_tests(), workers=2)\n"
        "print(*sorted({pid for pid, _ in pool.start()}), flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            workers = [int(pid) for pid in server.stdout.readline().split()]
            assert workers
        finally:
            server.kill()
            server.wait(5)
    eventually(
        lambda: not any(_running(pid) for pid in workers),
        lambda: f"hashing processes {[p for p in workers if _running(p)]} ended with the server",
    )


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its parent (init now) may reap it


def test_a_process_that_cannot_start_is_a_clear_error() -> None:
    script = (
        "import multiprocessing\n"
        "from securechat.config import HashParams\n"
        "from securechat.errors import ServerError\n"
        "from securechat.server.hashpool import HashPool\n"
        "multiprocessing.set_executable('/nonexistent/python3')\n"
        "try:\n"  # depending on timing it fails setting up or starting the process
        "    HashPool(HashParams.for_tests(), workers=1).start()\n"
        "except ServerError as exc:\n"
        "    print(exc.message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.startswith("cannot start the password hashing process:"), done
