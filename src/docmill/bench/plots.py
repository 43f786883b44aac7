"""matplotlib figures of a bench (Agg backend, PNG): one line per strategy against workers.

Per workload: throughput, speedup (with the ideal line) and efficiency (with the 100 % line), one
panel per (size, complexity). Across workloads: memory, CPU and context switches (medians over
sizes and complexities), and a strategy × size heatmap of the best speedup.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from docmill.bench.summary import Summary

Metric = Callable[[Summary], float]
_LEVELS = ("light", "medium", "heavy")
_STYLES = ("-o", "-s", "-^", "-D", "-v", "-P", "-X", "-*", "--o", "--s", "--^", "--D")


def _strategies(summaries: Sequence[Summary]) -> list[str]:
    names = sorted(
        {s.strategy for s in summaries}, key=lambda n: (n.startswith("peer:"), n != "sequential", n)
    )
    return names


def _style(strategies: list[str], name: str) -> str:
    return _STYLES[strategies.index(name) % len(_STYLES)]


def _plot_lines(ax: Axes, points: Sequence[tuple[str, int, float]], strategies: list[str]) -> None:
    """``points`` are (strategy, workers, value); one line per strategy."""
    for name in strategies:
        line = sorted((w, v) for s, w, v in points if s == name)
        if line:
            xs, ys = zip(*line, strict=True)
            ax.plot(xs, ys, _style(strategies, name), label=name, markersize=4, linewidth=1.2)
    ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)


def _workers_ticks(ax: Axes, workers: Sequence[int]) -> None:
    ax.set_xticks(list(workers))
    ax.set_xticklabels([str(w) for w in workers])


def _finish(fig: Figure, axes: Sequence[Axes], path: Path) -> None:
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def facet_figure(
    summaries: Sequence[Summary],
    workload: str,
    metric: Metric,
    ylabel: str,
    path: Path,
    *,
    ideal: Callable[[float], float] | None = None,
) -> None:
    """One panel per (size, complexity) of ``workload``; lines per strategy; x = workers."""
    rows = [s for s in summaries if s.workload == workload]
    sizes = sorted({s.size_kb for s in rows})
    present = {s.complexity for s in rows}
    levels = [c for c in _LEVELS if c in present] + sorted(present - set(_LEVELS))
    workers = sorted({s.workers for s in rows})
    strategies = _strategies(rows)
    fig, grid = plt.subplots(
        len(sizes),
        len(levels),
        squeeze=False,
        layout="constrained",
        figsize=(3.6 * len(levels) + 1.8, 2.8 * len(sizes) + 0.6),
    )
    for i, size in enumerate(sizes):
        for j, level in enumerate(levels):
            ax = grid[i][j]
            cell = [s for s in rows if s.size_kb == size and s.complexity == level]
            _plot_lines(ax, [(s.strategy, s.workers, metric(s)) for s in cell], strategies)
            if ideal is not None:
                ax.plot(workers, [ideal(w) for w in workers], ":", color="grey", label="ideal")
            _workers_ticks(ax, workers)
            ax.set_title(f"{size} KB docs, {level}", fontsize=9)
            ax.set_xlabel("workers")
            ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(f"{workload} workload: {ylabel}")
    _finish(fig, [ax for row in grid for ax in row], path)


def across_workloads(
    summaries: Sequence[Summary], metric: Metric, ylabel: str, title: str, path: Path
) -> None:
    """One panel per workload; each point is the median of ``metric`` over sizes and complexities."""
    workloads = sorted({s.workload for s in summaries})
    strategies = _strategies(summaries)
    fig, grid = plt.subplots(
        1, len(workloads), squeeze=False, layout="constrained", figsize=(3.8 * len(workloads) + 1.8, 3.4)
    )
    for ax, workload in zip(grid[0], workloads, strict=True):
        merged: dict[tuple[str, int], list[float]] = defaultdict(list)
        for s in summaries:
            if s.workload == workload:
                merged[(s.strategy, s.workers)].append(metric(s))
        medians = [(k[0], k[1], statistics.median(v)) for k, v in merged.items()]
        _plot_lines(ax, medians, strategies)
        _workers_ticks(ax, sorted({w for _, w, _ in medians}))
        ax.set_title(f"{workload} workload", fontsize=9)
        ax.set_xlabel("workers")
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title)
    _finish(fig, list(grid[0]), path)


def heatmap(summaries: Sequence[Summary], path: Path) -> None:
    """Strategy × document size: best speedup over worker counts (median over complexities)."""
    workloads = sorted({s.workload for s in summaries})
    strategies = _strategies(summaries)
    sizes = sorted({s.size_kb for s in summaries})
    fig, grid = plt.subplots(
        1,
        len(workloads),
        squeeze=False,
        layout="constrained",
        figsize=(1.0 + 1.2 * len(sizes) * len(workloads) + 1.5, 0.45 * len(strategies) + 1.8),
    )
    for ax, workload in zip(grid[0], workloads, strict=True):
        matrix = [[_best_speedup(summaries, workload, name, size) for size in sizes] for name in strategies]
        image = ax.imshow(matrix, cmap="viridis", aspect="auto")
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value < max(max(r) for r in matrix) * 0.6 else "black",
                )
        ax.set_xticks(range(len(sizes)), [f"{s} KB" for s in sizes])
        ax.set_yticks(range(len(strategies)), strategies, fontsize=8)
        ax.set_xlabel("document size")
        ax.set_title(f"{workload}: best speedup (×)", fontsize=9)
        fig.colorbar(image, ax=ax, label="speedup vs sequential (×)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _best_speedup(summaries: Sequence[Summary], workload: str, strategy: str, size: int) -> float:
    best: dict[str, float] = {}
    for s in summaries:
        if (s.workload, s.strategy, s.size_kb) == (workload, strategy, size):
            best[s.complexity] = max(best.get(s.complexity, 0.0), s.speedup)
    return statistics.median(best.values()) if best else float("nan")


def write_plots(summaries: Sequence[Summary], folder: Path) -> list[Path]:
    """Every figure of a bench into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for workload in sorted({s.workload for s in summaries}):
        specs = (
            ("throughput", lambda s: s.docs_per_s, "throughput (docs/s)", None),
            ("speedup", lambda s: s.speedup, "speedup vs sequential (×)", lambda w: w),
            ("efficiency", lambda s: 100 * s.efficiency, "efficiency (% of ideal)", lambda w: 100.0),
        )
        for name, metric, label, ideal in specs:
            path = folder / f"{name}-{workload}.png"
            facet_figure(summaries, workload, metric, label, path, ideal=ideal)
            written.append(path)
    for name, metric, label, title in (
        ("memory", lambda s: s.rss_peak_mb, "peak RSS of process tree (MiB)", "Memory"),
        ("cpu", lambda s: s.cpu_cores_mean, "mean busy cores (CPU s / wall s)", "CPU use"),
        (
            "context-switches",
            lambda s: (s.ctx_voluntary + s.ctx_involuntary) / s.n_docs,
            "context switches per document",
            "Context switches (voluntary + involuntary)",
        ),
    ):
        path = folder / f"{name}.png"
        across_workloads(summaries, metric, label, title, path)
        written.append(path)
    heatmap(summaries, folder / "heatmap.png")
    written.append(folder / "heatmap.png")
    return written
