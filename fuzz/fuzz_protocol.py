"""Coverage-guided fuzzing of the sans-I/O protocol with atheris (libFuzzer for Python).

Any bytes go in; the only allowed outcomes are requests, ``None`` ("need more bytes") and
:class:`ProtocolError`. Any other exception, or a decoder that buffers more than it may,
is a crash that libFuzzer reports with the input that caused it. The hypothesis tests in
tests/ cover the same ground briefly on every run; this harness is for long runs.

    pip install atheris            # a manylinux wheel; building from source needs clang
    python fuzz/seeds.py /tmp/corpus   # a few valid payloads and streams to start from
    python fuzz/fuzz_protocol.py -dict=fuzz/protocol.dict -max_total_time=60 /tmp/corpus

Not part of the default test command. See "Fuzzing" in docs/security.md.
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]  # no stubs published

with atheris.instrument_imports():
    from securechat.errors import ProtocolError
    from securechat.protocol.frames import HEADER_SIZE
    from securechat.protocol.messages import Auth, Request, decode_request
    from securechat.protocol.session import ServerSession, State

MAX_FRAME = 1024  # small, so that the fuzzer reaches the length checks easily


def _decode_one(payload: bytes) -> None:
    try:
        request = decode_request(payload)
    except ProtocolError:
        return
    if not isinstance(request, Request):
        raise AssertionError(f"decode_request returned {request!r}")


def _drive_session(stream: bytes, slice_size: int, login_succeeds: bool) -> None:
    """Feed ``stream`` in slices; log in (or fail to) whenever an ``auth`` comes out."""
    session = ServerSession(max_frame=MAX_FRAME)
    for start in range(0, len(stream), slice_size):
        piece = stream[start : start + slice_size]
        session.receive_data(piece)
        if session.buffered > MAX_FRAME + HEADER_SIZE + len(piece):
            raise AssertionError(f"decoder holds {session.buffered} bytes")
        for _ in range(len(stream) + 1):  # each item consumes at least one whole frame
            item = session.next_request()
            if item is None:
                break
            if isinstance(item, Auth):
                assert session.state is State.AUTHENTICATING
                if login_succeeds:
                    session.login_succeeded("fuzzer")
                else:
                    session.login_failed()
            elif isinstance(item, ProtocolError):
                assert item.code, "a protocol error must carry a code for the reply"
        else:
            raise AssertionError("next_request() did not run dry")
        if session.state is State.CLOSED:
            return


def test_one_input(data: bytes) -> None:
    """Byte 0: mode and login outcome; byte 1: slice size; the rest: a payload or a stream."""
    if len(data) < 2:
        return
    if data[0] & 1:
        _decode_one(data[2:])
    else:
        _drive_session(data[2:], slice_size=data[1] + 1, login_succeeds=bool(data[0] & 2))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
