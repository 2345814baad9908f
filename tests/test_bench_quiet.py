"""The idle bench's quiet detection: CPU readings and a clock scripted, no server."""

from __future__ import annotations

from securechat.bench.quiet import wait_until_quiet


class _Server:
    """A process busy at ``busy_pct`` of a core until ``busy_until`` seconds, then at ``idle_pct``."""

    def __init__(
        self, busy_until: float, *, busy_pct: float = 100.0, idle_pct: float = 2.0
    ) -> None:
        self.now = 0.0
        self.cpu = 0.0
        self.busy_until = busy_until
        self.busy_pct = busy_pct
        self.idle_pct = idle_pct

    def clock(self) -> float:
        return self.now

    def cpu_seconds(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        steps = round(seconds / 0.1)
        for _ in range(steps):
            pct = self.busy_pct if self.now < self.busy_until else self.idle_pct
            self.cpu += 0.1 * pct / 100
            self.now = round(self.now + 0.1, 6)


def _wait(server: _Server, limit_s: float = 60.0) -> float | None:
    return wait_until_quiet(
        server.cpu_seconds, clock=server.clock, sleep=server.sleep, limit_s=limit_s
    )


def test_quiet_server_is_quiet_after_one_window() -> None:
    assert _wait(_Server(busy_until=0)) == 1.0


def test_quiet_is_not_reported_while_the_server_is_busy() -> None:
    # Busy for 7.5 s: the windows ending at 1..8 s each hold some busy time.
    assert _wait(_Server(busy_until=7.5)) == 9.0


def test_quiet_tolerates_the_cost_of_idle_sessions_but_not_a_storm() -> None:
    assert _wait(_Server(busy_until=0, idle_pct=8.0)) == 1.0
    assert _wait(_Server(busy_until=3, busy_pct=15.0, idle_pct=8.0)) == 4.0


def test_quiet_gives_up_at_the_limit_on_a_server_that_stays_busy() -> None:
    assert _wait(_Server(busy_until=1e9, busy_pct=30.0), limit_s=10) is None
