"""The load-generator worker process: many non-blocking TLS sessions in one selectors loop.

``loop`` is the process itself (its commands from the parent, the loop, what a
connection's end means), ``connection`` one TLS connection and its login, ``logins`` the
logins a command asks for and their results, ``fanout`` one fan-out run's timetable and
counting, and ``wire`` the frames, written with the product's codec.
"""

from __future__ import annotations

from securechat.bench.worker.loop import worker_main

__all__ = ["worker_main"]
