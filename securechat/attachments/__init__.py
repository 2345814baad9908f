"""Files shared in conversations: where they live, how they are checked, stored and served.

The server stores every file under a random id, never under the name a client gave; the
name is metadata, cleaned before any use. ``layout`` is the one place that says where a
file's bytes sit on disk.
"""
