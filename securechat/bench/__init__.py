"""``securechat bench``: a load generator for sizing a securechat server.

``workloads`` orchestrates one workload; ``worker`` is the worker process that multiplexes
many non-blocking TLS connections, ``commands`` what the two pass over their pipe;
``harness`` starts a throwaway server as a subprocess and reads its CPU and memory from
/proc; ``report`` prints the progress bar, the summary table and the JSON; ``plot`` draws the scaling chart (needs the optional ``bench`` extra).
"""

from __future__ import annotations

from securechat.bench.target import Target, require_loopback
from securechat.bench.workloads import WORKLOADS, BenchParams, run_workload

__all__ = ["WORKLOADS", "BenchParams", "Target", "require_loopback", "run_workload"]
