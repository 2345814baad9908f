"""Protocol v1 without I/O: framing, messages, and the per-connection state machine.

Nothing in this package touches a socket, a thread, a clock, the database or logging
(a test enforces it), so it can be fuzzed and tested with plain bytes. Import from its
modules (``frames``, ``messages``, ``session``): the package imports none of them, so that
a name rule (``names``) does not load every message class.
"""
