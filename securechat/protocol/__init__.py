"""Protocol v1 without I/O: framing, messages, and the per-connection state machine.

Nothing in this package touches a socket, a thread, a clock, the database or logging
(a test enforces it), so it can be fuzzed and tested with plain bytes.
"""

from __future__ import annotations

from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.protocol.messages import decode_event, decode_request, encode
from securechat.protocol.session import ServerSession, State

__all__ = [
    "FrameDecoder",
    "ServerSession",
    "State",
    "decode_event",
    "decode_request",
    "encode",
    "encode_frame",
]
