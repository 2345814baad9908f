"""How a connection's driver moves a file request along (#27): the driver's side of
``filerequests.py``, kept beside connection.py rather than in it.

A download is pulled a chunk at a time only while fewer than :data:`HIGH_WATER` bytes
wait to be written, so a file is read from disk as fast as the client takes it and the
server holds at most about ``HIGH_WATER`` plus a chunk of it, whatever its size.
"""

from __future__ import annotations

from securechat.protocol.clocks import Phase, SessionClocks
from securechat.server.framing import Framing
from securechat.transport import TlsStream

#: Bytes waiting to be written past which a connection reads no more requests (and
#: pulls no more of a download) until the socket takes some.
HIGH_WATER = 1024 * 1024


def advance(stream: TlsStream, framing: Framing, clocks: SessionClocks, now: float) -> str | None:
    """Why the connection must close now (the framing has ended the exchange), or None.

    During a file request: start its clock, queue a download's next chunks while there is
    room, and end once the whole answer is written.
    """
    transfer = framing.transfer
    if transfer is None:
        return framing.ending
    if clocks.phase is Phase.OPENING:
        clocks.transferring(now)
    while transfer.pending and stream.unsent < HIGH_WATER:
        transfer.pull()
        stream.queue_many(framing.data_to_send())
        stream.flush()
    return framing.ending if framing.ending is not None and not stream.unsent else None
