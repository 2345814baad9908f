"""The five workloads: their parameters, and how each one drives the workers and the server.

Every workload runs against ``--host``/``--port`` when given (users ``PREFIX0``,
``PREFIX1``... must exist there), or else against a :class:`ThrowawayServer` it starts
and removes. Users are numbered so that no two roles in one run share a name. Each room
is fresh per run (its name carries a random tag), so earlier runs' members do not count.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from securechat.bench.commands import (
    Endpoint,
    FanoutPlan,
    FanoutResult,
    LoginResult,
    LoginSpec,
    OpenResult,
    Role,
    SessionSpec,
)
from securechat.bench.harness import (
    BenchError,
    BenchTimeout,
    ThrowawayServer,
    memory_mib,
    raise_fd_limit,
)
from securechat.bench.pool import Meter, WorkerPool
from securechat.bench.probe import ProbeClient
from securechat.bench.report import Check, PhaseProgress, Report
from securechat.bench.stats import summarize_ns, summarize_values
from securechat.bench.target import Target
from securechat.bench.worker.wire import body_overhead
from securechat.errors import ConfigError, ConnectionLost

WORKLOADS = ("fanout-rate", "fanout-max", "connect", "idle", "scaling")
MAX_SAMPLES = 2_000_000  # per worker and kind; beyond it a reservoir keeps percentiles fair
START_DELAY_S = 0.3  # lets every worker get the plan before the first scheduled send
# Limits of the self-started server that would otherwise throttle the generator itself.
BENCH_LIMITS: dict[str, float] = {
    "rate_per_second": 100_000,
    "max_unauthenticated": 100_000,
    "max_unauthenticated_per_ip": 100_000,
}


@dataclasses.dataclass(frozen=True, slots=True)
class BenchParams:
    """Command-line parameters; None means the workload's own default."""

    duration: float | None = None
    receivers: int | None = None
    senders: int | None = None
    rate: float | None = None
    messages: int | None = None
    body_bytes: int = 100
    window: int = 64
    processes: int = 2
    batch_generator: bool = True  # generator processes under SCHED_BATCH
    logins: int = 200
    resumes: int = 1000
    concurrency: int | None = None
    levels: tuple[int, ...] = (500, 1000, 2000, 5000)
    sizes: tuple[int, ...] = (10, 50, 200, 1000)
    plot: Path | None = None


@dataclasses.dataclass
class _Run:
    """What every workload function gets: where to send load, and how to show progress."""

    name: str
    target: Target
    server_pid: int | None
    params: BenchParams
    progress: PhaseProgress
    external: bool

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.target.host, self.target.port, str(self.target.ca_file))

    def room(self, label: str) -> str:
        return f"bench-{label}-{secrets.token_hex(3)}"

    def pool(self, room_label: str) -> WorkerPool:
        """The generator processes for one room, as the parameters ask."""
        p = self.params
        return WorkerPool(
            self.endpoint, self.room(room_label), p.processes, batch=p.batch_generator
        )

    def login_concurrency(self, default: int) -> int:
        # An external server keeps its login throttle, which admits 21 logins in flight per
        # address (20 free failures, each attempt counted as one until it is settled).
        cap = 20 if self.external else default
        return self.params.concurrency or min(default, cap)


# --- entry point ------------------------------------------------------------------------


def users_needed(name: str, p: BenchParams) -> int:
    """How many bench users a workload logs in (``PREFIX0`` .. ``PREFIX{n-1}``)."""
    receivers, senders = _fanout_shape(name, p)
    if name in ("fanout-rate", "fanout-max"):
        return receivers + senders
    if name == "connect":
        return receivers + senders + p.logins
    if name == "idle":
        return max(p.levels) + 1
    return max(p.sizes)


def run_workload(
    name: str,
    params: BenchParams,
    *,
    target: Target | None = None,
    server_pid: int | None = None,
    show_progress: bool = True,
) -> Report:
    """Run one workload and return its report; a self-started server is always removed.

    Raises:
        BenchError: the server or a worker failed in a way that stops the run.
        ConfigError: parameters that cannot work.
    """
    if name not in WORKLOADS:
        raise ConfigError(f"unknown workload {name!r}: choose one of {', '.join(WORKLOADS)}")
    _check_params(name, params)
    raise_fd_limit()
    report = _run_workload(name, params, target, server_pid, show_progress)
    report.notes.append(_generator_note(params))
    return report


