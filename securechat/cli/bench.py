"""``securechat bench``: load a server and report throughput, latency, CPU and memory.

Without ``--host`` it starts a throwaway server on 127.0.0.1 (temporary certificates,
users and database, all deleted afterwards). With ``--host`` it loads that server, which
must be a loopback address unless ``--allow-remote`` is given; the check happens before
any packet is sent. SIGTERM (``timeout``, systemd) stops a run as Ctrl-C does, so the
throwaway server and its folder are removed either way. The bench itself (its server,
workers and report) is imported when the command runs.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from securechat.attachments.sizes import parse_size
from securechat.bench.commands import Transport
from securechat.cli.app import app
from securechat.config import DEFAULT_PORT, DEFAULT_WEB_PORT
from securechat.errors import ConfigError

_LOAD = "Load"
_EXTERNAL = "External server"


class GeneratorPolicy(enum.StrEnum):
    batch = "batch"
    normal = "normal"


class Workload(enum.StrEnum):
    fanout_rate = "fanout-rate"
    fanout_max = "fanout-max"
    connect = "connect"
    idle = "idle"
    scaling = "scaling"
    nodes = "nodes"
    search = "search"
    files = "files"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so the clean-up that runs on Ctrl-C runs too.

    Only the first: a second SIGTERM is ignored rather than cutting that clean-up short.
    """

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _numbers(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated whole numbers, like 500,1000") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} needs at least one number, each 1 or more")
    return values


