"""The client session's states and the one table of how it moves between them.

Rule, as in h11's ``_state.py``: everything that changes a
:class:`~securechat.protocol.client.ClientSession`'s state lives here. The session moves
only by looking a trigger up in :data:`TRANSITIONS`; a trigger a state has no row for is
a bug in its driver.
"""

from __future__ import annotations

import enum

__all__ = ["MAY_ASK", "TRANSITIONS", "UNCONNECTED", "State", "Trigger"]


class State(enum.Enum):
    DISCONNECTED = "disconnected"  # no transport (yet, or any more)
    AWAITING_HELLO = "awaiting_hello"
    GREETED = "greeted"  # hello read, no credentials: a probe may ask before login
    AUTHENTICATING = "authenticating"
    READY = "ready"  # logged in
    CLOSING = "closing"  # bye sent, waiting for the transport to end
    CLOSED = "closed"  # for good


class Trigger(enum.Enum):
    """What moves a session from one state to the next."""

    CONNECTED = "connected"  # connection_made()
    GREETED = "greeted"  # hello read, nothing to log in with
    LOGIN_SENT = "login_sent"  # hello read, auth sent
    WELCOMED = "welcomed"  # welcome read
    CLOSE = "close"  # close(): bye sent, if there was a transport
    LOST = "lost"  # connection_lost(), or the session ended the connection itself


#: Everything that changes a session's state lives here: state -> trigger -> next state.
#: A trigger missing from a state's row is a bug in the driver (asserted).
TRANSITIONS: dict[State, dict[Trigger, State]] = {
    State.DISCONNECTED: {Trigger.CONNECTED: State.AWAITING_HELLO, Trigger.CLOSE: State.CLOSED},
    State.AWAITING_HELLO: {
        Trigger.GREETED: State.GREETED,
        Trigger.LOGIN_SENT: State.AUTHENTICATING,
        Trigger.CLOSE: State.CLOSING,
        Trigger.LOST: State.DISCONNECTED,
    },
    State.GREETED: {Trigger.CLOSE: State.CLOSING, Trigger.LOST: State.DISCONNECTED},
    State.AUTHENTICATING: {
        Trigger.WELCOMED: State.READY,
        Trigger.CLOSE: State.CLOSING,
        Trigger.LOST: State.DISCONNECTED,
    },
    State.READY: {Trigger.CLOSE: State.CLOSING, Trigger.LOST: State.DISCONNECTED},
    State.CLOSING: {Trigger.CLOSE: State.CLOSING, Trigger.LOST: State.CLOSED},
    State.CLOSED: {Trigger.CLOSE: State.CLOSED, Trigger.LOST: State.CLOSED},
}
#: States in which the caller may :meth:`~ClientSession.request` (a probe asks when greeted).
MAY_ASK = frozenset({State.GREETED, State.READY})
#: States without a transport: bytes and ticks are ignored, nothing is sent.
UNCONNECTED = frozenset({State.DISCONNECTED, State.CLOSED})