def _run_workload(
    name: str,
    params: BenchParams,
    target: Target | None,
    server_pid: int | None,
    show_progress: bool,
) -> Report:
    with PhaseProgress(show_progress) as progress:
        if target is not None:
            server: dict[str, Any] = {
                "description": f"external: {target.host} port {target.port}",
                "pid": server_pid,
            }
            run = _Run(name, target, server_pid, params, progress, external=True)
            return _WORKLOAD_FUNCTIONS[name](run, server)
        progress.phase("starting a throwaway server", 1)
        cheap = name != "connect"
        with ThrowawayServer(
            users=users_needed(name, params), cheap_logins=cheap, limits=BENCH_LIMITS
        ) as started:
            assert started.target is not None
            info = started.info
            server = {
                "description": info.description,
                "pid": info.pid,
                "cheap_logins": info.cheap_logins,
                "limits": BENCH_LIMITS,
            }
            run = _Run(name, started.target, info.pid, params, progress, external=False)
            try:
                report = _WORKLOAD_FUNCTIONS[name](run, server)
            except BenchError as exc:
                raise BenchError(f"{exc.message}\nserver log:\n{started.log_tail()}") from exc
            report.notes.append(
                "logins use cheap argon2 parameters (t=1, m=1 MiB) on this self-started server"
                if cheap
                else "logins use the default argon2 parameters (t=3, m=64 MiB, p=4)"
            )
            return report


def _generator_note(p: BenchParams) -> str:
    if p.batch_generator:
        return (
            "generator processes run under SCHED_BATCH: they never preempt the server when a"
            " message wakes them, as clients on other machines cannot"
            " (--generator-policy normal to compare)"
        )
    return "generator processes run under the normal scheduling policy"


def _check_params(name: str, p: BenchParams) -> None:
    if p.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if p.batch_generator and not hasattr(os, "SCHED_BATCH"):
        raise ConfigError("--generator-policy batch needs Linux; use --generator-policy normal")
    receivers, senders = _fanout_shape(name, p)
    if senders < 1 or receivers < 0:
        raise ConfigError("need at least one sender and no negative receivers")
    if name == "scaling" and min(p.sizes) <= senders:
        raise ConfigError(f"every room size must exceed the {senders} senders")


def _fanout_shape(name: str, p: BenchParams) -> tuple[int, int]:
    """(receivers, senders) for the workloads that chat; the connect one chats in the background."""
    defaults = {"connect": (20, 2), "scaling": (0, 2)}.get(name, (50, 5))
    receivers = p.receivers if p.receivers is not None else defaults[0]
    senders = p.senders if p.senders is not None else defaults[1]
    return receivers, senders


# --- shared steps ---------------------------------------------------------------------------


def _split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    return [list(items[i::parts]) for i in range(parts)]


