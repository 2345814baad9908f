"""How a process of the bench's clients is scheduled: like clients on other machines.

Shared by the chat generator's workers (:mod:`.worker`) and the transfer clients of
``bench files`` (:mod:`.transfer_process`), so that both load the server alike.
"""

from __future__ import annotations

import os
import signal


def start_client_process(batch: bool) -> None:
    """Run first in a spawned client process: leave Ctrl-C to the bench, and with ``batch``
    take SCHED_BATCH.

    The bench handles Ctrl-C (and SIGTERM, which the CLI maps to it) and closes its child
    processes in order, so they ignore the SIGINT a terminal sends the whole group.
    Clients on other machines never take the server's CPU when a message wakes them. Under
    SCHED_BATCH this process does not preempt the server on wake-up either; it still gets
    its full share of CPU, and any wait it has counts in the latencies.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if batch:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
