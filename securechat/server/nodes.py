"""Presence shared between the nodes of one service (#17): the heartbeat thread.

Every ``node_heartbeat_interval`` it writes which users have a session on this node and
reads which are online on the others (``store/nodes.py``), and tells the hub, which
announces the difference with its next presence flush. So ``who`` and presence agree on
every node within about a heartbeat, and the users of a node that died without a word
(SIGKILL, power cut) go offline everywhere within ``node_ttl`` plus a heartbeat. A
clean shutdown removes the node's row at once.
"""

from __future__ import annotations

import logging

from securechat.errors import StoreError
from securechat.server.hub import Hub
from securechat.server.periodic import Periodic
from securechat.store.nodes import NodeTable

log = logging.getLogger("securechat.server")


class NodePresence:
    """The heartbeat thread of one node."""

    def __init__(self, table: NodeTable, hub: Hub, *, interval: float) -> None:
        self._table = table
        self._hub = hub
        self._thread = Periodic(
            "node-heartbeat", self._beat_safely, interval=interval, at_start=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and take this node's users off the shared table."""
        self._thread.stop()
        try:
            self._table.leave()
        except StoreError as exc:  # its row ages out after node_ttl instead
            log.warning("cannot remove this node from the node table: %s", exc.message)

    def beat(self) -> None:
        """Write this node's users, read the others' (raises StoreError)."""
        self._hub.set_elsewhere(self._table.beat(self._hub.local_user_ids()))

    def _beat_safely(self) -> None:
        try:
            self.beat()
        except StoreError as exc:
            log.warning("cannot share presence with other nodes: %s", exc.message)
