"""websockets' sans-I/O server protocol, as the web port needs it.

Two changes, each made where websockets makes the decision, so no answer escapes them:

- A control frame from the browser (a ping, or a pong nobody asked for) is charged to the
  connection's request meter (server/requests.py) like any request. websockets queues the
  pong for a ping inside :meth:`~websockets.protocol.Protocol.recv_frame`, while it parses
  the bytes read, before the frame reaches any event the connection sees; so the charge
  happens there. A frame the meter refuses is dropped whole: no pong and no event.
  ``recv_frame`` is websockets' internal hook, not a documented one; the tests that send
  2000 pings (tests/test_web_server.py) fail if an upgrade of websockets bypasses it.
- The error answers websockets writes itself all come from :meth:`reject` (documented:
  "you may modify the response"): 414 and 431 for a request it cannot parse, 400, 405,
  426 and 505 for a bad upgrade, 500 and 503. They carry the same security headers as
  every answer of ours (webfiles.security_headers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.server import ServerProtocol
from websockets.typing import StatusLike

#: Charges one control frame; False: refused, drop it unanswered. Called in websockets'
#: receiving thread, with websockets' lock held: it must not send or wait.
Meter = Callable[[], bool]

_METERED = frozenset((Opcode.PING, Opcode.PONG))


class WebProtocol(ServerProtocol):
    """A :class:`ServerProtocol` that meters control frames and labels its own errors."""

    def __init__(self, *, max_size: int, headers: Iterable[tuple[str, str]], meter: Meter) -> None:
        """``headers``: added to every answer websockets makes itself; ``meter``: see Meter."""
        super().__init__(max_size=max_size)
        self._headers = tuple(headers)
        self._meter = meter

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode in _METERED and not self._meter():
            return  # refused: no pong, no event
        super().recv_frame(frame)

    def reject(self, status: StatusLike, text: str) -> Response:
        response = super().reject(status, text)
        for name, value in self._headers:
            response.headers[name] = value
        return response
