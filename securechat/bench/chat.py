"""The chat workloads: fanout-rate (latency at office load), fanout-max (burst
throughput) and scaling (latency and CPU per delivery as the room grows).

All three open sessions in one fresh room and run fan-outs on them (:func:`run_fanout`):
fanout-rate on a timetable, fanout-max with a window of un-acked sends, scaling at a
low rate in one room of each size.
"""

from __future__ import annotations

from typing import Any

from securechat.bench.harness import BenchTimeout
from securechat.bench.report import Check, Report
from securechat.bench.run import (
    Run,
    chat_specs,
    fanout_shape,
    latency_text,
    open_sessions,
    run_fanout,
    usage_rows,
)


def fanout_workload(run: Run, server: dict[str, Any]) -> Report:
    """fanout-rate (a timetable) or fanout-max (a window of un-acked sends), in one room."""
    p = run.params
    receivers, senders = fanout_shape(run.name, p)
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
        opened = open_sessions(run, pool, chat_specs(run, receivers, senders, 0), "logging in")
        report.failures += opened.failures
        if opened.failures:
            return report
        results, failures = run_fanout(run, pool, senders, messages=messages, rate=rate)
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
        ("delivery latency", latency_text(results["delivery_latency"])),
        ("ack latency", latency_text(results["ack_latency"])),
        *usage_rows(results),
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


def scaling_workload(run: Run, server: dict[str, Any]) -> Report:
    """A low-rate fan-out in a fresh room of each size, with fresh sessions."""
    p = run.params
    _, senders = fanout_shape("scaling", p)
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
            specs = chat_specs(run, size - senders, senders, 0)
            try:
                opened = open_sessions(run, pool, specs, f"room of {size}: logging in")
            except BenchTimeout as exc:  # keep the sizes already measured
                report.failures.append(f"room of {size}: {exc.message}")
                break
            if opened.failures:
                report.failures += opened.failures[:10]
                break
            results, failures = run_fanout(run, pool, senders, messages=messages, rate=rate)
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
