"""The idle workload: how many idle sessions one server holds, level by level.

At each level the sessions not yet open are logged in, distinct users each: colleagues
of some standing, members of ``#general`` since their first day (the throwaway database
says so before the server starts), as on a morning; with ``--first-logins`` they are new,
and each one's first login joins ``#general``, which every member online hears of (*n*²/2
room events for *n* new colleagues). The bench then waits until the server
is quiet (:mod:`securechat.bench.quiet`: what the logins set off has been written) and
says how long that took, reads the server's CPU over a few seconds in which the sessions
only sit there (heartbeats, timers), and counts the frames the sessions received so far,
presence among them. Then a fresh probe session must log in and get quick ``pong``
replies, and the server's memory and threads are read. The probe uses the sessions' port:
the web port with ``--transport ws``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from securechat.bench.commands import OpenResult, Role, SessionSpec, Transport
from securechat.bench.harness import BenchTimeout, cpu_seconds, memory_mib
from securechat.bench.pool import WorkerPool
from securechat.bench.probe import open_probe
from securechat.bench.quiet import LIMIT_S, QUIET_PCT, wait_until_quiet
from securechat.bench.report import Check, Report
from securechat.bench.run import Run, open_sessions
from securechat.bench.stats import summarize_values
from securechat.bench.target import Target
from securechat.config import ServerConfig
from securechat.errors import SecureChatError
from securechat.store import bulk
from securechat.store.database import open_database

HOLD_S = 5.0  # the server's CPU is measured over this much quiet holding
ROOM = ServerConfig().default_rooms[0]  # the default room, which every colleague is in


def colleagues(server: dict[str, Any], users: int) -> Callable[[str, Target], None]:
    """Makes the ``users`` bench users members of ``#general`` before the server starts, as their
    first logins would have (on a first day, not this morning); says so in ``server``."""

    def prepare(db_url: str, target: Target) -> None:
        database = open_database(db_url)
        try:
            ids = bulk.user_ids(database, [target.user(i) for i in range(users)])
            bulk.add_rooms(database, {ROOM: ids})
        finally:
            database.dispose()
        server["users"] = f"{len(ids):,} members of #{ROOM} since before the start"

    return prepare


def idle_workload(run: Run, server: dict[str, Any]) -> Report:
    """Hold ever more idle sessions, checking at each level that the server still answers."""
    p = run.params
    levels = sorted(p.levels)
    report = Report("idle", server, {"levels": levels, "processes": p.processes})
    t = run.target
    fresh_user = t.user(max(levels))
    rows: list[list[str]] = []
    reached = 0
    report.results["levels"] = []
    with run.pool("idle") as pool:
        held = 0
        for level in levels:
            specs = [SessionSpec(t.user(i), t.password, Role.IDLE) for i in range(held, level)]
            started = time.monotonic()
            try:
                # Logins slow down as sessions grow (a first login joins #general: all online hear).
                opened = open_sessions(run, pool, specs, f"opening sessions up to {level}", 0.6)
            except BenchTimeout as exc:
                report.failures.append(f"{level} sessions: {exc.message}")
                break
            open_s = time.monotonic() - started
            held = level
            quiet_s = _quiet_after(run.server_pid)
            held_cpu = _held_cpu_pct(run.server_pid)
            frames = _frames_per_session(pool, level)
            entry = _idle_level(run, pool, fresh_user, level, opened, open_s)
            entry.update(server_held_cpu_pct=held_cpu, quiet_s=quiet_s, **frames)
            report.results["levels"].append(entry)
            quiet = "no" if quiet_s is None and run.server_pid else f"{quiet_s}"
            rows.append([str(level), f"{open_s:.1f}", quiet, f"{entry['ping_max_ms']}",
                         entry["fresh_login"], f"{entry.get('server_rss_mib')}",
                         f"{entry.get('server_hwm_mib')}", f"{entry.get('server_threads')}",
                         f"{held_cpu}", f"{frames['frames_per_session']}",
                         f"{frames['presence_per_session']}",
                         "yes" if entry["ok"] else "no"])  # fmt: skip
            if not entry["ok"]:
                report.failures += entry["problems"]
                break
            reached = level
    report.results["level_reached"] = reached
    report.tables.append(("idle sessions", ["sessions", "open s", "quiet s", "ping max ms",
                          "fresh login", "RSS MiB", "peak MiB", "threads", "held CPU %",
                          "frames/session", "presence/session", "ok"], rows))  # fmt: skip
    report.notes.append(
        f"quiet s: from the last login until one second of server CPU stayed under "
        f'{QUIET_PCT:.0f} % of a core ("no": not within {LIMIT_S:.0f} s; held CPU is '
        "then measured anyway); frames/session: frames each session received so far, "
        "pings and room events included"
    )
    report.rows.append(("level reached", str(reached)))
    hwm = {e["sessions"]: e.get("server_hwm_mib") for e in report.results["levels"]}
    if p.transport is Transport.WS:
        measured = f"reached {reached}, peak {hwm.get(500)} MiB"
        met = None if max(levels) < 500 else reached >= 500
        report.checks.append(Check("idle 500 (web)", "500 browser sessions held", measured, met))
    for sessions, goal in (
        (2000, "2,000 sessions, RSS < 300 MB"),
        (5000, "5,000 sessions, RSS < 300 MB (stretch)"),
    ):
        peak = hwm.get(sessions)
        met = (
            None
            if sessions not in hwm
            else reached >= sessions and (peak is None or peak * 1.048576 < 300)
        )
        report.checks.append(
            Check(f"idle {sessions}", goal, f"reached {reached}, peak {peak} MiB", met)
        )
    return report


def _quiet_after(server_pid: int | None) -> float | None:
    """Seconds until the server went quiet after the last login (None: not measured, or
    not quiet within LIMIT_S)."""
    if not server_pid:
        return None
    quiet_s = wait_until_quiet(lambda: cpu_seconds(server_pid))
    return None if quiet_s is None else round(quiet_s, 1)


def _frames_per_session(pool: WorkerPool, level: int) -> dict[str, float]:
    """What the sessions received so far, on average: all frames, and presence frames."""
    pool.send_all("status")
    statuses = pool.collect("status", timeout=30)
    return {
        "frames_per_session": round(sum(c["frames"] for c in statuses) / level, 1),
        "presence_per_session": round(sum(c["presence_frames"] for c in statuses) / level, 1),
    }


def _held_cpu_pct(server_pid: int | None) -> float | None:
    """The server's CPU, in % of one core, while the open sessions only sit there."""
    if not server_pid:
        return None
    started, cpu0 = time.monotonic(), cpu_seconds(server_pid)
    time.sleep(HOLD_S)
    return round(100 * (cpu_seconds(server_pid) - cpu0) / (time.monotonic() - started), 1)


