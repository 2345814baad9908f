"""The parent's side of the worker processes: start them, talk to them, stop them, meter CPU.

Workers are spawned (not forked: the parent may run rich's refresh thread) and ignore
SIGINT, so on Ctrl-C the parent's ``finally`` closes them in order. A worker that crashes
or goes silent turns into a :class:`BenchError`, never a hang.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Self

from securechat.bench.commands import Endpoint
from securechat.bench.harness import (
    BenchError,
    BenchTimeout,
    context_switches,
    cpu_seconds,
    memory_mib,
)
from securechat.bench.worker import worker_main

ProgressCallback = Callable[[dict[str, int]], None]
CLOSE_TIMEOUT = 15.0


class WorkerPool:
    """``processes`` workers, each with its own pipe, all loading one room."""

    def __init__(self, endpoint: Endpoint, room: str, processes: int, *, batch: bool) -> None:
        self._endpoint = endpoint
        self._room = room
        self._count = processes
        self._batch = batch  # run the workers under SCHED_BATCH
        self._procs: list[BaseProcess] = []
        self._pipes: list[Connection] = []
        self._progress: list[dict[str, int]] = []
        self.on_progress: ProgressCallback | None = None

    def __enter__(self) -> Self:
        context = multiprocessing.get_context("spawn")
        try:
            for _ in range(self._count):
                parent, child = context.Pipe()
                proc = context.Process(
                    target=worker_main,
                    args=(child, self._endpoint, self._room, self._batch),
                    name="bench",
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._pipes.append(parent)
                self._progress.append({})
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self._count

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def send(self, index: int, *command: Any) -> None:
        self._pipes[index].send(command)

    def send_all(self, *command: Any) -> None:
        for pipe in self._pipes:
            pipe.send(command)

    def collect(self, kind: str, timeout: float, only: Sequence[int] | None = None) -> list[Any]:
        """One ``kind`` reply from each worker (in worker order), relaying progress meanwhile.

        Raises:
            BenchError: a worker crashed, reported an error, or ``timeout`` passed.
        """
        waiting = set(range(self._count) if only is None else only)
        replies: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchTimeout(f"workers gave no {kind!r} within {timeout:.0f} s")
            by_fd = {self._pipes[i].fileno(): i for i in waiting}
            for ready in wait([self._pipes[i] for i in waiting], min(remaining, 0.5)):
                assert isinstance(ready, Connection)
                index = by_fd[ready.fileno()]
                name, payload = self._receive(index)
                if name == "error":
                    raise BenchError(f"bench worker {index} failed:\n{payload}")
                if name == "progress":
                    self._progress[index] = payload
                    if self.on_progress is not None:
                        self.on_progress(self.progress())
                elif name == kind:
                    replies[index] = payload
                    waiting.discard(index)
            for index in list(waiting):
                if not self._procs[index].is_alive():
                    raise BenchError(f"bench worker {index} exited unexpectedly")
        return [replies[i] for i in sorted(replies)]

    def _receive(self, index: int) -> tuple[str, Any]:
        try:
            name, payload = self._pipes[index].recv()
        except (EOFError, OSError) as exc:
            raise BenchError(f"bench worker {index} died") from exc
        return name, payload

    def progress(self) -> dict[str, int]:
        """The workers' latest counters, summed."""
        total: dict[str, int] = {}
        for counters in self._progress:
            for key, value in counters.items():
                total[key] = total.get(key, 0) + value
        return total

    def cpu_seconds(self) -> float:
        """CPU used so far by the workers and this (parent) process."""
        own = os.times()
        return own.user + own.system + sum(cpu_seconds(pid) for pid in self.pids)

    def close(self) -> None:
        """Ask each worker to say bye and exit; kill any that do not within the timeout."""
        for pipe, proc in zip(self._pipes, self._procs, strict=True):
            if proc.is_alive():
                try:
                    pipe.send(("close",))
                except (BrokenPipeError, OSError):
                    continue  # it is exiting anyway; the join below deals with it
        deadline = time.monotonic() + CLOSE_TIMEOUT
        for proc in self._procs:
            proc.join(max(deadline - time.monotonic(), 0.1))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self._pipes:
            pipe.close()
        self._procs, self._pipes = [], []


class Meter:
    """Wall time, server CPU and context switches, and generator CPU over one interval."""

    def __init__(self, server_pid: int | None, pool: WorkerPool) -> None:
        self._server_pid = server_pid
        self._pool = pool
        self._start = 0.0
        self._server0 = 0.0
        self._gen0 = 0.0
        self._switches0 = 0

    def start(self) -> None:
        self._start = time.monotonic()
        if self._server_pid:
            self._server0 = cpu_seconds(self._server_pid)
            self._switches0 = context_switches(self._server_pid)
        self._gen0 = self._pool.cpu_seconds()

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self._start
        result: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "generator_cpu_s": round(self._pool.cpu_seconds() - self._gen0, 2),
        }
        result["generator_cpu_pct"] = round(100 * result["generator_cpu_s"] / wall, 1)
        if self._server_pid:
            server = cpu_seconds(self._server_pid) - self._server0
            result["server_cpu_s"] = round(server, 2)
            result["server_cpu_pct"] = round(100 * server / wall, 1)
            switches = context_switches(self._server_pid) - self._switches0
            result["server_context_switches"] = switches
            result["server_memory_mib"] = memory_mib(self._server_pid)
        return result
