"""Write a starting corpus: valid requests for fuzz_protocol.py, or with ``--client``
valid server events for fuzz_client.py, alone and as framed streams.

python fuzz/seeds.py DIR [--client]
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

REQUESTS: list[dict[str, object]] = [
    {"type": "auth", "user": "alice", "password": "correct horse battery"},
    {"type": "join", "room": "general", "ref": "j1"},
    {"type": "leave", "room": "general", "ref": "l1"},
    {"type": "rooms"},
    {"type": "send", "room": "general", "body": "hi", "ref": "m1"},
    {"type": "send", "to": "bob", "body": "psst"},
    {"type": "history", "room": "general", "before": 10, "limit": 2, "ref": "h1"},
    {"type": "history", "with": "bob"},
    {"type": "sync", "since": 0, "ref": "s1"},
    {"type": "who"},
    {"type": "ping", "ref": "p1"},
    {"type": "pong"},
    {"type": "bye", "reason": "done"},
]


EVENTS: list[dict[str, object]] = [
    {"type": "message", "id": 6, "room": "general", "from": "bob", "body": "hi", "ts": "t"},
    {"type": "message", "id": 7, "to": "alice", "from": "bob", "body": "psst", "ts": "t"},
    {"type": "ack", "id": 8, "ts": "t", "ref": "f-1"},
    {"type": "error", "code": "rate_limited", "message": "wait", "ref": "f-1", "retry_after": 1},
    {"type": "error", "code": "server_error", "message": "disk", "ref": "f-1"},
    {"type": "who", "online": ["alice", "bob"], "ref": "c-1"},
    {"type": "synced", "last_id": 8, "more": True, "ref": "catch-up-2"},
    {"type": "presence", "user": "bob", "online": False},
    {"type": "member_joined", "room": "general", "user": "carol"},
    {"type": "ping", "ref": "p"},
    {"type": "from_a_newer_server", "x": 1},
    {"type": "bye", "reason": "shutting_down"},
]


def _frame(request: dict[str, object]) -> bytes:
    payload = json.dumps(request).encode()
    return struct.pack(">I", len(payload)) + payload


def main(directory: Path, *, client: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if client:
        stream = b"".join(_frame(e) for e in EVENTS)
        for n, event in enumerate(EVENTS):
            (directory / f"event-{n:02d}").write_bytes(b"\xff" + _frame(event))
        for slice_size in (255, 6, 0):
            (directory / f"events-{slice_size}").write_bytes(bytes([slice_size]) + stream)
        return
    for n, request in enumerate(REQUESTS):
        (directory / f"request-{n:02d}").write_bytes(b"\x01\x00" + json.dumps(request).encode())
    stream = b"".join(_frame(r) for r in REQUESTS)
    for mode, slice_size in ((0, 255), (2, 255), (2, 6), (2, 0)):
        (directory / f"stream-{mode}-{slice_size}").write_bytes(bytes([mode, slice_size]) + stream)


if __name__ == "__main__":
    main(Path(sys.argv[1]), client="--client" in sys.argv[2:])