def _idle_level(
    run: Run, pool: WorkerPool, fresh_user: str, level: int,
    opened: OpenResult, open_s: float,
) -> dict[str, Any]:  # fmt: skip
    problems = list(opened.failures[:10])
    if len(opened.failures) > 10:
        problems.append(f"... {len(opened.failures)} sessions failed to open in all")
    # A fresh session each level: a long-lived probe would need to answer heartbeats.
    pings: list[float] = []
    fresh = "failed"
    t = run.target
    try:
        with open_probe(t, run.params.transport) as probe:
            fresh = f"{probe.login(fresh_user, t.password) * 1000:.1f} ms"
            pings = [probe.ping() for _ in range(10)]
    except SecureChatError as exc:  # refused, lost or too slow: this level's problem
        problems.append(f"probe: {exc.message}")
    ping_max = max(pings, default=float("inf"))
    if pings and ping_max >= 1.0:
        problems.append(f"probe ping took {ping_max:.3f} s (limit 1 s)")
    pool.send_all("status")
    statuses = pool.collect("status", timeout=30)
    live = sum(c["sessions"] for c in statuses)
    if live < level:
        problems.append(f"only {live} of {level} sessions are still open")
        problems += [reason for c in statuses for reason in c["lost"]]
    entry: dict[str, Any] = {
        "sessions": level,
        "open_s": round(open_s, 2),
        "connect_to_welcome": summarize_values(opened.connect_ns),
        "ping_max_ms": round(ping_max * 1000, 2) if pings else None,
        "fresh_login": fresh,
        "ok": not problems,
        "problems": problems,
    }
    if run.server_pid:
        mem = memory_mib(run.server_pid)
        entry.update(server_rss_mib=mem.get("VmRSS"), server_hwm_mib=mem.get("VmHWM"),
                     server_threads=mem.get("Threads"))  # fmt: skip
    return entry
