"""Write a starting corpus for fuzz_protocol.py: valid requests, alone and as framed streams.

python fuzz/seeds.py DIR
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


def _frame(request: dict[str, object]) -> bytes:
    payload = json.dumps(request).encode()
    return struct.pack(">I", len(payload)) + payload


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for n, request in enumerate(REQUESTS):
        (directory / f"request-{n:02d}").write_bytes(b"\x01\x00" + json.dumps(request).encode())
    stream = b"".join(_frame(r) for r in REQUESTS)
    for mode, slice_size in ((0, 255), (2, 255), (2, 6), (2, 0)):
        (directory / f"stream-{mode}-{slice_size}").write_bytes(bytes([mode, slice_size]) + stream)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
