"""The eight workloads, and how a run starts: against a given server or a throwaway one.

Every workload runs against ``--host``/``--port`` when given (users ``PREFIX0``,
``PREFIX1``... must exist there), or else against a :class:`ThrowawayServer` it starts
and removes. Users are numbered so that no two roles in one run share a name. Each room
is fresh per run (its name carries a random tag), so earlier runs' members do not count.
The workloads themselves are in :mod:`.chat` (fanout-rate, fanout-max, scaling),
:mod:`.connect`, :mod:`.idle`, :mod:`.files` (transfers under the chat load), :mod:`.search` (which fills its own throwaway database,
so it has no ``--host``) and :mod:`.nodes` (several servers on its own PostgreSQL: no
``--host`` either).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from securechat.bench.chat import fanout_workload, scaling_workload
from securechat.bench.commands import Transport
from securechat.bench.connect import connect_workload
from securechat.bench.files import files_workload
from securechat.bench.harness import BenchError, ThrowawayServer, raise_fd_limit
from securechat.bench.idle import colleagues, idle_workload
from securechat.bench.nodes import nodes_workload
from securechat.bench.report import PhaseProgress, Report
from securechat.bench.run import BenchParams, Run, fanout_shape
from securechat.bench.search import USERS as SEARCH_USERS
from securechat.bench.search import drop_index, preparer, search_workload
from securechat.bench.target import Target
from securechat.errors import ConfigError

WORKLOADS = ("fanout-rate", "fanout-max", "connect", "idle", "scaling", "search", "nodes", "files")
# Limits of the self-started server that would otherwise throttle the generator itself.
BENCH_LIMITS: dict[str, float] = {
    "rate_per_second": 100_000,
    "max_unauthenticated": 100_000,
    "max_unauthenticated_per_ip": 100_000,
}
# Only the cheap server (securechat.bench.throwaway) can lift the cap on sessions from one
# address (`serve` has no option for it): the idle workload holds thousands from
# 127.0.0.1; connect, the one workload on `serve`, stays under the cap.
# The search workload asks 300 queries as fast as it can: a user's ration of searches
# (2 a second) is lifted so that it times the queries, not the waits.
CHEAP_SERVER_LIMITS: dict[str, float] = {
    **BENCH_LIMITS,
    "max_sessions_per_address": 100_000,
    "search_rate_per_second": 100_000,
    "search_burst": 100_000,
}


def users_needed(name: str, p: BenchParams) -> int:
    """How many bench users a workload logs in (``PREFIX0`` .. ``PREFIX{n-1}``)."""
    receivers, senders = fanout_shape(name, p)
    if name in ("fanout-rate", "fanout-max"):
        return receivers + senders
    if name == "connect":
        return receivers + senders + p.logins
    if name == "idle":
        return max(p.levels) + 1
    if name == "search":
        return SEARCH_USERS
    if name == "files":
        return receivers + senders + p.files
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
    _check_params(name, params, target)
    raise_fd_limit()
    report = _run_workload(name, params, target, server_pid, show_progress)
    report.params = {"transport": params.transport.value, **report.params}
    report.notes.append(_generator_note(params))
    if params.transport is Transport.WS:
        report.notes.append(
            "sessions use the web port: protocol v1 over WebSocket (wss://HOST:WEBPORT/ws),"
            " as browsers do; the server runs one thread per such session, as per TLS session"
        )
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
            ports = f"port {target.port}"
            if params.transport is Transport.WS:
                ports = f"web port {target.web_port}"
            server: dict[str, Any] = {
                "description": f"external: {target.host} {ports}",
                "pid": server_pid,
            }
            run = Run(name, target, server_pid, params, progress, external=True)
            return _WORKLOAD_FUNCTIONS[name](run, server)
        if name == "nodes":
            return nodes_workload(params, progress, CHEAP_SERVER_LIMITS, params.nodes)
        progress.phase("starting a throwaway server", 1)
        cheap = name != "connect"
        limits = CHEAP_SERVER_LIMITS if cheap else BENCH_LIMITS
        server = {}
        prepare = preparer(params, server) if name == "search" else None
        if name == "idle" and not params.first_logins:
            prepare = colleagues(server, users_needed(name, params))
        if not params.search_index:
            server["search_index"] = "none: the search index dropped before the start"
            prepare = drop_index
        with ThrowawayServer(
            users=users_needed(name, params), cheap_logins=cheap, limits=limits,
            prepare=prepare,
        ) as started:  # fmt: skip
            assert started.target is not None
            info = started.info
            server.update({
                "description": info.description,
                "pid": info.pid,
                "cheap_logins": info.cheap_logins,
                "limits": limits,
            })  # fmt: skip
            run = Run(name, started.target, info.pid, params, progress, external=False)
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


def _check_params(name: str, p: BenchParams, target: Target | None) -> None:
    if name in ("search", "nodes") and target is not None:
        raise ConfigError(f"{name} starts servers of its own: run it without --host")
    if name == "files" and (p.files < 1 or p.file_size < 1 or p.rounds < 1):
        raise ConfigError("files needs --transfers, --file-size and --rounds of at least 1")
    if name in ("nodes", "files") and p.transport is Transport.WS:
        raise ConfigError(f"{name} runs its chat load on the chat port only: drop --transport ws")
    if name == "search" and not p.search_index:
        raise ConfigError("--no-search-index is for the fan-out workloads: search needs the index")
    if not p.search_index and target is not None:
        raise ConfigError("--no-search-index applies to the bench's own server: drop --host")
    if p.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if p.transport is Transport.WS and target is not None and target.web_port is None:
        raise ConfigError("--transport ws with --host needs the server's --web-port")
    if p.batch_generator and not hasattr(os, "SCHED_BATCH"):
        raise ConfigError("--generator-policy batch needs Linux; use --generator-policy normal")
    receivers, senders = fanout_shape(name, p)
    if senders < 1 or receivers < 0:
        raise ConfigError("need at least one sender and no negative receivers")
    if name == "scaling" and min(p.sizes) <= senders:
        raise ConfigError(f"every room size must exceed the {senders} senders")


_WORKLOAD_FUNCTIONS: dict[str, Callable[[Run, dict[str, Any]], Report]] = {
    "fanout-rate": fanout_workload,
    "fanout-max": fanout_workload,
    "connect": connect_workload,
    "idle": idle_workload,
    "scaling": scaling_workload,
    "search": search_workload,
    "files": files_workload,
}
