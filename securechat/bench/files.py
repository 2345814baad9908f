"""The files workload (#27): concurrent uploads and downloads while the office chat load runs.

Phases, in order: a plain TLS copy of the bytes one round moves (the baseline); one round
of transfers alone with small files, then one with full-size files (the server's peak RSS
in each: it must not grow with the file size); then ``rounds`` pairs of fanout-rate's
load (50 receivers, 5 senders, 200 messages a second), first without transfers, then
with transfers round after round for as long as the chat load runs. The pairs are
interleaved so that a machine whose load drifts affects both sides alike. The transfer
clients run in a process of their own, scheduled like the chat generator
(:mod:`.transfer_process`); the plain copy and the RSS sampling run in the bench process.
"""

from __future__ import annotations

import statistics
from typing import Any

from securechat.bench.harness import cpu_seconds
from securechat.bench.report import Check, Report
from securechat.bench.run import Run, chat_specs, fanout_shape, open_sessions, run_fanout
from securechat.bench.transfer_process import TransferProcess
from securechat.bench.transfers import MB, Round, RssPeak, tls_copy
from securechat.errors import ConfigError

MiB = 1024 * 1024
SMALL_PART = 16  # the small files of the RSS comparison are this much smaller
P99_FACTOR = 1.5  # chat's delivery p99 with transfers, at most this times without
COPY_SHARE = 0.5  # transfers move at least this share of a plain TLS copy's MB/s
RSS_SHARE = 0.25  # bigger files may grow the peak RSS by this share of the extra bytes


