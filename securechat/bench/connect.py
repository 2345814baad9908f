"""The connect workload: password logins, token resumes, and chat during the login storm.

A background chat runs open-ended on a timetable while one-shot password logins storm
the server; then the tokens those logins got are used for rounds of resumes, each with
the newest token a user was issued.
"""

from __future__ import annotations

import time
from typing import Any

from securechat.bench.commands import FanoutResult, LoginResult, LoginSpec
from securechat.bench.pool import Meter, WorkerPool
from securechat.bench.report import Check, Report
from securechat.bench.run import (
    START_DELAY_S,
    BenchParams,
    Run,
    chat_specs,
    fanout_plan,
    fanout_shape,
    latency_text,
    merge,
    open_sessions,
    split,
    usage_rows,
)
from securechat.bench.stats import summarize_values


def _storm(
    run: Run, pool: WorkerPool, logins: list[LoginSpec], label: str
) -> tuple[list[LoginResult], float]:
    """One-shot logins spread over the workers; results and the wall time they took."""
    run.progress.phase(label, len(logins))
    pool.on_progress = lambda c: run.progress.update(c.get("logins", 0))
    per_worker = max(run.login_concurrency(8 if logins[0].password else 32) // pool.size, 1)
    started = time.monotonic()
    for index, part in enumerate(split(logins, pool.size)):
        pool.send(index, "storm", part, per_worker)
    results: list[list[LoginResult]] = pool.collect("storm_done", timeout=60 + len(logins) * 1.0)
    return [r for part in results for r in part], time.monotonic() - started


def connect_workload(run: Run, server: dict[str, Any]) -> Report:
    """Password logins during a background chat, then token resumes."""
    p = run.params
    receivers, senders = fanout_shape("connect", p)
    rate = p.rate or 50.0
    params = {"logins": p.logins, "resumes": p.resumes, "background_receivers": receivers,
              "background_senders": senders, "background_rate": rate, "processes": p.processes}  # fmt: skip
    report = Report("connect", server, params)
    first_storm_user = receivers + senders
    with run.pool("connect") as pool:
        opened = open_sessions(
            run, pool, chat_specs(run, receivers, senders, 0), "background sessions"
        )
        report.failures += opened.failures
        if opened.failures:
            return report
        plan = fanout_plan(run, senders, messages=None, rate=rate)
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
    chat = merge(background, plan)
    chat.update(usage)
    report.results["background_chat"] = chat
    report.failures += [f for r in background for f in r.failures]
    if chat["deliveries"] != chat["expected_deliveries"]:
        report.failures.append(
            f"background chat: {chat['deliveries']} deliveries of {chat['expected_deliveries']}"
        )
    report.rows += [
        ("background chat during the storm", f"{chat['messages_sent']} messages, {chat['deliveries']} deliveries"),
        ("background delivery latency", latency_text(chat["delivery_latency"])),
        *usage_rows(chat),
    ]  # fmt: skip
    p99 = chat["delivery_latency"]["p99_ms"]
    report.checks.append(Check("chat p99 during a login storm", "< 10 ms", f"{p99} ms", p99 < 10))
    return report


def _resume_rounds(
    run: Run, pool: WorkerPool, tokens: dict[str, str | None], count: int
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
        ("TCP connect to welcome", latency_text(logins["connect_to_welcome"])),
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
        ("resume: TCP connect to welcome", latency_text(resumed["connect_to_welcome"])),
    ]  # fmt: skip
    report.checks.append(Check(
        f"{p.resumes} token resumes", "< 3 s", f"{resume_s:.2f} s",
        resume_s < 3 and len(good) == p.resumes,
    ))  # fmt: skip