def _open(
    run: _Run, pool: WorkerPool, specs: list[SessionSpec], label: str, per_session_s: float = 0.2
) -> OpenResult:
    """Log ``specs`` in across the workers; every failure is in the result.

    Raises:
        BenchTimeout: not all of them were through after 60 s + ``per_session_s`` each.
    """
    run.progress.phase(label, len(specs))
    base = pool.progress().get("sessions", 0)
    pool.on_progress = lambda c: run.progress.update(c.get("sessions", 0) - base)
    concurrency = max(run.login_concurrency(64) // pool.size, 1)
    for index, part in enumerate(_split(specs, pool.size)):
        pool.send(index, "open", part, concurrency)
    timeout = 60 + len(specs) * per_session_s
    results: list[OpenResult] = pool.collect("opened", timeout=timeout)
    return OpenResult(
        connect_ns=[t for r in results for t in r.connect_ns],
        failures=[f for r in results for f in r.failures],
    )


def _chat_specs(run: _Run, receivers: int, senders: int, first_user: int) -> list[SessionSpec]:
    t, password = run.target, run.target.password
    specs = [SessionSpec(t.user(first_user + g), password, Role.SENDER, g) for g in range(senders)]
    specs += [
        SessionSpec(t.user(first_user + senders + i), password, Role.RECEIVER)
        for i in range(receivers)
    ]
    return specs


def _plan(run: _Run, senders: int, *, messages: int | None, rate: float | None) -> FanoutPlan:
    tag = f"-{secrets.token_hex(4)}-"
    if run.params.body_bytes < body_overhead(tag):
        raise ConfigError(f"--body-bytes must be at least {body_overhead(tag)}")
    return FanoutPlan(
        tag=tag,
        body_bytes=run.params.body_bytes,
        senders=senders,
        messages=messages,
        start_ns=time.monotonic_ns() + int(START_DELAY_S * 1e9),
        rate=rate,
        window=run.params.window,
        grace_s=10.0 if rate else 180.0,
        max_samples=MAX_SAMPLES,
    )


def _merge(results: list[FanoutResult], plan: FanoutPlan) -> dict[str, Any]:
    deliveries = sum(r.deliveries for r in results)
    first = min((r.first_send_ns for r in results if r.first_send_ns), default=plan.start_ns)
    last = max((r.last_event_ns for r in results), default=first)
    span = max(last - first, 1) / 1e9
    return {
        "messages_sent": sum(r.sent for r in results),
        "acks": sum(r.acked for r in results),
        "deliveries": deliveries,
        "expected_deliveries": sum(r.expected for r in results),
        "span_s": round(span, 3),
        "messages_per_s": round(sum(r.sent for r in results) / span, 1),
        "deliveries_per_s": round(deliveries / span, 1),
        "delivery_latency": summarize_ns(r.delivery_ns for r in results),
        "ack_latency": summarize_ns(r.ack_ns for r in results),
    }


def _fanout(
    run: _Run, pool: WorkerPool, senders: int, *, messages: int, rate: float | None
) -> tuple[dict[str, Any], list[str]]:
    """One fixed-size fan-out run on sessions already open; returns results and failures."""
    plan = _plan(run, senders, messages=messages, rate=rate)
    expected = pool.progress().get("sessions", 0) * messages * senders - messages * senders
    run.progress.phase("fan-out: deliveries", expected)
    pool.on_progress = lambda c: run.progress.update(c.get("deliveries", 0))
    meter = Meter(run.server_pid, pool)
    meter.start()
    pool.send_all("fanout", plan)
    timeout = messages * senders / (rate or 1e9) + plan.grace_s + 30
    results: list[FanoutResult] = pool.collect("fanout_done", timeout=timeout)
    usage = meter.stop()
    merged = _merge(results, plan)
    merged.update(usage)
    if "server_cpu_s" in usage and merged["deliveries"]:
        merged["server_cpu_us_per_delivery"] = round(
            usage["server_cpu_s"] * 1e6 / merged["deliveries"], 2
        )
    return merged, [f for r in results for f in r.failures]


def _latency_text(summary: Any) -> str:
    return f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms"


def _usage_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (
            "generator CPU",
            f"{results['generator_cpu_s']} s ({results['generator_cpu_pct']}% of a core)",
        )
    ]
    if "server_cpu_s" in results:
        rows.append(
            ("server CPU", f"{results['server_cpu_s']} s ({results['server_cpu_pct']}% of a core)")
        )
        mem = results["server_memory_mib"]
        rows.append(("server memory", f"RSS {mem.get('VmRSS')} MiB, peak {mem.get('VmHWM')} MiB, {mem.get('Threads')} threads"))  # fmt: skip
    if "server_cpu_us_per_delivery" in results:
        rows.append(("server CPU per delivery", f"{results['server_cpu_us_per_delivery']} µs"))
    return rows


# --- fanout-rate and fanout-max -----------------------------------------------------------


