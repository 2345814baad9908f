"""The transfer clients of ``bench files`` in a process of their own, driven by the bench.

Why a process: clients on other machines cannot take the server's CPU, nor wait for it.
Run as threads of the bench process at normal priority, the 20 clients preempted the
server and starved the chat generator (SCHED_BATCH, :mod:`.pool`), so the chat p99
measured with transfers included the bench's own scheduling. Here they are scheduled like
the generator (:func:`~.scheduling.start_client_process`: SCHED_BATCH under
``--generator-policy batch``). Why one process for all of them, each client a thread in
it: that is how they ran before (:class:`~.transfers.TransferClients`), so only where they
run changes; a client spends its time in OpenSSL and file I/O, which release the GIL.

The bench keeps orchestrating: :meth:`TransferProcess.run` does one round and returns its
:class:`~.transfers.Round`; :meth:`~TransferProcess.start` then
:meth:`~TransferProcess.finish` do rounds until told to stop. The bench also samples the
server's RSS (:class:`~.transfers.RssPeak`) and runs the plain TLS copy itself.

Every wait has a timeout, and a process that fails or dies becomes a :class:`BenchError`.
On every way out of the ``with`` block (an exception, Ctrl-C, SIGTERM as the CLI maps it)
the process is asked to close, and killed if it has not within ``CLOSE_TIMEOUT``; it
ignores SIGINT, so Ctrl-C reaches only the bench, which closes it. If the bench itself is
killed, the process reads the end of its pipe and exits after the round in progress. The
files' scratch folder belongs to the bench process, which removes it after the process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from securechat.bench.harness import BenchError, BenchTimeout
from securechat.bench.scheduling import start_client_process
from securechat.bench.target import Target
from securechat.bench.transfers import MB, Round, TransferClients
from securechat.errors import SecureChatError

START_S = 60.0  # to start the process, plus LOGIN_S for each client's login
LOGIN_S = 2.0
ROUND_S = 60.0  # a round's wait: this, plus the time its bytes take at MIN_MB_S
MIN_MB_S = 1.0
CLOSE_TIMEOUT = 15.0  # to finish the round in progress and say bye; then it is killed
KILL_TIMEOUT = 5.0
MOVER_END_S = 10.0  # for a round's thread to return once it has sent its round
POLL_S = 0.5  # how often a wait checks that the process is still alive

Send = Callable[..., None]


class TransferProcess:
    """``count`` transfer clients of users ``first`` on, in one child process."""

    def __init__(self, target: Target, first: int, count: int, *, batch: bool) -> None:
        self._target, self._first, self._count = target, first, count
        self._batch = batch  # SCHED_BATCH, as the chat generator's workers
        self._proc: BaseProcess | None = None
        self._pipe: Connection | None = None
        self._scratch: Path | None = None
        self._size = 0  # of the files of the rounds started and not yet finished
        self.pid = 0

    def __enter__(self) -> Self:
        context = multiprocessing.get_context("spawn")
        try:
            self._scratch = Path(tempfile.mkdtemp(prefix="securechat-bench-files-"))
            self._pipe, child = context.Pipe()
            proc = context.Process(
                target=transfer_main,
                args=(child, self._target, self._first, self._count, self._scratch, self._batch),
                name="bench transfers",
            )
            try:
                proc.start()
            finally:
                child.close()
            self._proc = proc  # started: close() joins it
            self.pid = self._receive("ready", START_S + LOGIN_S * self._count)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def run(self, size: int) -> Round:
        """One round: every client uploads a file of ``size`` bytes and downloads it back."""
        self._send("run", size, False)
        return self._round(size)

    def start(self, size: int) -> None:
        """Start rounds of files of ``size`` bytes, one after another, until :meth:`finish`."""
        self._send("run", size, True)
        self._size = size

    def finish(self) -> Round:
        """Stop the rounds :meth:`start` began, once the one in progress is done: all of them."""
        self._send("stop")
        return self._round(self._size)

    def close(self) -> None:
        """Ask the process to close, kill it if it has not in time; remove the scratch folder."""
        proc, pipe, scratch = self._proc, self._pipe, self._scratch
        self._proc, self._pipe, self._scratch = None, None, None
        try:
            if proc is not None:
                try:
                    if proc.is_alive() and pipe is not None:
                        # A broken pipe: it is exiting anyway, and the join deals with it.
                        with contextlib.suppress(BrokenPipeError, OSError):
                            pipe.send(("close",))
                    proc.join(CLOSE_TIMEOUT)
                finally:  # even on a second Ctrl-C while it closes
                    if proc.is_alive():
                        proc.kill()
                        proc.join(KILL_TIMEOUT)
        finally:
            if pipe is not None:
                pipe.close()
            if scratch is not None:
                shutil.rmtree(scratch)

    def _round(self, size: int) -> Round:
        done: Round = self._receive("round", ROUND_S + 2 * self._count * size / MB / MIN_MB_S)
        return done

    def _send(self, *command: Any) -> None:
        assert self._pipe is not None, "use TransferProcess in a with block"
        try:
            self._pipe.send(command)
        except (BrokenPipeError, OSError) as exc:
            raise BenchError(self._died()) from exc

    def _receive(self, kind: str, timeout: float) -> Any:
        """The payload of the next ``kind`` message from the process.

        Raises:
            BenchError: the process reported an error, or died.
            BenchTimeout: nothing came within ``timeout`` seconds.
        """
        assert self._pipe is not None
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchTimeout(f"the transfer process gave no {kind!r} within {timeout:.0f} s")
            if self._pipe.poll(min(remaining, POLL_S)):
                try:
                    name, payload = self._pipe.recv()
                except (EOFError, OSError) as exc:
                    raise BenchError(self._died()) from exc
                if name == "error":
                    raise BenchError(f"the transfer process failed:\n{payload}")
                if name != kind:
                    raise BenchError(f"the transfer process sent {name!r}, not {kind!r}")
                return payload
            if not self._proc.is_alive():
                raise BenchError(self._died())

    def _died(self) -> str:
        assert self._proc is not None
        self._proc.join(KILL_TIMEOUT)  # its exit code, once the end of its pipe is read
        return f"the transfer process exited unexpectedly (exit code {self._proc.exitcode})"


def transfer_main(
    pipe: Connection, target: Target, first: int, count: int, scratch: Path, batch: bool
) -> None:
    """Entry point of the transfer process (spawned by :class:`TransferProcess`)."""
    start_client_process(batch)
    lock = threading.Lock()  # the round thread and this one both send

    def send(*message: Any) -> None:
        with lock:
            pipe.send(message)

    try:
        with TransferClients(target, first, count, scratch) as clients:
            send("ready", os.getpid())
            _serve(pipe, clients, send)
    except SecureChatError as exc:  # a login refused, the server gone: the bench says why
        send("error", exc.message)
    except Exception:  # a bug: the bench reports it and stops the run
        send("error", traceback.format_exc())
        raise
    finally:
        pipe.close()


def _serve(pipe: Connection, clients: TransferClients, send: Send) -> None:
    """Run the bench's commands (``run``, ``stop``, ``close``) until ``close``."""
    stop = threading.Event()
    mover: threading.Thread | None = None
    while True:
        try:
            command, *args = pipe.recv()
        except EOFError:  # the bench is gone: stop after the round in progress
            command, args = "close", []
        if command == "run":
            if mover is not None:
                # The bench asks again only after the last round came back: that thread
                # has sent it and is returning, and may not be done returning yet.
                mover.join(MOVER_END_S)
                if mover.is_alive():
                    raise BenchError("run: a round is already in progress")
            size, endless = args
            stop.clear()
            mover = threading.Thread(
                target=_rounds, args=(clients, size, stop if endless else None, send),
                name="transfer rounds",
            )  # fmt: skip
            mover.start()
        elif command == "stop":
            stop.set()
        elif command == "close":
            stop.set()
            if mover is not None:
                mover.join()  # bounded: each of a client's waits has its timeout
            return
        else:
            raise BenchError(f"unknown command {command!r}")


def _rounds(clients: TransferClients, size: int, until: threading.Event | None, send: Send) -> None:
    try:
        done = clients.run(size, until=until)
    except Exception:
        send("error", traceback.format_exc())
        raise
    send("round", done)
