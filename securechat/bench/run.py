"""One run of a workload: its parameters, what it runs against, and the steps workloads share.

Each workload (:mod:`.chat`, :mod:`.connect`, :mod:`.idle`) is a function of a
:class:`Run`. The shared steps log sessions in across the worker processes
(:func:`open_sessions`), run one fan-out on them (:func:`run_fanout`, metering the CPU of
the server and of the generator) and turn results into report rows.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from securechat.bench.commands import (
    Endpoint,
    FanoutPlan,
    FanoutResult,
    OpenResult,
    Role,
    SessionSpec,
    Transport,
)
from securechat.bench.pool import Meter, WorkerPool
from securechat.bench.report import PhaseProgress
from securechat.bench.stats import summarize_ns
from securechat.bench.target import Target
from securechat.bench.worker.wire import body_overhead
from securechat.errors import ConfigError

MAX_SAMPLES = 2_000_000  # per worker and kind; beyond it a reservoir keeps percentiles fair
START_DELAY_S = 0.3  # lets every worker get the plan before the first scheduled send


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
    transport: Transport = Transport.TLS
    logins: int = 200
    resumes: int = 1000
    concurrency: int | None = None
    levels: tuple[int, ...] = (500, 1000, 2000, 5000)
    sizes: tuple[int, ...] = (10, 50, 200, 1000)
    nodes: tuple[int, ...] = (1, 2, 3)  # nodes: server nodes on one PostgreSQL
    plot: Path | None = None
    queries: int | None = None  # search: queries asked
    search_index: bool = True  # False: the throwaway database indexes nothing (triggers dropped)
    files: int = 20  # files: transfers at once (each by a user of its own)...
    file_size: int = 5 * 1024 * 1024  # ...of files this large, in bytes
    rounds: int = 2  # files: pairs of chat runs, without then with transfers
    first_logins: bool = False  # idle: new users (each first login joins #general)


@dataclasses.dataclass
class Run:
    """What every workload function gets: where to send load, and how to show progress."""

    name: str
    target: Target
    server_pid: int | None
    params: BenchParams
    progress: PhaseProgress
    external: bool

    @property
    def endpoint(self) -> Endpoint:
        """Where the generator's sessions connect: the chat port, or the web port."""
        t = self.target
        if self.params.transport is Transport.WS:
            if t.web_port is None:
                raise ConfigError("--transport ws needs the server's web port (--web-port)")
            return Endpoint(t.host, t.web_port, str(t.ca_file), Transport.WS)
        return Endpoint(t.host, t.port, str(t.ca_file))

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


def fanout_shape(name: str, p: BenchParams) -> tuple[int, int]:
    """(receivers, senders) for the workloads that chat; the connect one chats in the background."""
    defaults = {"connect": (20, 2), "scaling": (0, 2)}.get(name, (50, 5))
    receivers = p.receivers if p.receivers is not None else defaults[0]
    senders = p.senders if p.senders is not None else defaults[1]
    return receivers, senders


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt round-robin into ``parts`` lists, one per worker."""
    return [list(items[i::parts]) for i in range(parts)]


def open_sessions(
    run: Run, pool: WorkerPool, specs: list[SessionSpec], label: str, per_session_s: float = 0.2
) -> OpenResult:
    """Log ``specs`` in across the workers; every failure is in the result.

    Raises:
        BenchTimeout: not all of them were through after 60 s + ``per_session_s`` each.
    """
    run.progress.phase(label, len(specs))
    base = pool.progress().get("sessions", 0)
    pool.on_progress = lambda c: run.progress.update(c.get("sessions", 0) - base)
    concurrency = max(run.login_concurrency(64) // pool.size, 1)
    for index, part in enumerate(split(specs, pool.size)):
        pool.send(index, "open", part, concurrency)
    timeout = 60 + len(specs) * per_session_s
    results: list[OpenResult] = pool.collect("opened", timeout=timeout)
    return OpenResult(
        connect_ns=[t for r in results for t in r.connect_ns],
        failures=[f for r in results for f in r.failures],
    )


def chat_specs(run: Run, receivers: int, senders: int, first_user: int) -> list[SessionSpec]:
    """``senders`` then ``receivers`` sessions of the chat room, from user ``first_user`` on."""
    t, password = run.target, run.target.password
    specs = [SessionSpec(t.user(first_user + g), password, Role.SENDER, g) for g in range(senders)]
    specs += [
        SessionSpec(t.user(first_user + senders + i), password, Role.RECEIVER)
        for i in range(receivers)
    ]
    return specs


def fanout_plan(run: Run, senders: int, *, messages: int | None, rate: float | None) -> FanoutPlan:
    """A plan with a fresh tag, starting shortly after now.

    Raises:
        ConfigError: ``--body-bytes`` cannot hold the send time and the tag.
    """
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


def merge(results: list[FanoutResult], plan: FanoutPlan) -> dict[str, Any]:
    """The workers' fan-out results as one: totals, rates and latency percentiles."""
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


def run_fanout(
    run: Run, pool: WorkerPool, senders: int, *, messages: int, rate: float | None
) -> tuple[dict[str, Any], list[str]]:
    """One fixed-size fan-out run on sessions already open; returns results and failures."""
    plan = fanout_plan(run, senders, messages=messages, rate=rate)
    expected = pool.progress().get("sessions", 0) * messages * senders - messages * senders
    run.progress.phase("fan-out: deliveries", expected)
    pool.on_progress = lambda c: run.progress.update(c.get("deliveries", 0))
    meter = Meter(run.server_pid, pool)
    meter.start()
    pool.send_all("fanout", plan)
    timeout = messages * senders / (rate or 1e9) + plan.grace_s + 30
    results: list[FanoutResult] = pool.collect("fanout_done", timeout=timeout)
    usage = meter.stop()
    merged = merge(results, plan)
    merged.update(usage)
    if merged["deliveries"]:
        # The generator's cost per delivery shows whether it, not the server, sets the pace,
        # and keeps transports comparable (the web port's framing costs it more).
        merged["generator_cpu_us_per_delivery"] = round(
            usage["generator_cpu_s"] * 1e6 / merged["deliveries"], 2
        )
        if "server_cpu_s" in usage:
            merged["server_cpu_us_per_delivery"] = round(
                usage["server_cpu_s"] * 1e6 / merged["deliveries"], 2
            )
            merged["server_switches_per_delivery"] = round(
                usage["server_context_switches"] / merged["deliveries"], 2
            )
    return merged, [f for r in results for f in r.failures]


def latency_text(summary: Any) -> str:
    """A latency summary as one report cell."""
    return f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms"


def usage_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Report rows for the generator's and the server's CPU and the server's memory."""
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
    if "server_switches_per_delivery" in results:
        rows.append(
            ("server context switches per delivery", str(results["server_switches_per_delivery"]))
        )
    if "generator_cpu_us_per_delivery" in results:
        rows.append(
            ("generator CPU per delivery", f"{results['generator_cpu_us_per_delivery']} µs")
        )
    return rows