def _fanout_workload(run: _Run, server: dict[str, Any]) -> Report:
    p = run.params
    receivers, senders = _fanout_shape(run.name, p)
    is_rate = run.name == "fanout-rate"
    rate = (p.rate or 200.0) if is_rate else None
    if is_rate:
        messages = p.messages or max(int(rate * (p.duration or 10.0) / senders), 1)  # type: ignore[operator]
    else:
        messages = p.messages or 2000
    params: dict[str, Any] = {"receivers": receivers, "senders": senders, "messages_per_sender": messages,
                              "body_bytes": p.body_bytes, "processes": p.processes}  # fmt: skip
    params.update({"rate": rate} if is_rate else {"window": p.window})
    report = Report(run.name, server, params)
    with run.pool(run.name) as pool:
        opened = _open(run, pool, _chat_specs(run, receivers, senders, 0), "logging in")
        report.failures += opened.failures
        if opened.failures:
            return report
        results, failures = _fanout(run, pool, senders, messages=messages, rate=rate)
    report.results = results
    report.failures += failures
    if results["deliveries"] != results["expected_deliveries"]:
        report.failures.append(
            f"counted {results['deliveries']} deliveries, expected {results['expected_deliveries']}"
        )
    report.rows += [
        ("messages sent", f"{results['messages_sent']} ({results['messages_per_s']}/s)"),
        ("deliveries", f"{results['deliveries']} of {results['expected_deliveries']} expected"),
        ("deliveries/s", f"{results['deliveries_per_s']:,.0f}"),
        ("delivery latency", _latency_text(results["delivery_latency"])),
        ("ack latency", _latency_text(results["ack_latency"])),
        *_usage_rows(results),
    ]
    report.notes.append(
        f"a message reaches every other session in the room: {receivers} receivers and "
        f"{senders - 1} other senders, so deliveries = messages x {receivers + senders - 1}"
    )
    p99 = results["delivery_latency"]["p99_ms"]
    if is_rate:
        report.checks.append(Check("fanout-rate delivery p99", "< 3 ms", f"{p99} ms", p99 < 3))
    else:
        rate_now = results["deliveries_per_s"]
        report.checks.append(
            Check("fanout-max throughput", ">= 250,000 deliveries/s", f"{rate_now:,.0f}/s", rate_now >= 250_000)
        )  # fmt: skip
    return report


# --- connect ----------------------------------------------------------------------------------