def files_workload(run: Run, server: dict[str, Any]) -> Report:
    """Transfers alone, then chat with and without transfers, interleaved."""
    p = run.params
    receivers, senders = fanout_shape("files", p)
    if run.target.web_port is None:
        raise ConfigError("bench files needs the server's web port (--web-port)")
    rate, duration = p.rate or 200.0, p.duration or 10.0
    messages = max(int(rate * duration / senders), 1)
    count, size = p.files, p.file_size
    small = max(size // SMALL_PART, 1)
    report = Report("files", server, {
        "files": count, "file_size": size, "rounds": p.rounds, "receivers": receivers,
        "senders": senders, "rate": rate, "messages_per_sender": messages,
        "processes": p.processes,
    })  # fmt: skip
    run.progress.phase("a plain TLS copy over loopback", 1)
    copy_mb_s = round(2 * count * size / MB / tls_copy(2 * count * size), 1)
    results: dict[str, Any] = {"tls_copy_mb_s": copy_mb_s}
    first = receivers + senders  # the transfer users come after the chat's
    with TransferProcess(run.target, first, count, batch=p.batch_generator) as clients:
        run.progress.phase("transfers alone: small files, then full size", 2)
        alone = {}
        for label, each in (("small", small), ("full", size)):
            peak = RssPeak(run.server_pid)
            with peak.sampling():
                done = clients.run(each)
            alone[label] = _round(done, file_size=each, server_rss_peak_mib=peak.mib)
            report.failures += done.failures
        results["transfers_alone"] = alone
        chat, under = _interleaved(run, clients, report, receivers, senders, messages, rate)
    results.update(chat=chat, transfers_under_chat=under)
    report.results = results
    _rows_and_checks(report, results, count)
    report.notes.append(
        f"each round: {count} users at once each upload a file of {size:,} random bytes and"
        " download it back (MB/s counts both directions, MB = 10^6 bytes); the plain copy"
        " moves the same bytes through one TLS 1.3 socket pair on 127.0.0.1"
    )
    report.notes.append(
        "the transfer clients run as threads of a process of their own, scheduled as the"
        " generator processes are; the plain copy runs in the bench process"
    )
    return report


def _interleaved(
    run: Run, clients: TransferProcess, report: Report, receivers: int, senders: int,
    messages: int, rate: float,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """``rounds`` pairs of chat runs, without then with transfers: p99s, and the transfers."""
    p = run.params
    p99: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[tuple[float | None, float]]] = {"without": [], "with": []}
    transfer_cpu: list[float] = []  # the transfer process's, over its rounds
    done: Round | None
    clients_cpu = 0.0
    moved, seconds, rounds, peak_rss = 0, 0.0, 0, None
    with run.pool("files") as pool:
        opened = open_sessions(run, pool, chat_specs(run, receivers, senders, 0), "logging in")
        report.failures += opened.failures
        if opened.failures:
            return {}, {}
        for _ in range(p.rounds):
            for side in ("without", "with"):
                peak, done = RssPeak(run.server_pid), None
                with peak.sampling():
                    if side == "with":
                        clients_cpu = cpu_seconds(clients.pid)
                        clients.start(p.file_size)
                    # On an exception, leaving TransferProcess's block stops the transfers.
                    results, failures = run_fanout(run, pool, senders, messages=messages, rate=rate)  # fmt: skip
                    if side == "with":
                        done = clients.finish()
                report.failures += failures
                expected = results["expected_deliveries"]
                if results["deliveries"] != expected:
                    report.failures.append(f"counted {results['deliveries']} deliveries, expected {expected}")  # fmt: skip
                p99[side].append(results["delivery_latency"]["p99_ms"])
                cpu[side].append((results.get("server_cpu_pct"), results["generator_cpu_pct"]))
                if done is not None:
                    used = cpu_seconds(clients.pid) - clients_cpu
                    transfer_cpu.append(round(100 * used / max(done.seconds, 1e-9), 1))
                    moved, seconds, rounds = moved + done.bytes, seconds + done.seconds, rounds + done.rounds  # fmt: skip
                    report.failures += done.failures
                    peak_rss = max(filter(None, (peak_rss, peak.mib)), default=None)
    chat = {
        "p99_ms_without": p99["without"],
        "p99_ms_with": p99["with"],
        "p99_ms_median_without": round(statistics.median(p99["without"]), 3),
        "p99_ms_median_with": round(statistics.median(p99["with"]), 3),
        # (server, generator) CPU in % of a core: the transfer clients share the machine
        "cpu_pct_without": cpu["without"],
        "cpu_pct_with": cpu["with"],
        "transfer_clients_cpu_pct": transfer_cpu,
    }
    under = _round(Round(moved, seconds, rounds, ()), file_size=p.file_size, server_rss_peak_mib=peak_rss)  # fmt: skip
    return chat, under


def _round(done: Round, **extra: Any) -> dict[str, Any]:
    return {"mb_s": done.mb_s, "bytes": done.bytes, "seconds": round(done.seconds, 2),
            "rounds": done.rounds, **extra}  # fmt: skip


def _rows_and_checks(report: Report, r: dict[str, Any], count: int) -> None:
    if not r.get("chat"):
        return
    small, full, under = r["transfers_alone"]["small"], r["transfers_alone"]["full"], r["transfers_under_chat"]  # fmt: skip
    chat = r["chat"]
    without, with_ = chat["p99_ms_median_without"], chat["p99_ms_median_with"]
    report.rows += [
        ("plain TLS copy", f"{r['tls_copy_mb_s']} MB/s"),
        ("transfers alone", f"{full['mb_s']} MB/s, server RSS peak {full['server_rss_peak_mib']} MiB"),
        ("transfers alone, small files", f"{small['mb_s']} MB/s ({small['file_size']:,} B), RSS peak {small['server_rss_peak_mib']} MiB"),
        ("transfers under chat load", f"{under['mb_s']} MB/s in {under['rounds']} rounds, RSS peak {under['server_rss_peak_mib']} MiB"),
        ("chat delivery p99 without transfers", f"{chat['p99_ms_without']} ms (median {without})"),
        ("chat delivery p99 with transfers", f"{chat['p99_ms_with']} ms (median {with_})"),
        ("server, generator CPU % without transfers", str(chat["cpu_pct_without"])),
        ("server, generator CPU % with transfers", str(chat["cpu_pct_with"])),
        ("transfer clients' CPU %", str(chat["transfer_clients_cpu_pct"])),
    ]  # fmt: skip
    floor = round(COPY_SHARE * r["tls_copy_mb_s"], 1)
    report.checks.append(Check(
        "files throughput", f">= {floor} MB/s (half a plain TLS copy), under chat load",
        f"{under['mb_s']} MB/s ({full['mb_s']} alone)", under["mb_s"] >= floor,
    ))  # fmt: skip
    growth_mib = None
    if small["server_rss_peak_mib"] is not None and full["server_rss_peak_mib"] is not None:
        growth_mib = round(full["server_rss_peak_mib"] - small["server_rss_peak_mib"], 1)
    extra_mib = RSS_SHARE * count * (full["file_size"] - small["file_size"]) / MiB
    report.checks.append(Check(
        "files server RSS", f"independent of file size: grows < {extra_mib:.1f} MiB from small to full-size files",
        f"{growth_mib} MiB", None if growth_mib is None else growth_mib < extra_mib,
    ))  # fmt: skip
    ratio = round(with_ / without, 2) if without else None
    report.checks.append(Check(
        "chat p99 under transfers", f"<= {P99_FACTOR}x without transfers",
        f"{with_} ms vs {without} ms ({ratio}x)", None if ratio is None else ratio <= P99_FACTOR,
    ))  # fmt: skip
