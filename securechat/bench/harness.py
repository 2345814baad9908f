"""A throwaway server for the bench: temp directory, certificates, users, database, process.

The server runs as a separate process so that its CPU time (``/proc/PID/stat``) and memory
(``VmRSS``/``VmHWM`` in ``/proc/PID/status``) are measured apart from the generator's.
It listens on 127.0.0.1 with free ports for the chat port and the web port (browsers:
``--transport ws``), both read from its start-up log; its certificate names localhost and
127.0.0.1, so the web port's origin check admits ``https://127.0.0.1:WEBPORT``.
With ``cheap_logins`` it runs through :mod:`securechat.bench.throwaway`, which is
``securechat serve`` with the test suite's cheap argon2 profile, because ``serve`` itself
hashes with the default profile and would re-hash cheap passwords on their first login.
Without it (the connect workload) it is the real ``securechat serve`` and the users'
passwords are hashed with the default profile, so login rates are honest. ``bench nodes``
starts several such processes on one PostgreSQL database (``db_url``), one log each.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from securechat.accounts import Accounts
from securechat.bench.target import Target
from securechat.certs import init_certs
from securechat.config import HashParams
from securechat.deploy import MALLOC_TUNABLES
from securechat.errors import SecureChatError
from securechat.store.database import open_database

MARKER = "securechat-bench.marker"  # only a directory made by the bench holds this file
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_LISTENING = re.compile(r"listening on \S+ port (\d+)")
_WEB_LISTENING = re.compile(r"web client on port (\d+)")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SERVE_OPTIONS = {"rate_per_second": "rate"}  # Limits field -> `securechat serve` option


class BenchError(SecureChatError):
    """The bench could not run (server failed to start, a worker crashed, ...)."""


class BenchTimeout(BenchError):
    """The workers did not finish a step in time: the server is too slow for this load."""


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (inherited by workers and the server)."""
    import resource  # POSIX only, like the bench; the CLI that lists it runs on Windows too

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of process ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def context_switches(pid: int) -> int:
    """Context switches of the threads of process ``pid`` alive now, voluntary or not.

    Each wake-up of a thread (a queue handed over, the GIL passed on) costs one or two; a
    thread that has ended no longer counts, so compare readings over an interval in which
    the threads stay (a fan-out).
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split(":")[1])
    return total


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM), in MiB, and the thread count."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
        elif key == "Threads":
            values[key] = int(rest)
    return values


@dataclasses.dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the report says about the server under load."""

    pid: int | None
    description: str
    cheap_logins: bool


def _add_users(db_url: str, names: list[str], password: str, params: HashParams) -> int:
    database = open_database(db_url)
    try:
        accounts = Accounts(database, hash_params=params)
        for name in names:
            accounts.add(name, password)
    finally:
        database.dispose()
    return len(names)


class ThrowawayServer:
    """Start a fresh server on 127.0.0.1 with ``users`` bench users; remove it all on exit."""

    def __init__(
        self,
        *,
        users: int,
        cheap_logins: bool,
        limits: dict[str, float],
        prepare: Callable[[str, Target], None] | None = None,
        db_url: str | None = None,
        nodes: int = 1,
    ) -> None:
        """``prepare(db_url, target)`` runs once the users exist, before the server starts.
        ``db_url``: a PostgreSQL database the bench made, for ``nodes`` servers (default:
        one server on a SQLite file of its own)."""
        self._users = users
        self._db_url = db_url
        self._nodes = nodes
        self._prepare = prepare
        self._cheap = cheap_logins
        self._limits = limits
        self._dir: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self.target: Target | None = None
        self.node_ports: list[int] = []  # every node's chat port, the target's first

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        return self._procs[0] if self._procs else None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    @property
    def info(self) -> ServerInfo:
        if self._cheap:
            text = "self-started (securechat.bench.throwaway: `serve` with cheap argon2 logins)"
        else:
            text = "self-started (`securechat serve`, default argon2 parameters)"
        return ServerInfo(pid=self.pid, description=text, cheap_logins=self._cheap)

    @property
    def log_file(self) -> Path:
        return self._log_of(0)

    def _log_of(self, node: int) -> Path:
        assert self._dir is not None
        return self._dir / ("server.log" if node == 0 else f"server-{node}.log")

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="securechat-bench-"))
        (self._dir / MARKER).write_text("made by securechat bench; deleted when it ends\n")
        certs = self._dir / "certs"
        init_certs(certs, hosts=["localhost", "127.0.0.1", "::1"])
        db_url = self._db_url or f"sqlite:///{self._dir / 'chat.db'}"
        target = Target(host="127.0.0.1", port=0, ca_file=certs / "ca.pem")
        self._create_users(db_url, [target.user(i) for i in range(self._users)], target.password)
        if self._prepare is not None:
            self._prepare(db_url, target)
        for node in range(self._nodes):
            self._procs.append(self._spawn(certs, db_url, node))
        ports = [self._wait_listening(node) for node in range(self._nodes)]
        self.node_ports = [chat for chat, _ in ports]
        self.target = dataclasses.replace(target, port=ports[0][0], web_port=ports[0][1])

    def _create_users(self, db_url: str, names: list[str], password: str) -> None:
        params = HashParams.for_tests() if self._cheap else HashParams()
        open_database(db_url).dispose()  # brings the schema to head once, before the workers
        if self._cheap or len(names) < 4:
            _add_users(db_url, names, password, params)
            return
        # Default-cost hashing takes ~0.1-0.3 s a user: use both cores.
        halves = [names[0::2], names[1::2]]
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            for future in [pool.submit(_add_users, db_url, h, password, params) for h in halves]:
                future.result()

    def _spawn(self, certs: Path, db_url: str, node: int) -> subprocess.Popen[bytes]:
        assert self._dir is not None
        if self._cheap:
            config = self._dir / "server.json"
            config.write_text(
                json.dumps({"certs": str(certs), "db": db_url, "limits": self._limits})
            )
            argv = [sys.executable, "-m", "securechat.bench.throwaway", str(config)]
        else:
            argv = [sys.executable, "-m", "securechat", "serve", "--host", "127.0.0.1",
                    "--port", "0", "--web-port", "0", "--certs", str(certs), "--db", db_url]  # fmt: skip
            for name, value in self._limits.items():
                option = _SERVE_OPTIONS.get(name, name).replace("_", "-")
                argv += [f"--{option}", str(value)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)  # as the service unit runs it
        with self._log_of(node).open("wb") as log:
            # A session of its own: a Ctrl-C in the terminal reaches us, and we stop it.
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True,
            )  # fmt: skip

    def _wait_listening(self, node: int = 0) -> tuple[int, int]:
        """The chat port and the web port, once the server has logged both."""
        proc = self._procs[node]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self._log_of(node).read_text(errors="replace")
            chat, web = _LISTENING.search(text), _WEB_LISTENING.search(text)
            if chat and web:
                return int(chat.group(1)), int(web.group(1))
            if proc.poll() is not None:
                raise BenchError(f"the bench server exited at start:\n{text[-2000:]}")
            time.sleep(0.05)
        raise BenchError(f"the bench server did not start within {START_TIMEOUT:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if that takes too long; delete the directory."""
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