def _file_size(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise ConfigError(f"--file-size: {exc}") from None
    if size < 1:
        raise ConfigError("--file-size must be at least 1 byte")
    return size


@app.command()
def bench(
    workload: Annotated[Workload, typer.Argument(metavar="WORKLOAD", help="fanout-rate, fanout-max, connect, idle, scaling, search, nodes or files.", show_default=False)],
    duration: Annotated[float | None, typer.Option(metavar="SECONDS", min=0.1, help="fanout-rate, files and scaling: how long each run sends [default: 10, scaling 5].", rich_help_panel=_LOAD)] = None,
    receivers: Annotated[int | None, typer.Option(metavar="N", min=0, help="Receiving sessions in the room [default: 50; connect: 20 in the background chat].", rich_help_panel=_LOAD)] = None,
    senders: Annotated[int | None, typer.Option(metavar="N", min=1, help="Sending sessions [default: 5; connect and scaling: 2].", rich_help_panel=_LOAD)] = None,
    rate: Annotated[float | None, typer.Option(metavar="PER_SECOND", min=0.1, help="Messages per second, all senders together [default: 200; connect: 50; scaling: 20].", rich_help_panel=_LOAD)] = None,
    messages: Annotated[int | None, typer.Option(metavar="N", min=1, help="Messages per sender (fanout-max: 2000; fanout-rate: rate x duration / senders); search: messages stored before the start [default: 1000000].", rich_help_panel=_LOAD)] = None,
    body_bytes: Annotated[int, typer.Option(metavar="BYTES", min=32, help="Message body size.", rich_help_panel=_LOAD)] = 100,
    window: Annotated[int, typer.Option(metavar="N", min=1, help="fanout-max: un-acked sends each sender keeps in flight.", rich_help_panel=_LOAD)] = 64,
    logins: Annotated[int, typer.Option(metavar="N", min=1, help="connect: password logins in the storm.", rich_help_panel=_LOAD)] = 200,
    resumes: Annotated[int, typer.Option(metavar="N", min=1, help="connect: reconnects with a resume token.", rich_help_panel=_LOAD)] = 1000,
    concurrency: Annotated[int | None, typer.Option(metavar="N", min=1, help="Logins in progress at once [default: 64 sessions, 8 password storm, 32 resumes; at most 24 on an external server].", rich_help_panel=_LOAD)] = None,
    levels: Annotated[str | None, typer.Option(metavar="N,N,...", help="idle: session counts to hold, in order [default: 500,1000,2000,5000].", rich_help_panel=_LOAD)] = None,
    first_logins: Annotated[bool, typer.Option("--first-logins", help="idle: the users are new, and each one's first login joins #general, which everyone online hears of (default: colleagues who joined #general on their first day, logging in on a later morning).", rich_help_panel=_LOAD)] = False,
    sizes: Annotated[str | None, typer.Option(metavar="N,N,...", help="scaling: room sizes [default: 10,50,200,1000].", rich_help_panel=_LOAD)] = None,
    nodes: Annotated[str | None, typer.Option(metavar="N,N,...", help="nodes: how many server nodes on one PostgreSQL, after one on SQLite [default: 1,2,3].", rich_help_panel=_LOAD)] = None,
    plot: Annotated[Path | None, typer.Option(metavar="PNG", help="scaling and nodes: draw the chart here (needs matplotlib: securechat[bench]).", rich_help_panel=_LOAD)] = None,
    queries: Annotated[int | None, typer.Option(metavar="N", min=1, help="search: queries asked, one at a time [default: 300].", rich_help_panel=_LOAD)] = None,
    search_index: Annotated[bool, typer.Option(help="The bench's own server indexes messages for search (--no-search-index drops the index first, to measure what indexing costs a fan-out).", rich_help_panel=_LOAD)] = True,
    transfers: Annotated[int, typer.Option(metavar="N", min=1, help="files: uploads and downloads at once, each by a user of its own.", rich_help_panel=_LOAD)] = 20,
    file_size: Annotated[str, typer.Option(metavar="SIZE", help="files: the size of each file (bytes, or 512KiB, 5MiB).", rich_help_panel=_LOAD)] = "5MiB",
    rounds: Annotated[int, typer.Option(metavar="N", min=1, help="files: pairs of chat runs, without then with transfers, interleaved.", rich_help_panel=_LOAD)] = 2,
    processes: Annotated[int, typer.Option(metavar="N", min=1, help="Generator processes, each multiplexing many connections.", rich_help_panel=_LOAD)] = 2,
    generator_policy: Annotated[GeneratorPolicy, typer.Option(help="Scheduling of the generator processes (and of bench files' transfer clients): batch (SCHED_BATCH: they never preempt the server when a message wakes them, as clients on other machines cannot) or normal.", rich_help_panel=_LOAD)] = GeneratorPolicy.batch,
    transport: Annotated[Transport, typer.Option(help="How sessions connect: tls (the chat port, as terminal clients) or ws (the web port: wss://HOST:WEBPORT/ws with the server's own Origin, as browsers). Compare the two with interleaved runs.", rich_help_panel=_LOAD)] = Transport.TLS,
    host: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Load this server instead of starting one (loopback only without --allow-remote).", rich_help_panel=_EXTERNAL)] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT", help="Port of the --host server.", rich_help_panel=_EXTERNAL)] = DEFAULT_PORT,
    web_port: Annotated[int, typer.Option(min=1, max=65535, metavar="PORT", help="Web port of the --host server, for --transport ws.", rich_help_panel=_EXTERNAL)] = DEFAULT_WEB_PORT,
    ca: Annotated[Path | None, typer.Option(metavar="FILE", help="The --host server's ca.pem.", rich_help_panel=_EXTERNAL)] = None,
    user_prefix: Annotated[str, typer.Option(metavar="PREFIX", help="Bench users on the --host server are PREFIX0, PREFIX1, ...", rich_help_panel=_EXTERNAL)] = "bench",
    password: Annotated[str | None, typer.Option(metavar="PASSWORD", envvar="SECURECHAT_BENCH_PASSWORD", help="Their common password (or set SECURECHAT_BENCH_PASSWORD).", show_default=False, rich_help_panel=_EXTERNAL)] = None,
    server_pid: Annotated[int | None, typer.Option(metavar="PID", help="The --host server's process id, to report its CPU and memory (same machine only).", rich_help_panel=_EXTERNAL)] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host that is not a loopback address (sizing a real machine over the network).", rich_help_panel=_EXTERNAL)] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:  # fmt: skip
    """Measure a server under load: latency, throughput, CPU and memory.

    Without --host, starts a throwaway server on 127.0.0.1 and removes it afterwards.
    With --transport ws the sessions are browsers' (WebSocket on the web port), e.g.
    `securechat bench fanout-rate --transport ws`; on a --host server, give its --web-port.
    Exits with status 1 when the run saw failures (drops, missing deliveries, errors).
    """
    from securechat.bench.report import print_json, print_table
    from securechat.bench.run import BenchParams
    from securechat.bench.target import Target, require_loopback
    from securechat.bench.workloads import run_workload

    target = None
    if host is not None:
        require_loopback(host, port, allow_remote=allow_remote)
        if ca is None:
            raise ConfigError("--host needs --ca: the server's ca.pem")
        if password is None:
            raise ConfigError(
                "--host needs the bench users' password: --password or SECURECHAT_BENCH_PASSWORD"
            )
        target = Target(
            host=host, port=port, ca_file=ca, web_port=web_port, user_prefix=user_prefix,
            password=password,
        )  # fmt: skip
    elif server_pid is not None or allow_remote:
        raise ConfigError("--server-pid and --allow-remote only apply with --host")
    defaults = BenchParams()
    params = BenchParams(
        duration=duration, receivers=receivers, senders=senders, rate=rate, messages=messages,
        body_bytes=body_bytes, window=window, processes=processes,
        batch_generator=generator_policy is GeneratorPolicy.batch, transport=transport, logins=logins,
        resumes=resumes, concurrency=concurrency,
        levels=_numbers(levels, "--levels") or defaults.levels,
        sizes=_numbers(sizes, "--sizes") or defaults.sizes, plot=plot, queries=queries,
        nodes=_numbers(nodes, "--nodes") or defaults.nodes,
        search_index=search_index, first_logins=first_logins, files=transfers, file_size=_file_size(file_size), rounds=rounds,
    )  # fmt: skip
    with _sigterm_as_interrupt():
        report = run_workload(
            workload.value, params, target=target, server_pid=server_pid,
            show_progress=not json_output,
        )  # fmt: skip
    if json_output:
        print_json(report)
    else:
        print_table(report)
    if report.failures:
        raise typer.Exit(code=1)