def _storm(
    run: _Run, pool: WorkerPool, logins: list[LoginSpec], label: str
) -> tuple[list[LoginResult], float]:
    """One-shot logins spread over the workers; results and the wall time they took."""
    run.progress.phase(label, len(logins))
    pool.on_progress = lambda c: run.progress.update(c.get("logins", 0))
    per_worker = max(run.login_concurrency(8 if logins[0].password else 32) // pool.size, 1)
    started = time.monotonic()
    for index, part in enumerate(_split(logins, pool.size)):
        pool.send(index, "storm", part, per_worker)
    results: list[list[LoginResult]] = pool.collect("storm_done", timeout=60 + len(logins) * 1.0)
    return [r for part in results for r in part], time.monotonic() - started


def _connect_workload(run: _Run, server: dict[str, Any]) -> Report:
    p = run.params
    receivers, senders = _fanout_shape("connect", p)
    rate = p.rate or 50.0
    params = {"logins": p.logins, "resumes": p.resumes, "background_receivers": receivers,
              "background_senders": senders, "background_rate": rate, "processes": p.processes}  # fmt: skip
    report = Report("connect", server, params)
    first_storm_user = receivers + senders
    with run.pool("connect") as pool:
        opened = _open(run, pool, _chat_specs(run, receivers, senders, 0), "background sessions")
        report.failures += opened.failures
        if opened.failures:
            return report
        plan = _plan(run, senders, messages=None, rate=rate)
        meter = Meter(run.server_pid, pool)
        meter.start()
        pool.send_all("fanout", plan)
        time.sleep(START_DELAY_S + 1.0)  # the background chat runs alone for a moment first
        logins = [LoginSpec(run.target.user(first_storm_user + i), password=run.target.password)
                  for i in range(p.logins)]  # fmt: skip
        storm, storm_s = _storm(run, pool, logins, "password logins")
        pool.send_all("stop")
        total = sum(pool.collect("stopped", timeout=30))
        pool.send_all("expect", total)
        background: list[FanoutResult] = pool.collect("fanout_done", timeout=60)
        usage = meter.stop()
        tokens: dict[str, str | None] = {r.user: r.token for r in storm if r.ok and r.token}
        resumes: list[LoginResult] = []
        resume_s = 0.0
        if tokens:
            resumes, resume_s = _resume_rounds(run, pool, tokens, p.resumes)
    _connect_results(report, storm, storm_s, resumes, resume_s, tokens, p)
    chat = _merge(background, plan)
    chat.update(usage)
    report.results["background_chat"] = chat
    report.failures += [f for r in background for f in r.failures]
    if chat["deliveries"] != chat["expected_deliveries"]:
        report.failures.append(
            f"background chat: {chat['deliveries']} deliveries of {chat['expected_deliveries']}"
        )
    report.rows += [
        ("background chat during the storm", f"{chat['messages_sent']} messages, {chat['deliveries']} deliveries"),
        ("background delivery latency", _latency_text(chat["delivery_latency"])),
        *_usage_rows(chat),
    ]  # fmt: skip
    p99 = chat["delivery_latency"]["p99_ms"]
    report.checks.append(Check("chat p99 during a login storm", "< 10 ms", f"{p99} ms", p99 < 10))
    return report


def _resume_rounds(
    run: _Run, pool: WorkerPool, tokens: dict[str, str | None], count: int
) -> tuple[list[LoginResult], float]:
    """``count`` token logins, one per user per round, each using the newest token issued."""
    results: list[LoginResult] = []
    elapsed = 0.0
    users = sorted(tokens)
    while len(results) < count:
        batch = [LoginSpec(u, token=tokens[u]) for u in users[: count - len(results)]]
        done, took = _storm(run, pool, batch, "token resumes")
        elapsed += took
        results += done
        for r in done:
            if r.ok and r.token:
                tokens[r.user] = r.token
        if not any(r.ok for r in done):
            break
    return results, elapsed


def _connect_results(
    report: Report,
    storm: list[LoginResult],
    storm_s: float,
    resumes: list[LoginResult],
    resume_s: float,
    tokens: dict[str, str | None],
    p: BenchParams,
) -> None:
    ok = [r.elapsed_ns for r in storm if r.ok]
    report.failures += [f"login {r.user}: {r.error}" for r in storm if not r.ok]
    logins = {
        "count": len(storm),
        "ok": len(ok),
        "wall_s": round(storm_s, 3),
        "logins_per_s": round(len(ok) / storm_s, 1),
        "connect_to_welcome": summarize_values(ok),
    }
    report.results["password_logins"] = logins
    report.rows += [
        ("password logins", f"{len(ok)}/{len(storm)} in {storm_s:.2f} s = {logins['logins_per_s']}/s"),
        ("TCP connect to welcome", _latency_text(logins["connect_to_welcome"])),
    ]  # fmt: skip
    if not tokens:
        report.results["token_resumes"] = {"supported": False}
        report.rows.append(("token resumes", "not supported by this server (welcome has no token)"))
        report.checks.append(
            Check("1,000 token resumes", "< 3 s", "not supported by this server", None)
        )
        return
    good = [r.elapsed_ns for r in resumes if r.ok]
    report.failures += [f"resume {r.user}: {r.error}" for r in resumes if not r.ok][:20]
    resumed = {
        "supported": True,
        "count": len(resumes),
        "ok": len(good),
        "wall_s": round(resume_s, 3),
        "resumes_per_s": round(len(good) / resume_s, 1) if resume_s else 0.0,
        "connect_to_welcome": summarize_values(good),
    }
    report.results["token_resumes"] = resumed
    report.rows += [
        ("token resumes", f"{len(good)}/{len(resumes)} in {resume_s:.2f} s = {resumed['resumes_per_s']}/s"),
        ("resume: TCP connect to welcome", _latency_text(resumed["connect_to_welcome"])),
    ]  # fmt: skip
    report.checks.append(Check(
        f"{p.resumes} token resumes", "< 3 s", f"{resume_s:.2f} s",
        resume_s < 3 and len(good) == p.resumes,
    ))  # fmt: skip


# --- idle ---------------------------------------------------------------------------------------


def _idle_workload(run: _Run, server: dict[str, Any]) -> Report:
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
                # Logins slow down as sessions grow (presence goes to everyone online).
                opened = _open(run, pool, specs, f"opening sessions up to {level}", 0.6)
            except BenchTimeout as exc:
                report.failures.append(f"{level} sessions: {exc.message}")
                break
            open_s = time.monotonic() - started
            held = level
            time.sleep(1.0)  # let presence broadcasts and the like settle
            entry = _idle_level(run, pool, fresh_user, level, opened, open_s)
            report.results["levels"].append(entry)
            rows.append([str(level), f"{open_s:.1f}", f"{entry['ping_max_ms']}", entry["fresh_login"],
                         f"{entry.get('server_rss_mib')}", f"{entry.get('server_hwm_mib')}",
                         f"{entry.get('server_threads')}", "yes" if entry["ok"] else "no"])  # fmt: skip
            if not entry["ok"]:
                report.failures += entry["problems"]
                break
            reached = level
    report.results["level_reached"] = reached
    report.tables.append(("idle sessions", ["sessions", "open s", "ping max ms", "fresh login",
                          "RSS MiB", "peak MiB", "threads", "ok"], rows))  # fmt: skip
    report.rows.append(("level reached", str(reached)))
    hwm = {e["sessions"]: e.get("server_hwm_mib") for e in report.results["levels"]}
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


def _idle_level(
    run: _Run, pool: WorkerPool, fresh_user: str, level: int,
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
        with ProbeClient(t.host, t.port, t.ca_file) as probe:
            fresh = f"{probe.login(fresh_user, t.password) * 1000:.1f} ms"
            pings = [probe.ping() for _ in range(10)]
    except ConnectionLost as exc:
        problems.append(f"probe: {exc.message}")
    ping_max = max(pings, default=float("inf"))
    if pings and ping_max >= 1.0:
        problems.append(f"probe ping took {ping_max:.3f} s (limit 1 s)")
    pool.send_all("status")
    live = sum(c["sessions"] for c in pool.collect("status", timeout=30))
    if live < level:
        problems.append(f"only {live} of {level} sessions are still open")
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


# --- scaling --------------------------------------------------------------------------------------


def _scaling_workload(run: _Run, server: dict[str, Any]) -> Report:
    p = run.params
    _, senders = _fanout_shape("scaling", p)
    rate = p.rate or 20.0
    duration = p.duration or 5.0
    sizes = sorted(p.sizes)
    messages = max(int(rate * duration / senders), 1)
    report = Report("scaling", server, {"sizes": sizes, "senders": senders, "rate": rate,
                    "messages_per_sender": messages, "body_bytes": p.body_bytes})  # fmt: skip
    points: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    for size in sizes:
        with run.pool(f"s{size}") as pool:
            specs = _chat_specs(run, size - senders, senders, 0)
            try:
                opened = _open(run, pool, specs, f"room of {size}: logging in")
            except BenchTimeout as exc:  # keep the sizes already measured
                report.failures.append(f"room of {size}: {exc.message}")
                break
            if opened.failures:
                report.failures += opened.failures[:10]
                break
            results, failures = _fanout(run, pool, senders, messages=messages, rate=rate)
        report.failures += failures
        lat = results["delivery_latency"]
        point = {"members": size, "deliveries_per_s": results["deliveries_per_s"],
                 "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "max_ms": lat["max_ms"],
                 "server_cpu_us_per_delivery": results.get("server_cpu_us_per_delivery"),
                 "server_cpu_pct": results.get("server_cpu_pct"),
                 "generator_cpu_pct": results["generator_cpu_pct"],
                 "messages_sent": results["messages_sent"],
                "acks": results["acks"],
                "deliveries": results["deliveries"], "expected": results["expected_deliveries"]}  # fmt: skip
        points.append(point)
        rows.append([str(size), f"{point['deliveries_per_s']:,.0f}", str(lat["p50_ms"]), str(lat["p99_ms"]),
                     str(lat["max_ms"]), str(point["server_cpu_us_per_delivery"]), str(point["server_cpu_pct"])])  # fmt: skip
    report.results["points"] = points
    report.tables.append(("latency and server CPU by room size", ["members", "deliveries/s", "p50 ms",
                          "p99 ms", "max ms", "server µs/delivery", "server CPU %"], rows))  # fmt: skip
    if p.plot is not None and points:
        from securechat.bench.plot import plot_scaling

        plot_scaling(points, p.plot)
        report.rows.append(("plot", str(p.plot)))
    return report


_WORKLOAD_FUNCTIONS: dict[str, Callable[[_Run, dict[str, Any]], Report]] = {
    "fanout-rate": _fanout_workload,
    "fanout-max": _fanout_workload,
    "connect": _connect_workload,
    "idle": _idle_workload,
    "scaling": _scaling_workload,
}
