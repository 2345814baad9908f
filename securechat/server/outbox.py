"""The bounded queue of frames waiting for one connection's writer.

Any thread may ``put()`` (the delivery thread fanning out, other connections announcing a
join); only the connection's own thread ``take()``s. A full outbox never blocks the
producer: it marks the connection as a slow consumer and wakes its owner, who closes it.
"""

from __future__ import annotations

import threading

from securechat.transport import Waker


class Outbox:
    __slots__ = (
        "_bytes",
        "_closed",
        "_frames",
        "_lock",
        "_max_bytes",
        "_max_frames",
        "_signalled",
        "overflowed",
        "waker",
    )

    def __init__(self, *, max_frames: int, max_bytes: int) -> None:
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        # Guards everything below. The wake-up is written under it too, so that close()
        # cannot release the descriptor between a producer's check and its write.
        self._lock = threading.Lock()
        self._frames: list[bytes] = []
        self._bytes = 0
        self._signalled = False
        self._closed = False
        self.overflowed = False
        self.waker = Waker()

    def put(self, frame: bytes) -> bool:
        """Queue ``frame``; False once the bound has been exceeded or the outbox closed."""
        with self._lock:
            if self._closed or self.overflowed:
                return False
            if len(self._frames) >= self._max_frames or self._bytes + len(frame) > self._max_bytes:
                self.overflowed = True
                self._frames.clear()
                self._bytes = 0
            else:
                self._frames.append(frame)
                self._bytes += len(frame)
            if not self._signalled:
                self._signalled = True
                self.waker.wake()
            return not self.overflowed

    @property
    def is_empty(self) -> bool:
        return not self._frames

    def take(self) -> list[bytes]:
        """Everything queued so far (owner thread only)."""
        self.waker.clear()  # before taking, so a put() after the take wakes us again
        with self._lock:
            frames, self._frames = self._frames, []
            self._bytes = 0
            self._signalled = False
        return frames

    def interrupt(self) -> None:
        """Wake the owner without queueing anything (to make it look at a close request)."""
        with self._lock:
            if not self._closed:
                self._signalled = True
                self.waker.wake()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._frames.clear()
            self.waker.close()
