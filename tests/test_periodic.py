"""The periodic helper the server's chores run on: its interval, wake-ups, errors and stop."""

from __future__ import annotations

import logging
import threading

import pytest

from securechat.server.periodic import Periodic
from tests.conftest import TIMEOUT

#: Longer than any test waits: a run that happens is one a wake-up or at_start caused.
NEVER = 3600.0


class Runs:
    """An action that counts its runs and signals each one."""

    def __init__(self, *, fail_first: bool = False, next_delay: float | None = None) -> None:
        self.count = 0
        self.ran = threading.Semaphore(0)
        self._fail_first = fail_first
        self._next_delay = next_delay

    def __call__(self) -> float | None:
        self.count += 1
        self.ran.release()
        if self._fail_first and self.count == 1:
            raise RuntimeError("a bug in the action")
        return self._next_delay

    def wait(self) -> None:
        assert self.ran.acquire(timeout=TIMEOUT), "the action did not run"


def test_periodic_runs_its_action_every_interval_until_stopped() -> None:
    runs = Runs()
    periodic = Periodic("test-periodic", runs, interval=0.01)
    periodic.start()
    for _ in range(3):
        runs.wait()
    periodic.stop()
    stopped_at = runs.count
    assert not periodic._thread.is_alive()
    assert runs.count == stopped_at  # nothing after stop() returned


def test_periodic_runs_at_start_only_when_asked() -> None:
    early, late = Runs(), Runs()
    first = Periodic("at-start", early, interval=NEVER, at_start=True)
    second = Periodic("after-an-interval", late, interval=NEVER)
    first.start()
    second.start()
    early.wait()
    first.stop()
    second.stop()
    assert (early.count, late.count) == (1, 0)


def test_a_wake_runs_the_action_now_and_one_during_a_run_is_not_lost() -> None:
    entered, release = threading.Event(), threading.Event()
    runs: list[int] = []
    done = threading.Semaphore(0)

    def action() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            entered.set()
            assert release.wait(TIMEOUT)
        done.release()

    periodic = Periodic("wake", action, interval=NEVER)
    periodic.start()
    periodic.wake()
    assert entered.wait(TIMEOUT)
    periodic.wake()  # while the first run is still going
    release.set()
    assert done.acquire(timeout=TIMEOUT)
    assert done.acquire(timeout=TIMEOUT), "the wake during the run was lost"
    periodic.stop()
    assert len(runs) == 2


def test_the_action_sets_the_next_delay() -> None:
    runs = Runs(next_delay=0.01)  # the usual interval is never: the returned delay rules
    periodic = Periodic("delay", runs, interval=NEVER, at_start=True)
    periodic.start()
    for _ in range(3):
        runs.wait()
    periodic.stop()


def test_an_unexpected_error_is_logged_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = Runs(fail_first=True)
    periodic = Periodic("failing", runs, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="securechat.server"):
        periodic.start()
        runs.wait()
        runs.wait()  # ran again after the error
        periodic.stop()
    assert "internal error in the failing thread" in caplog.text
    assert "a bug in the action" in caplog.text


def test_stop_is_idempotent_and_works_before_start() -> None:
    periodic = Periodic("never-started", Runs(), interval=NEVER)
    periodic.stop()
    periodic.stop()
