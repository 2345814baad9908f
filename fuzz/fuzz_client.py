"""Coverage-guided fuzzing of the client's sans-I/O session with atheris.

A server controls every byte a client reads, so :class:`ClientSession` must take any bytes
without raising: the only allowed outcomes are events, and a :class:`ConnectionEnded`
after which the session is disconnected and reads nothing more. The harness logs a session
in, with a send in flight and a request waiting for its reply, then feeds the fuzzer's
bytes in slices, calling ``tick`` between them, and checks those rules and that the session
never holds more than it may.

    pip install atheris
    python fuzz/seeds.py /tmp/corpus-client --client
    python fuzz/fuzz_client.py -dict=fuzz/protocol.dict -max_total_time=60 /tmp/corpus-client

Not part of the default test command. See "Fuzzing" in docs/security.md.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]  # no stubs published

with atheris.instrument_imports():
    from securechat.protocol.client import (
        MAX_EVENT_FRAME,
        ClientSession,
        ConnectionEnded,
        State,
    )
    from securechat.protocol.frames import encode_frame
    from securechat.protocol.messages import Who

HELLO = encode_frame(b'{"type":"hello","protocol":1,"server":"f","max_frame":65536,"heartbeat":30}')
WELCOME = encode_frame(
    b'{"type":"welcome","user":"alice","rooms":["general"],"last_id":5,"token":"t"}'
)


def logged_in() -> ClientSession:
    session = ClientSession("alice", password="correct horse battery", send_prefix="f")
    session.connection_made(0.0)
    session.receive_data(HELLO + WELCOME, 0.0)
    assert session.state is State.READY, session.state
    session.submit("in flight", room="general")
    session.request(Who())
    session.data_to_send()
    session.events_received()
    return session


def test_one_input(data: bytes) -> None:
    """Byte 0: slice size; the rest: what the server sends after the welcome."""
    if not data:
        return
    session = logged_in()
    stream, size = data[1:], data[0] + 1
    now = 0.0
    for start in range(0, len(stream), size):
        now += 1.0
        session.receive_data(stream[start : start + size], now)
        session.tick(now)
        assert isinstance(session.data_to_send(), bytes)
        events = session.events_received()
        ended = [e for e in events if isinstance(e, ConnectionEnded)]
        if ended:
            assert events[-1] is ended[0], "nothing may follow the end of a connection"
            assert session.state is State.DISCONNECTED
            return
        buffered = session._decoder.buffered
        assert buffered <= MAX_EVENT_FRAME + 4 + size, f"session holds {buffered} bytes"


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
