"""The transfers of ``bench files``: rounds of concurrent uploads and downloads, the
server's resident memory sampled meanwhile, and the plain TLS copy they are judged against.

Each transfer client is a real :class:`~securechat.client.Client` of a user of its own
(a user has at most ``max_uploads_per_user`` uploads in flight), uploading one file and
downloading it back, all clients at once, each in a thread of the transfer process
(:mod:`.transfer_process`), not of the bench's. :class:`RssPeak` and the baseline run in
the bench process: the baseline copies the same number of bytes through one TLS 1.3
socket pair over loopback, with the same chunk size and the server's own TLS settings
(:mod:`securechat.tls`), so the ratio says what the server's streaming costs over the
encryption itself.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from securechat.bench.harness import memory_mib
from securechat.bench.target import Target
from securechat.certs import SERVER_CERT, SERVER_KEY, init_certs
from securechat.client import Client
from securechat.client.transfers import CHUNK
from securechat.errors import SecureChatError
from securechat.tls import client_context, server_context

MB = 1_000_000  # throughput is in decimal megabytes a second, as copy tools show it
SAMPLE_S = 0.05  # the server's RSS is read this often while a phase runs
CLIENT_TIMEOUT = 60.0  # each wait of a transfer client's, on a loaded 2-core machine


@dataclasses.dataclass(frozen=True, slots=True)
class Round:
    """Transfers done in one phase: bytes up and down, over how long, and what failed."""

    bytes: int
    seconds: float
    rounds: int
    failures: tuple[str, ...]

    @property
    def mb_s(self) -> float:
        return round(self.bytes / MB / max(self.seconds, 1e-9), 1)


class TransferClients:
    """``count`` logged-in clients of users ``first`` on, closed on exit; their files are
    in ``scratch``, which the bench process removes (the transfer process may be killed)."""

    def __init__(self, target: Target, first: int, count: int, scratch: Path) -> None:
        self._target, self._first, self._count = target, first, count
        self._clients: list[Client] = []
        self._scratch = scratch

    def __enter__(self) -> Self:
        t = self._target
        try:
            for index in range(self._first, self._first + self._count):
                client = Client(
                    t.host, t.port, ca_file=t.ca_file, user=t.user(index), password=t.password,
                    timeout=CLIENT_TIMEOUT,
                )  # fmt: skip
                self._clients.append(client.connect())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients = []

    def source(self, size: int) -> Path:
        """A file of ``size`` random bytes (random: nothing on the way may compress it)."""
        path = self._scratch / f"source-{size}.bin"
        if not path.exists():
            with path.open("wb") as out:
                for done in range(0, size, CHUNK):
                    out.write(secrets.token_bytes(min(CHUNK, size - done)))
        return path

    def run(self, size: int, *, until: threading.Event | None = None) -> Round:
        """Every client uploads a file of ``size`` and downloads it back, all at once; with
        ``until``, round after round until it is set (at least one round), or until a
        round fails: a refusal (a file over the server's limit, say) comes back at once, and
        asking again would only load the server with refusals, not transfers."""
        source = self.source(size)
        done, rounds, failures = 0, 0, []
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(self._clients)) as pool:
            while True:
                jobs = [pool.submit(self._one, c, i, source, size) for i, c in enumerate(self._clients)]  # fmt: skip
                for job in jobs:
                    moved, failure = job.result()
                    done += moved
                    failures += [failure] if failure else []
                rounds += 1
                if until is None or until.is_set() or failures:
                    break
        return Round(done, time.monotonic() - started, rounds, tuple(failures[:10]))

    def _one(self, client: Client, index: int, source: Path, size: int) -> tuple[int, str]:
        """Upload ``source`` and download it back: the bytes moved, and what went wrong."""
        try:
            stored = client.upload(source)
            out = client.download(stored.id, self._scratch / f"got-{index}.bin", overwrite=True)
        except SecureChatError as exc:  # this transfer's failure, in the report
            return 0, f"{client.user}: {exc.message}"
        got = out.stat().st_size
        out.unlink()
        if got != size:
            return size, f"{client.user}: downloaded {got} of {size} bytes"
        return 2 * size, ""


class RssPeak:
    """The highest VmRSS of process ``pid`` seen while a ``with`` block of it runs, in MiB.

    VmHWM would do for one phase, but it never falls: the later phases need their own peak.
    """

    def __init__(self, pid: int | None) -> None:
        self._pid = pid
        self.mib: float | None = None

    @contextmanager
    def sampling(self) -> Iterator[None]:
        if self._pid is None:
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._sample, args=(stop,), name="rss sampler")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _sample(self, stop: threading.Event) -> None:
        assert self._pid is not None
        while True:
            rss = memory_mib(self._pid).get("VmRSS")
            if rss is not None:
                self.mib = rss if self.mib is None else max(self.mib, rss)
            if stop.wait(SAMPLE_S):
                return


def tls_copy(total: int) -> float:
    """Seconds to copy ``total`` bytes through one TLS socket pair on 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="securechat-bench-tls-") as folder:
        certs = Path(folder)
        init_certs(certs, hosts=["localhost"])
        server_tls = server_context(certs / SERVER_CERT, certs / SERVER_KEY)
        client_tls = client_context(certs / "ca.pem")
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(CLIENT_TIMEOUT)
            received: list[float] = []
            reader = threading.Thread(
                target=_receive, args=(listener, server_tls, total, received.append)
            )
            reader.start()
            try:
                raw = socket.create_connection(listener.getsockname(), timeout=CLIENT_TIMEOUT)
                with client_tls.wrap_socket(raw, server_hostname="localhost") as sender:
                    chunk = secrets.token_bytes(CHUNK)
                    started = time.monotonic()
                    for done in range(0, total, CHUNK):
                        sender.sendall(chunk[: min(CHUNK, total - done)])
                    reader.join()  # the sender stays open until every byte is read
            finally:
                reader.join()
    if not received:
        raise SecureChatError("the plain TLS copy did not complete")
    return received[0] - started


def _receive(
    listener: socket.socket, tls: ssl.SSLContext, total: int, finished: Callable[[float], None]
) -> None:
    conn, _ = listener.accept()
    with tls.wrap_socket(conn, server_side=True) as stream:
        got = 0
        while got < total:
            data = stream.recv(CHUNK)
            if not data:
                return
            got += len(data)
    finished(time.monotonic())
