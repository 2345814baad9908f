"""Password hashing in child processes at idle priority, so a login storm leaves the CPU
to the chat.

An argon2id verification with the default parameters holds 64 MiB and, with parallelism
4, keeps four of libargon2's threads busy for a good fraction of a second. The server
hands every hash and verification to ``workers`` child processes:

- Each process runs under ``SCHED_IDLE`` (``nice`` 19 where that is refused): the kernel
  gives it only CPU time nothing else wants and preempts it the moment a chat thread
  wakes up; libargon2's lane threads inherit the policy. Inside the server this was not
  possible: a ``SCHED_IDLE`` *thread* preempted while it held the GIL stalled every other
  thread behind it for hundreds of milliseconds; a child process shares no GIL.
- A login first takes one of ``workers`` slots (:meth:`HashPool.slot`), waiting at most
  until its deadline, else ``rate_limited``. That bounds the memory the checks hold and
  keeps a storm's backlog in the connection threads, where the deadline still applies.
- A process that dies (the OOM killer, say) is replaced; the login it was checking gets
  ``rate_limited`` and its client tries again.

Passwords reach the processes over a pipe from the server, their parent; they are never
written anywhere. The processes are started with ``spawn`` (a fresh interpreter that
imports this module and securechat.hashing, not the server): forking a server full of
threads could copy a lock that some other thread holds. They ignore Ctrl-C and end when
the server closes the pool or dies.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from securechat.config import HashParams
from securechat.errors import RateLimited, ServerError
from securechat.hashing import hash_password, make_hasher, verify_password

log = logging.getLogger("securechat.server")

T = TypeVar("T")

IDLE_NICE = 19  # where SCHED_IDLE is not available


def _start_worker() -> None:
    """Run in each hashing process as it starts: idle priority, and end with the server."""
    # Ctrl-C in a terminal signals the whole process group; the server decides when its
    # hashing process stops (pool shutdown, or the watch on the parent below).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or a sandbox that refuses it
        try:
            os.setpriority(os.PRIO_PROCESS, 0, IDLE_NICE)
        except OSError as exc:  # still usable, just not out of the chat's way
            log.warning("password checks run at normal priority: %s", exc)
    # A server killed outright never closes the pool, and the worker's own copy of the
    # task pipe would keep it waiting for work for ever (holding the server's stdout).
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()  # returns when the parent process is gone
    os._exit(0)


def _cannot_start(exc: BaseException) -> ServerError:
    return ServerError(f"cannot start the password hashing process: {exc}")


def _shutting_down() -> RateLimited:
    return RateLimited("the server is shutting down; try again", retry_after=1)


def _ready() -> tuple[int, str]:
    """A hashing process's id and its scheduling, once it has started."""
    policy = "SCHED_IDLE" if os.sched_getscheduler(0) == os.SCHED_IDLE else "SCHED_OTHER"
    return os.getpid(), f"{policy}, nice {os.getpriority(os.PRIO_PROCESS, 0)}"


class HashPool:
    """A :class:`securechat.hashing.Hasher` whose work runs in child processes. Thread-safe."""

    def __init__(self, params: HashParams, workers: int) -> None:
        """Raises ServerError when multiprocessing cannot be set up (see start())."""
        self._params = params
        self._workers = workers
        self._local = make_hasher(params)  # check_needs_rehash only parses the stored hash
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        # Guarded by _lock: the current executor (replaced when a process dies), closed.
        self._executor = self._new_executor()
        self._closed = False

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        """A new pool (its processes start on first use).

        Raises:
            ServerError: multiprocessing could not even set up (its resource tracker).
        """
        try:
            return concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )
        except OSError as exc:
            raise _cannot_start(exc) from exc

    def start(self) -> list[tuple[int, str]]:
        """Start every process now, so the first logins do not wait for an interpreter.

        Returns each process's id and scheduling (several answers may come from one).

        Raises:
            ServerError: the process could not be started (no memory, no such executable).
        """
        with self._lock:
            executor = self._executor
        try:
            futures = [executor.submit(_ready) for _ in range(self._workers)]
            return [future.result() for future in futures]
        except (BrokenProcessPool, OSError) as exc:
            raise _cannot_start(exc) from exc

    @contextlib.contextmanager
    def slot(self, timeout: float) -> Iterator[None]:
        """Hold one of the ``workers`` places for a login's hashing.

        Raises:
            RateLimited: no place came free within ``timeout`` seconds.
        """
        if not self._slots.acquire(timeout=max(timeout, 0.0)):
            raise RateLimited("the server is busy with other logins; try again", retry_after=1)
        try:
            yield
        finally:
            self._slots.release()

    # --- the Hasher protocol ---------------------------------------------------------

    def hash(self, password: str) -> str:
        return self._run(hash_password, self._params, password)

    def verify(self, hash: str, password: str) -> bool:
        return self._run(verify_password, self._params, hash, password)

    def check_needs_rehash(self, hash: str) -> bool:
        return self._local.check_needs_rehash(hash)

    # ---------------------------------------------------------------------------------

    def _run(self, call: Callable[..., T], *args: object) -> T:
        """``call(*args)`` in a hashing process; its exceptions are raised here.

        Raises:
            RateLimited: the process died, or the server is shutting down.
        """
        with self._lock:
            if self._closed:
                raise _shutting_down()
            executor = self._executor
        try:
            return executor.submit(call, *args).result()
        except BrokenProcessPool:
            self._replace(executor)
            raise RateLimited(
                "the password check was interrupted; try again", retry_after=1
            ) from None
        except RuntimeError:  # submit() after close(): "cannot schedule new futures"
            if self._closed:
                raise _shutting_down() from None
            raise

    def _replace(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is not broken or self._closed:
                return  # another thread replaced it already
            log.error("a password hashing process died; starting new ones")
            try:
                self._executor = self._new_executor()
            except ServerError as exc:  # the next check tries again
                log.error("%s", exc.message)
                return
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the processes after the checks already running. Idempotent."""
        with self._lock:
            self._closed = True
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)
