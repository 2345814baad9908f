"""The nodes workload (#17): one, two and three server nodes on one PostgreSQL database,
against one node on SQLite, on this machine.

For each set-up the bench starts its own servers (and, once, its own PostgreSQL cluster
on 127.0.0.1, with fsync on, as SQLite's ``synchronous=FULL``) and runs two fan-outs:

- office load (``fanout-rate``'s rate, default 200 messages/s to 50 receivers): the
  senders on the first node, the receivers spread over the *other* nodes, so with two
  nodes or more every delivery crosses nodes: written by node A, announced by NOTIFY,
  read from the table by node B;
- throughput (``fanout-max``'s window of un-acked sends): senders and receivers dealt
  round-robin over every node, for the total deliveries per second.

Server CPU is not reported (the load is spread over several processes); the generator's
is, and on this one machine every node, PostgreSQL and the generator share its cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from securechat.bench.commands import SessionSpec
from securechat.bench.harness import BenchError, ThrowawayServer
from securechat.bench.postgres import PostgresCluster, find_bindir
from securechat.bench.report import PhaseProgress, Report
from securechat.bench.run import BenchParams, Run, chat_specs, open_sessions, run_fanout
from securechat.errors import ConfigError

OFFICE_RATE = 200.0
OFFICE_RECEIVERS = 50


@contextlib.contextmanager
def _cluster() -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    if bindir is None:
        raise ConfigError(
            "bench nodes needs Debian's postgresql package (apt-get install postgresql)"
        )
    cluster = PostgresCluster(bindir, durable=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _spread(specs: list[SessionSpec], ports: list[int]) -> list[SessionSpec]:
    """Sessions dealt round-robin over the nodes' ports."""
    return [dataclasses.replace(s, port=ports[i % len(ports)]) for i, s in enumerate(specs)]


def _office(run: Run, ports: list[int]) -> tuple[dict[str, Any], list[str]]:
    """Senders on the first node, receivers on the others (on the one, if alone)."""
    p = run.params
    receivers = p.receivers if p.receivers is not None else OFFICE_RECEIVERS
    senders = p.senders or 1
    rate = p.rate or OFFICE_RATE
    messages = max(int(rate * (p.duration or 10.0) / senders), 1)
    specs = chat_specs(run, receivers, senders, 0)
    others = ports[1:] or ports
    specs = [dataclasses.replace(s, port=ports[0]) for s in specs[:senders]] + _spread(
        specs[senders:], others
    )
    with run.pool("office") as pool:
        opened = open_sessions(run, pool, specs, "office load: logging in")
        if opened.failures:
            return {}, opened.failures
        return run_fanout(run, pool, senders, messages=messages, rate=rate)


def _throughput(run: Run, ports: list[int]) -> tuple[dict[str, Any], list[str]]:
    p = run.params
    receivers = p.receivers if p.receivers is not None else OFFICE_RECEIVERS
    senders = max(p.senders or 5, len(ports))
    specs = _spread(chat_specs(run, receivers, senders, 0), ports)
    with run.pool("max") as pool:
        opened = open_sessions(run, pool, specs, "throughput: logging in")
        if opened.failures:
            return {}, opened.failures
        return run_fanout(run, pool, senders, messages=p.messages or 1000, rate=None)


def nodes_workload(
    params: BenchParams, progress: PhaseProgress, limits: dict[str, float], counts: tuple[int, ...]
) -> Report:
    """Run both fan-outs on one SQLite node, then on each count of PostgreSQL nodes."""
    receivers = params.receivers if params.receivers is not None else OFFICE_RECEIVERS
    users = receivers + max(params.senders or 5, *counts)
    report = Report("nodes", {"description": "self-started: securechat.bench.throwaway per node"},
                    {"nodes": list(counts), "receivers": receivers, "office_rate": params.rate or OFFICE_RATE,
                     "window": params.window, "processes": params.processes})  # fmt: skip
    rows: list[list[str]] = []
    points: list[dict[str, Any]] = []
    with _cluster() as cluster:
        setups = [("sqlite", 1), *(("postgresql", n) for n in counts)]
        for index, (kind, count) in enumerate(setups):
            label = f"{count} node{'s' if count > 1 else ''} on {kind}"
            progress.phase(f"{label}: starting", 1)
            db_url = (
                cluster.create_database(name=f"bench_{index}") if kind == "postgresql" else None
            )
            with ThrowawayServer(
                users=users, cheap_logins=True, limits=limits, db_url=db_url, nodes=count
            ) as started:
                assert started.target is not None
                pid = started.pid if count == 1 else None
                run = Run("nodes", started.target, pid, params, progress, external=False)
                try:
                    office, failures = _office(run, started.node_ports)
                    report.failures += [f"{label}, office load: {f}" for f in failures]
                    most, failures = _throughput(run, started.node_ports)
                    report.failures += [f"{label}, throughput: {f}" for f in failures]
                except BenchError as exc:
                    raise BenchError(f"{exc.message}\nserver log:\n{started.log_tail()}") from exc
            point = _point(kind, count, office, most)
            points.append(point)
            rows.append([label, *(str(point[k]) for k in ("office_p50_ms", "office_p99_ms",
                         "office_max_ms", "deliveries_per_s", "max_ack_p99_ms"))])  # fmt: skip
    report.results["points"] = points
    report.tables.append(("office load (delivery latency) and throughput by set-up",
                          ["set-up", "office p50 ms", "office p99 ms", "office max ms",
                           "deliveries/s (window)", "ack p99 ms (window)"], rows))  # fmt: skip
    report.notes.append(
        "office load: senders on the first node, receivers on the other nodes (every delivery "
        "crosses nodes with 2 or more); throughput: sessions dealt round-robin over the nodes"
    )
    report.notes.append("PostgreSQL: the bench's own cluster on 127.0.0.1, fsync on")
    if params.plot is not None and points:
        from securechat.bench.plot import plot_nodes

        plot_nodes(points, params.plot)
        report.rows.append(("plot", str(params.plot)))
    return report


def _point(kind: str, count: int, office: dict[str, Any], most: dict[str, Any]) -> dict[str, Any]:
    lat = office.get("delivery_latency", {})
    return {
        "database": kind, "nodes": count,
        "office_p50_ms": lat.get("p50_ms"), "office_p99_ms": lat.get("p99_ms"),
        "office_max_ms": lat.get("max_ms"),
        "office_deliveries": office.get("deliveries"), "office_expected": office.get("expected_deliveries"),
        "deliveries_per_s": most.get("deliveries_per_s"),
        "max_ack_p99_ms": most.get("ack_latency", {}).get("p99_ms"),
        "max_deliveries": most.get("deliveries"), "max_expected": most.get("expected_deliveries"),
        "generator_cpu_pct": most.get("generator_cpu_pct"),
    }  # fmt: skip
