"""The bench's frames: written with the product's codec, the hot ones read by prefix.

Every request is a protocol dataclass turned into bytes by :func:`encode` and
:func:`encode_frame`. A run's sends differ only in their send time and sequence number,
so :class:`SendFrames` encodes one ``Send`` per run and cuts it where those two go; each
send then costs one bytes format instead of a JSON encoding, which at fanout-max rates
would be a visible part of the generator's own CPU (docs/performance.md).

Receivers do not decode the hot frames, by choice: decoding hundreds of thousands of
deliveries a second would make the generator, not the server, the limit. A ``message``
frame is recognised by :data:`MESSAGE_PREFIX` and its send time read from its body, which
starts with ``time.monotonic_ns()`` as :data:`STAMP_DIGITS` digits and then the run's tag;
an ``ack`` by :data:`ACK_PREFIX`, with the sequence number after the tag in its ``ref``
(refs are per user and the server deduplicates a repeated one, so each run needs its
own). ``presence`` frames (:data:`PRESENCE_PREFIX`) are only counted, by the idle workload.
Every other event goes through :func:`decode_event` (see :func:`read_event`).
"""

from __future__ import annotations

from securechat.errors import UnknownMessageType
from securechat.protocol.frames import HEADER, encode_frame
from securechat.protocol.messages import Auth, Bye, Event, Join, Pong, Send, decode_event, encode

MAX_FRAME = 16 * 1024 * 1024  # we are the client: any frame the server sends is accepted
STAMP_DIGITS = 20
MESSAGE_PREFIX = b'{"type":"message"'
ACK_PREFIX = b'{"type":"ack"'
PRESENCE_PREFIX = b'{"type":"presence'  # one user's change, or a batch of them
BODY_KEY = b'"body":"'
REF_KEY = b'"ref":"'
PONG_FRAME = encode_frame(encode(Pong()))
BYE_FRAME = encode_frame(encode(Bye()))
JOIN_REF = "join"

# Where a send's two variable parts go in its encoded template: text that JSON keeps as
# it is and that no room name (a-z, 0-9, '.', '_', '-') or tag can hold.
_STAMP_MARK = "<stamp>"
_SEQ_MARK = "<seq>"


def body_overhead(tag: str) -> int:
    """The smallest body a run with ``tag`` can send: the send time, then the tag."""
    return STAMP_DIGITS + len(tag.encode())


def login_frames(
    user: str, *, password: str | None = None, token: str | None = None, room: str | None = None
) -> bytes:
    """The ``auth`` frame (with a password or a resume token), then a ``join`` of ``room``."""
    frames = encode_frame(encode(Auth(user=user, password=password, token=token)))
    if room is not None:
        frames += encode_frame(encode(Join(room=room, ref=JOIN_REF)))
    return frames


def read_event(payload: bytes) -> Event | None:
    """Decode a frame that is not a hot one; None for a newer server's event type.

    Raises:
        MalformedMessage: the server sent something that is not a valid event.
    """
    try:
        return decode_event(payload)
    except UnknownMessageType:
        return None  # ignored, as the protocol promises


class SendFrames:
    """One run's ``send`` frames: a ``Send`` encoded once, cut at the send time and sequence."""

    __slots__ = ("_after_seq", "_before_seq", "_before_stamp")

    def __init__(self, room: str, tag: str, body_bytes: int) -> None:
        padding = "x" * max(body_bytes - body_overhead(tag), 0)
        body = _STAMP_MARK + tag + padding
        template = encode(Send(body=body, room=room, ref=tag + _SEQ_MARK))
        self._before_stamp, rest = _cut(template, _STAMP_MARK)
        self._before_seq, self._after_seq = _cut(rest, _SEQ_MARK)

    def frame(self, stamp_ns: int, seq: int) -> bytes:
        """The framed ``send`` whose body starts with ``stamp_ns`` and whose ref ends in ``seq``."""
        payload = b"%s%020d%s%d%s" % (
            self._before_stamp,
            stamp_ns,
            self._before_seq,
            seq,
            self._after_seq,
        )
        return HEADER.pack(len(payload)) + payload


def _cut(template: bytes, mark: str) -> tuple[bytes, bytes]:
    marker = mark.encode()
    assert template.count(marker) == 1, f"{mark} must occur once in {template!r}"
    before, _, after = template.partition(marker)
    return before, after
