"""The charts: delivery latency p99 and server CPU per delivery against room size
(``scaling``), and latency and throughput per set-up of nodes (``nodes``).

matplotlib is an optional extra (``pip install 'securechat[bench]'``); everything else in
the bench works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from securechat.errors import ConfigError


def _pyplot() -> Any:
    """matplotlib's pyplot, drawing to files only.

    Raises:
        ConfigError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError(
            "--plot needs matplotlib: pip install 'securechat[bench]' (or matplotlib)"
        ) from exc
    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def plot_nodes(points: list[dict[str, Any]], path: Path) -> None:
    """Two panels into ``path`` (PNG): office-load latency and throughput per set-up.

    Raises:
        ConfigError: matplotlib is not installed.
    """
    plt = _pyplot()
    labels = [f"{p['nodes']} on {'SQLite' if p['database'] == 'sqlite' else 'PG'}" for p in points]
    where = range(len(points))
    fig, (latency, rate) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    latency.bar([x - 0.2 for x in where], [p["office_p50_ms"] for p in points], 0.4, label="p50")
    latency.bar([x + 0.2 for x in where], [p["office_p99_ms"] for p in points], 0.4, label="p99")
    latency.set(ylabel="delivery latency (ms)", title="office load (2+ nodes: across nodes)")
    latency.legend()
    rate.bar(where, [p["deliveries_per_s"] / 1000 for p in points], 0.6, color="C2")
    rate.set(ylabel="thousand deliveries/s", title="throughput, sessions on every node")
    for axis in (latency, rate):
        axis.set_xticks(list(where), labels)
        axis.grid(True, axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def plot_scaling(points: list[dict[str, Any]], path: Path) -> None:
    """Draw two panels side by side into ``path`` (PNG).

    Raises:
        ConfigError: matplotlib is not installed.
    """
    plt = _pyplot()
    sizes = [p["members"] for p in points]
    fig, (latency, cpu) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    latency.plot(sizes, [p["p99_ms"] for p in points], "o-", label="p99")
    latency.plot(sizes, [p["p50_ms"] for p in points], "s--", label="p50")
    latency.set(xscale="log", xlabel="room members", ylabel="delivery latency (ms)",
                title="end-to-end delivery latency")  # fmt: skip
    latency.legend()
    cpu.plot(sizes, [p["server_cpu_us_per_delivery"] or 0 for p in points], "o-", color="C2")
    cpu.set(xscale="log", xlabel="room members", ylabel="server CPU per delivery (µs)",
            title="server CPU per delivery")  # fmt: skip
    for axis in (latency, cpu):
        axis.set_xticks(sizes, [str(s) for s in sizes])
        axis.grid(True, alpha=0.3)
        axis.set_ylim(bottom=0)
    _save(fig, path)
    plt.close(fig)
