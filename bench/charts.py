"""
Pictures of a benchmark run (matplotlib, SVG): throughput and latency per
server and scenario, and twchat (and the CPython limit) against the C limit.

    python bench/charts.py bench/results/latest.json docs/bench

``bench/run.py`` calls ``write_charts`` after every run (``--charts DIR``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen; SVG only
import matplotlib.pyplot as plt

__all__ = ["write_charts"]

#: The same colour for a server in every picture.
_COLOURS = {
    "twchat": "#1f77b4",
    "climit": "#7f7f7f",
    "pylimit": "#9467bd",
    "textbook": "#ff7f0e",
    "threaded": "#2ca02c",
    "ncat": "#d62728",
}
_ORDER = ["twchat", "climit", "pylimit", "textbook", "threaded", "ncat"]

# Same bytes for the same figures: no date, no random ids in the SVG.
plt.rcParams["svg.hashsalt"] = "twchat"
plt.rcParams["svg.fonttype"] = "none"
_METADATA = {"Date": None}


def _servers(by_server: dict[str, Any]) -> list[str]:
    ok = [s for s in by_server if "error" not in by_server[s]]
    return sorted(ok, key=lambda s: _ORDER.index(s) if s in _ORDER else len(_ORDER))


def _bars(
    ax: Any,
    rows: list[tuple[str, dict[str, float]]],
    unit: str,
    target: tuple[float, str] | None = None,
    invert: bool = True,
) -> None:
    """Horizontal bars: one group per scenario, one bar per server."""
    servers = [s for s in _ORDER if any(s in values for _, values in rows)]
    height = 0.8 / max(len(servers), 1)
    for i, server in enumerate(servers):
        ys, xs = [], []
        for row, (_, values) in enumerate(rows):
            if server in values:
                ys.append(row + i * height)
                xs.append(values[server])
        bars = ax.barh(
            ys, xs, height, label=server, color=_COLOURS.get(server, "#9467bd")
        )
        ax.bar_label(bars, fmt="%.3g", padding=2, fontsize=7)
    ax.set_yticks([row + 0.4 - height / 2 for row in range(len(rows))])
    ax.set_yticklabels([name for name, _ in rows])
    if invert:  # (once per shared axis: twice would undo it)
        ax.invert_yaxis()
    ax.set_xlabel(unit)
    if target is not None:
        value, label = target
        ax.axvline(value, color="#d62728", linestyle="--", linewidth=1)
        ax.text(value, -0.6, f" {label}", color="#d62728", fontsize=7, va="bottom")
    ax.margins(x=0.15)  # room for the labels at the bars' ends
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", alpha=0.3)


#: A scenario, the results of the servers shown in it, and the C limit's.
_Against = list[tuple[str, dict[str, Any], dict[str, Any]]]


def _to_climit(
    against: _Against, figure: Callable[[dict[str, Any]], float]
) -> list[tuple[str, dict[str, float]]]:
    """Each server's ``figure`` as a share of the C limit's, per scenario."""
    return [
        (name, {s: figure(r) / figure(c) for s, r in ours.items()})
        for name, ours, c in against
    ]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata=_METADATA)
    plt.close(fig)
    return path


def write_charts(report: dict[str, Any], directory: Path) -> list[Path]:
    """Write the run's pictures into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = report["results"]
    scenarios: dict[str, dict[str, Any]] = report["scenarios"]
    when = f"{report['mode']} run, {report['when']}"
    written = []

    flat = [
        (name, {s: by[s]["deliveries_per_s"] / 1e6 for s in _servers(by)})
        for name, by in results.items()
        if scenarios[name]["lines"] and scenarios[name]["clients"] <= 1000
    ]
    if flat:
        fig, ax = plt.subplots(figsize=(8, 0.55 * len(flat) + 1.6))
        _bars(ax, flat, "million deliveries per second (higher is better)")
        ax.set_title(f"Throughput: senders flat out ({when})", fontsize=9)
        written.append(_save(fig, directory / "throughput.svg"))

    paced = [
        (name, by)
        for name, by in results.items()
        if scenarios[name]["rate"] or scenarios[name]["clients"] > 1000
    ]
    if paced:
        fig, axes = plt.subplots(
            1, 2, figsize=(10, 0.55 * len(paced) + 1.6), sharey=True
        )
        for ax, pct in zip(axes, ("p50", "p99"), strict=True):
            rows = [
                (name, {s: by[s]["latency_ms"][pct] for s in _servers(by)})
                for name, by in paced
            ]
            _bars(ax, rows, f"latency {pct}, ms (lower is better)", invert=pct == "p50")
        fig.suptitle(f"Latency: paced lines, and one line to 10,000 ({when})", size=9)
        written.append(_save(fig, directory / "latency.svg"))

    # twchat, and the CPython limit where it ran, each as a ratio to the C limit.
    against: _Against = []
    for name, by in results.items():
        ran = _servers(by)
        if {"twchat", "climit"} <= set(ran):
            ours = {s: by[s] for s in ran if s in ("twchat", "pylimit")}
            against.append((name, ours, by["climit"]))
    if against:
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.55 * len(against) + 1.6))
        speed = _to_climit(against, lambda r: r["deliveries_per_s"])
        _bars(axes[0], speed, "deliveries/s, server / C limit", (0.8, "target 0.8"))
        tail = _to_climit(against, lambda r: r["latency_ms"]["p99"])
        _bars(axes[1], tail, "p99 latency, server / C limit", (1.0, "target 1.0"))
        fig.suptitle(
            f"twchat and the CPython limit against the C limit ({when})", size=9
        )
        written.append(_save(fig, directory / "vs-climit.svg"))
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: python bench/charts.py RESULTS.json DIRECTORY")
    report = json.loads(Path(argv[0]).read_text())
    for path in write_charts(report, Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
