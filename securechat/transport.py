"""A non-blocking TLS socket driven by exactly one thread.

OpenSSL does not promise that concurrent ``SSL_read`` and ``SSL_write`` on one connection
are safe, so each TLS socket has a single owner thread that both reads and writes it. The
owner waits in ``poll()`` on the socket and on a :class:`Waker` that other threads use to
say "there is something to send". This is the only module that calls ``recv()`` and
``send()`` on a TLS socket; it turns ``OSError`` and ``ssl.SSLError`` into
:class:`ConnectionLost`.

Writes are coalesced: queued frames are joined into one chunk of up to ``WRITE_CHUNK``
bytes per ``SSL_write``, so a burst of small frames costs a few TLS records, not one
each. After ``SSLWantWriteError`` OpenSSL requires the very same chunk again, which is why
a chunk, once cut, is kept until it is fully written.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time

from securechat.errors import ConnectionLost

READ_SIZE = 65536
WRITE_CHUNK = 256 * 1024
POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLL_ERRORS = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Waker:
    """Lets any thread interrupt the owner's ``poll()``: an eventfd on Linux, else a pipe."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - non-Linux
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)

    def fileno(self) -> int:
        return self._read_fd

    def wake(self) -> None:
        try:
            os.write(self._write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except BlockingIOError:
            pass  # already signalled: the counter or the pipe is full, the owner will wake
        except OSError:
            pass  # closed during shutdown: the owner is gone, nothing to wake

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):  # nothing was signalled
            os.read(self._read_fd, 4096)

    def close(self) -> None:
        os.close(self._read_fd)
        if self._write_fd != self._read_fd:
            os.close(self._write_fd)


class TlsStream:
    """The owner thread's handle on one non-blocking TLS socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._chunk = b""  # cut for SSL_write; must be retried unchanged
        self._queue: list[bytes] = []
        self._queued = 0
        self._ended: ConnectionLost | None = None  # seen after data that is returned first
        self.wants_read_to_write = False
        self.written = 0  # bytes the kernel has accepted so far: progress, whoever wrote

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def version(self) -> str | None:
        return self._sock.version()

    def handshake(self, deadline: float, interrupt: Waker | None = None) -> None:
        """Complete the TLS handshake by ``deadline`` (a ``time.monotonic()`` value).

        Returns early, handshake unfinished, when ``interrupt`` is woken: the caller checks
        why (the server closing a connection that waited too long, say).

        Raises:
            ConnectionLost: the peer failed the handshake, closed, or was too slow.
        """
        poller = select.poll()
        poller.register(self._sock, POLLIN)
        if interrupt is not None:
            poller.register(interrupt, POLLIN)
        while True:
            try:
                self._sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                poller.modify(self._sock, POLLIN)
            except ssl.SSLWantWriteError:
                poller.modify(self._sock, POLLOUT)
            except (ssl.SSLError, OSError) as exc:
                raise ConnectionLost(f"TLS handshake failed: {_describe(exc)}") from exc
            remaining = deadline - time.monotonic()
            ready = poller.poll(remaining * 1000) if remaining > 0 else []
            if not ready:
                raise ConnectionLost("TLS handshake timed out")
            if interrupt is not None and any(fd == interrupt.fileno() for fd, _ in ready):
                return

    def receive(self, limit: int = 4 * READ_SIZE) -> bytes:
        """Read what is available now, up to about ``limit`` bytes; b"" if nothing is.

        Raises:
            ConnectionLost: the peer closed the connection or it broke.
        """
        if self._ended is not None:
            raise self._ended
        parts: list[bytes] = []
        total = 0
        self.wants_read_to_write = False
        while total < limit:
            try:
                data = self._sock.recv(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLWantWriteError:
                self.wants_read_to_write = True
                break
            except ssl.SSLZeroReturnError as exc:
                self._ended = ConnectionLost("closed by peer")
                self._ended.__cause__ = exc
            except (ssl.SSLError, OSError) as exc:
                self._ended = ConnectionLost(_describe(exc))
                self._ended.__cause__ = exc
            else:
                if data:
                    parts.append(data)
                    total += len(data)
                    continue
                self._ended = ConnectionLost("closed by peer")
            if not parts:
                raise self._ended
            break  # hand over what came before the end; the next call raises
        return b"".join(parts)

    @property
    def has_ended(self) -> bool:
        """The peer closed (or the connection broke) after the data last returned."""
        return self._ended is not None

    @property
    def has_buffered_input(self) -> bool:
        """Decrypted bytes wait inside OpenSSL, which poll() cannot see."""
        return self._sock.pending() > 0

    def queue(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued += len(data)

    def queue_many(self, frames: list[bytes]) -> None:
        self._queue.extend(frames)
        self._queued += sum(map(len, frames))

    @property
    def unsent(self) -> int:
        """Bytes queued or cut but not yet accepted by the kernel."""
        return self._queued + len(self._chunk)

    def write(self, data: bytes) -> bool:
        """Write ``data`` at once, nothing being queued; True when all of it went out.

        The fan-out's fast path: ``data`` becomes the chunk itself, skipping the queue and
        the cutting (a quarter of the Python time per recipient). What the socket does
        not take stays as the chunk for the next :meth:`flush`.

        Raises:
            ConnectionLost: the connection broke.
        """
        assert not self._chunk, "write() would overtake a cut chunk"
        assert not self._queue, "write() would overtake queued frames"
        self._chunk = data
        return self.flush()

    def flush(self) -> bool:
        """Write as much as the socket takes now; True when nothing is left.

        Raises:
            ConnectionLost: the connection broke.
        """
        while True:
            if not self._chunk:
                if not self._queue:
                    return True
                self._chunk = self._cut()
            try:
                sent = self._sock.send(self._chunk)
            except (ssl.SSLWantWriteError, BlockingIOError):
                return False
            except ssl.SSLWantReadError:
                return False
            except (ssl.SSLError, OSError) as exc:
                raise ConnectionLost(_describe(exc)) from exc
            self.written += sent
            self._chunk = self._chunk[sent:]

    def _cut(self) -> bytes:
        queue, size, count = self._queue, 0, 0
        for frame in queue:
            size += len(frame)
            count += 1
            if size >= WRITE_CHUNK:
                break
        chunk = b"".join(queue[:count]) if count > 1 else queue[0]
        del queue[:count]
        self._queued -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close without a TLS close_notify exchange (which could block on a dead peer)."""
        with contextlib.suppress(OSError):  # already disconnected
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def format_address(address: tuple[str, int]) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
