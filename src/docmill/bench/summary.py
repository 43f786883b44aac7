"""From raw bench rows to per-case summaries: medians, spread, speedup, efficiency, Amdahl fits.

Speedup is measured against ``sequential`` at 1 worker on the same (workload, size, complexity),
from medians over repetitions. The serial fraction ``f`` of Amdahl's law,
``speedup(n) = 1 / (f + (1 - f) / n)``, is fitted by least squares per (strategy, workload), with
``n = min(workers, cores)`` for CPU-bound work (a third worker on two cores adds no core) and
``n = workers`` for the ``io`` workload, which waits rather than computes.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from docmill.bench.harness import BenchRow

Key = tuple[str, int, str, int, str]  # strategy, workers, workload, size_kb, complexity


@dataclass(frozen=True, slots=True)
class Summary:
    """One row of summary.csv: a case over its repetitions."""

    strategy: str
    workers: int
    workload: str
    size_kb: int
    complexity: str
    n_docs: int
    runs: int
    docs_per_s: float
    docs_per_s_cv: float
    mb_per_s: float
    speedup: float
    efficiency: float
    cpu_cores_mean: float
    cpu_cores_peak: float
    cpu_util_pct: float
    rss_peak_mb: float
    threads_peak: int
    ctx_voluntary: float
    ctx_involuntary: float
    failed: int
    seconds_per_doc: float
    cpu_s_per_doc: float
    other_cores: float

    @property
    def cell(self) -> tuple[str, int, str]:
        return (self.workload, self.size_kb, self.complexity)


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (stdev / mean); 0 for fewer than two values."""
    if len(values) < 2 or statistics.fmean(values) == 0:
        return 0.0
    return statistics.stdev(values) / statistics.fmean(values)


def _group(rows: Iterable[BenchRow]) -> dict[Key, list[BenchRow]]:
    groups: dict[Key, list[BenchRow]] = defaultdict(list)
    for row in rows:
        if not row.error and math.isfinite(row.docs_per_s):
            groups[(row.strategy, row.workers, row.workload, row.size_kb, row.complexity)].append(row)
    return groups


def summarise(rows: Iterable[BenchRow], *, cores: int) -> list[Summary]:
    """Medians per case, with speedup and efficiency against the sequential baseline."""
    groups = _group(rows)
    baseline = {
        (k[2], k[3], k[4]): statistics.median(r.docs_per_s for r in g)
        for k, g in groups.items()
        if k[0] == "sequential" and k[1] == 1
    }
    return [
        _summary(key, group, baseline.get((key[2], key[3], key[4])), cores) for key, group in groups.items()
    ]


def _summary(key: Key, group: list[BenchRow], base: float | None, cores: int) -> Summary:
    rate = statistics.median(r.docs_per_s for r in group)
    speedup = rate / base if base else math.nan
    wall = statistics.median(r.wall_s for r in group)
    cpu = statistics.median(r.cpu_s for r in group)
    cores_mean = statistics.median(r.cpu_cores_mean for r in group)
    return Summary(
        *key,
        n_docs=group[0].n_docs,
        runs=len(group),
        docs_per_s=round(rate, 3),
        docs_per_s_cv=round(cv([r.docs_per_s for r in group]), 4),
        mb_per_s=round(statistics.median(r.mb_per_s for r in group), 3),
        speedup=round(speedup, 4),
        efficiency=round(speedup / key[1], 4),
        cpu_cores_mean=round(cores_mean, 3),
        cpu_cores_peak=max(r.cpu_cores_peak for r in group),
        cpu_util_pct=round(100 * cores_mean / cores, 1),
        rss_peak_mb=max(r.rss_peak_mb for r in group),
        threads_peak=max(r.threads_peak for r in group),
        ctx_voluntary=statistics.median(r.ctx_voluntary for r in group),
        ctx_involuntary=statistics.median(r.ctx_involuntary for r in group),
        failed=sum(r.failed for r in group),
        seconds_per_doc=wall / group[0].n_docs,
        cpu_s_per_doc=cpu / group[0].n_docs,
        other_cores=statistics.median(r.other_cores for r in group),
    )


def amdahl(n: float, serial: float) -> float:
    """Amdahl's speedup on ``n`` workers for serial fraction ``serial``."""
    return 1.0 / (serial + (1.0 - serial) / n)


def fit_serial_fraction(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares serial fraction in [0, 1] for (workers, speedup) points (grid of 0.001).

    Speedups are normalised by the 1-worker point when there is one, so a strategy's fixed
    overhead (pool start-up) is not mistaken for serial work. None without a point at n > 1.
    """
    ones = [s for n, s in points if n == 1]
    scale = statistics.median(ones) if ones else 1.0
    usable = [(n, s / scale) for n, s in points if n > 1 and math.isfinite(s)]
    if not usable or scale <= 0:
        return None
    grid = (i / 1000 for i in range(1001))
    return min(grid, key=lambda f: sum((amdahl(n, f) - s) ** 2 for n, s in usable))


def serial_fractions(summaries: Iterable[Summary], *, cores: int) -> dict[tuple[str, str], float]:
    """{(strategy, workload): fitted serial fraction} over all sizes and complexities."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for s in summaries:
        if s.strategy == "sequential" or not math.isfinite(s.speedup):
            continue
        n = s.workers if s.workload == "io" else min(s.workers, cores)
        points[(s.strategy, s.workload)].append((n, s.speedup))
    fitted = {key: fit_serial_fraction(p) for key, p in points.items()}
    return {key: f for key, f in fitted.items() if f is not None}
