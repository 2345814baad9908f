"""TLS connections for both ends: a non-blocking socket driven by one thread.

OpenSSL does not promise that concurrent ``SSL_read`` and ``SSL_write`` on one connection
are safe, so a TLS socket is used by one thread at a time: the client's I/O thread, or on
the server whichever thread holds the connection's :class:`Turn` (a stream given one
asserts that its caller holds it). The thread that waits on the socket also waits for a
:class:`Waker` that other threads use to say "there is something to send". This is the
only module that calls ``recv()`` and ``send()`` on a TLS socket; it turns ``OSError``
and ``ssl.SSLError`` into :class:`ConnectionLost`. Opening a client connection is
:mod:`securechat.dialer`'s. The blocking helpers (:meth:`TlsStream.flush_until`,
:meth:`TlsStream.receive_until`) wait with ``selectors``, so the client runs wherever
Python does, Windows included.

Writes are coalesced: queued frames are joined into one chunk of up to ``WRITE_CHUNK``
bytes per ``SSL_write``, so a burst of small frames costs a few TLS records, not one
each. After ``SSLWantWriteError`` OpenSSL requires the very same chunk again, which is why
a chunk, once cut, is kept until it is fully written.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import threading
import time
from threading import get_ident

from securechat.errors import ConnectionLost

READ_SIZE = 65536
WRITE_CHUNK = 256 * 1024


class Waker:
    """Lets any thread interrupt the owner's wait: an eventfd on Linux, else a socket pair.

    A socket pair, not a pipe, because Windows can wait only for sockets.
    """

    def __init__(self) -> None:
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if hasattr(os, "eventfd"):
            self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self._pair = socket.socketpair()
            for end in self._pair:
                end.setblocking(False)
            self._fd = self._pair[0].fileno()

    def fileno(self) -> int:
        return self._fd

    def wake(self) -> None:
        try:
            if self._pair is None:
                os.write(self._fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                self._pair[1].send(b"\x01")
        except BlockingIOError:
            pass  # already signalled: the counter or the buffer is full, the owner will wake
        except OSError:
            pass  # closed during shutdown: the owner is gone, nothing to wake

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):  # nothing was signalled
            if self._pair is None:
                os.read(self._fd, 8)
            else:
                self._pair[0].recv(4096)

    def close(self) -> None:
        if self._pair is None:
            os.close(self._fd)
        else:
            for end in self._pair:
                end.close()


class Turn:
    """A lock that knows its holder: which thread may use a stream now.

    Only the holder gives it back, and :class:`TlsStream` asserts that its caller holds it.
    """

    __slots__ = ("_lock", "holder")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holder = 0  # the holding thread's ident, 0 when free; written by the holder

    def take(self) -> None:
        self._lock.acquire()
        self.holder = get_ident()

    def try_take(self) -> bool:
        """Take the turn if it is free; never waits."""
        if not self._lock.acquire(False):  # positional: no keyword parsing per send
            return False
        self.holder = get_ident()
        return True

    def give_back(self) -> None:
        assert self.holder == get_ident(), "only the holder gives the turn back"
        self.holder = 0
        self._lock.release()

    def __enter__(self) -> None:
        self.take()

    def __exit__(self, *exc_info: object) -> None:
        self.give_back()


_NOT_HOLDER = "a TlsStream used by a thread that does not hold its turn"


class TlsStream:
    """A thread's handle on one non-blocking TLS socket.

    With a ``turn``, every method that touches the socket or the write queue asserts that
    the calling thread holds it.
    """

    def __init__(self, sock: ssl.SSLSocket, turn: Turn | None = None) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._turn = turn
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

    def peer_certificate(self) -> bytes:
        """The certificate (DER) the peer presented in this TLS session; b"" if none."""
        return self._sock.getpeercert(binary_form=True) or b""

    def handshake(self, deadline: float, interrupt: Waker | None = None) -> None:
        """Complete the TLS handshake by ``deadline`` (a ``time.monotonic()`` value).

        Returns early, handshake unfinished, when ``interrupt`` is woken: the caller checks
        why (the server closing a connection that waited too long, say).

        Raises:
            ConnectionLost: the peer failed the handshake, closed, or was too slow.
        """
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            if interrupt is not None:
                selector.register(interrupt, selectors.EVENT_READ)
            while True:
                try:
                    self._sock.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    selector.modify(self._sock, selectors.EVENT_READ)
                except ssl.SSLWantWriteError:
                    selector.modify(self._sock, selectors.EVENT_WRITE)
                except (ssl.SSLError, OSError) as exc:
                    raise ConnectionLost(f"TLS handshake failed: {_describe(exc)}") from exc
                remaining = deadline - time.monotonic()
                ready = selector.select(remaining) if remaining > 0 else []
                if not ready:
                    raise ConnectionLost("TLS handshake timed out")
                if interrupt is not None and any(key.fileobj is interrupt for key, _ in ready):
                    return

    def receive(self, limit: int = 4 * READ_SIZE) -> bytes:
        """Read what is available now, up to about ``limit`` bytes; b"" if nothing is.

        Raises:
            ConnectionLost: the peer closed the connection or it broke.
        """
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
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
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        return self._sock.pending() > 0

    def queue(self, data: bytes) -> None:
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        self._queue.append(data)
        self._queued += len(data)

    def queue_many(self, frames: list[bytes]) -> None:
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        self._queue.extend(frames)
        self._queued += sum(map(len, frames))

    @property
    def unsent(self) -> int:
        """Bytes queued or cut but not yet accepted by the kernel."""
        return self._queued + len(self._chunk)

    def write(self, data: bytes) -> bool:
        """Write ``data`` at once, nothing being queued; True when all of it went out.

        The fan-out's fast path: ``data`` becomes the chunk itself, skipping the queue and
        the cutting, which it does for every recipient of every message. What the socket
        does not take stays as the chunk for the next :meth:`flush`.

        Raises:
            ConnectionLost: the connection broke.
        """
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        assert not self._chunk, "write() would overtake a cut chunk"
        assert not self._queue, "write() would overtake queued frames"
        self._chunk = data
        return self._send()

    def flush(self) -> bool:
        """Write as much as the socket takes now; True when nothing is left.

        Raises:
            ConnectionLost: the connection broke.
        """
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        return self._send()

    def _send(self) -> bool:
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

    def flush_until(self, deadline: float) -> None:
        """Write everything queued, waiting for the socket until ``deadline`` (monotonic).

        Raises:
            ConnectionLost: the connection broke, or the peer took too long to read.
        """
        while not self.flush():
            if not self._wait(selectors.EVENT_WRITE, deadline):
                raise ConnectionLost("the other side did not read what we sent in time")

    def receive_until(self, deadline: float) -> bytes:
        """Some bytes (at least one), waiting for them until ``deadline`` (monotonic).

        Raises:
            ConnectionLost: the peer closed, the connection broke, or nothing came in time.
        """
        while True:
            if self.has_buffered_input or self._wait(selectors.EVENT_READ, deadline):
                data = self.receive()
                if data:
                    return data
            elif time.monotonic() >= deadline:
                raise ConnectionLost("no answer in time")

    def _wait(self, events: int, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, events)
            return bool(selector.select(remaining))

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

    def end_output(self) -> None:
        """End our side of the stream (TCP FIN) and keep reading: the peer sees the end
        while what it still sends is read, not reset. No TLS close_notify, as in close().

        The plain socket's ``shutdown``: ``SSLSocket.shutdown`` drops the TLS object.
        """
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        with contextlib.suppress(OSError):  # already disconnected
            socket.socket.shutdown(self._sock, socket.SHUT_WR)

    def close(self) -> None:
        """Close without a TLS close_notify exchange (which could block on a dead peer)."""
        assert self._turn is None or self._turn.holder == get_ident(), _NOT_HOLDER
        with contextlib.suppress(OSError):  # already disconnected
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def receive_before_tls(
    sock: socket.socket,
    size: int,
    deadline: float,
    interrupt: Waker | None = None,
    *,
    peek: bool = False,
) -> bytes | None:
    """Up to ``size`` clear bytes that came before the TLS handshake (a PROXY header),
    waiting for some until ``deadline`` (monotonic); None when ``interrupt`` woke first.

    Reads with the plain socket's ``recv`` (also on an :class:`ssl.SSLSocket` whose
    handshake has not begun): OpenSSL has read nothing yet, and what is not taken here is
    its to read. With ``peek`` the bytes stay in the kernel for it.

    Raises:
        ConnectionLost: the peer closed or the connection broke, or nothing came in time.
    """
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        if interrupt is not None:
            selector.register(interrupt, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        ready = selector.select(remaining) if remaining > 0 else []
    if not ready:
        raise ConnectionLost("nothing received in time (handshake deadline)")
    if interrupt is not None and any(key.fileobj is interrupt for key, _ in ready):
        return None
    try:
        data = socket.socket.recv(sock, size, socket.MSG_PEEK if peek else 0)
    except OSError as exc:
        raise ConnectionLost(_describe(exc)) from exc
    if not data:
        raise ConnectionLost("closed by peer")
    return data


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
