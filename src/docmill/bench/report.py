"""Bench output: raw.csv (one row per repetition), summary.csv, run.json and report.md.

The report states the winner per (size, complexity, workload), the recommended worker count per
strategy and workload, the fitted Amdahl serial fractions, and the caveats a reader needs to judge
the figures (cores available, oversubscription, noise, a shared machine).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import platform
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from docmill.bench.harness import BenchRow, MatrixSpec, overlaps_io
from docmill.bench.summary import Summary, serial_fractions

NOISY_CV = 0.10  # repetitions spreading more than this are flagged in the report


def machine() -> dict[str, Any]:
    """Facts about the machine that the figures depend on."""
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_csv(path: Path, rows: Sequence[Any]) -> None:
    """Dataclass rows → CSV with a header (written even when there are no rows)."""
    fields = [f.name for f in dataclasses.fields(BenchRow if not rows else rows[0])]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)


def read_raw(path: Path) -> list[BenchRow]:
    """raw.csv → BenchRows (the inverse of write_csv); a line cut short (the bench killed while
    appending it) is left out."""
    types = {f.name: f.type for f in dataclasses.fields(BenchRow)}
    casts = {"int": int, "float": float, "str": str}
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            BenchRow(**{k: casts[str(types[k])](v) for k, v in rec.items()})
            for rec in csv.DictReader(fh)
            if None not in rec.values()
        ]


def write_run_json(
    path: Path, spec: MatrixSpec, facts: Mapping[str, Any], skipped: Mapping[str, str]
) -> None:
    body = {"spec": dataclasses.asdict(spec), "machine": facts, "skipped": dict(skipped)}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def winners(summaries: Iterable[Summary]) -> dict[tuple[str, int, str], Summary]:
    """The fastest docmill strategy (peers excluded) per (workload, size, complexity)."""
    best: dict[tuple[str, int, str], Summary] = {}
    for s in summaries:
        if s.strategy.startswith("peer:"):
            continue
        if s.cell not in best or s.docs_per_s > best[s.cell].docs_per_s:
            best[s.cell] = s
    return best


def recommended_workers(summaries: Iterable[Summary], *, within: float = 0.95) -> dict[tuple[str, str], int]:
    """{(strategy, workload): fewest workers reaching ``within`` of that strategy's best throughput}.

    Throughputs are averaged over sizes and complexities as speedups, so each cell weighs the same.
    """
    speed: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in summaries:
        if math.isfinite(s.speedup):
            speed[(s.strategy, s.workload)][s.workers].append(s.speedup)
    result = {}
    for key, by_workers in speed.items():
        means = {w: sum(v) / len(v) for w, v in by_workers.items()}
        top = max(means.values())
        result[key] = min(w for w, m in means.items() if m >= within * top)
    return result


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _peer_note(cell_rows: list[Summary], best: Summary) -> str:
    peers = [s for s in cell_rows if s.strategy.startswith("peer:")]
    if not peers:
        return ""
    top = max(peers, key=lambda s: s.docs_per_s)
    ratio = best.docs_per_s / top.docs_per_s if top.docs_per_s else math.nan
    return f"{top.strategy} ×{top.workers}: {top.docs_per_s:.1f} (docmill/peer {ratio:.2f})"


def _runner_up(cell_rows: list[Summary], best: Summary) -> str:
    """The best other docmill strategy, and whether the winner's lead is inside the noise."""
    others = [
        s for s in cell_rows if s.strategy not in (best.strategy,) and not s.strategy.startswith("peer:")
    ]
    if not others:
        return ""
    second = max(others, key=lambda s: s.docs_per_s)
    lead = best.docs_per_s / second.docs_per_s - 1 if second.docs_per_s else math.inf
    noise = 2 * max(best.docs_per_s_cv, second.docs_per_s_cv)
    verdict = " (within noise)" if lead <= noise else ""
    return f"{second.strategy} ×{second.workers}: +{lead:.0%}{verdict}"


def winners_section(summaries: list[Summary]) -> list[str]:
    by_cell: dict[tuple[str, int, str], list[Summary]] = defaultdict(list)
    for s in summaries:
        by_cell[s.cell].append(s)
    rows = []
    for cell, best in sorted(winners(summaries).items()):
        rows.append(
            (
                cell[0],
                f"{cell[1]} KB",
                cell[2],
                best.strategy,
                best.workers,
                f"{best.docs_per_s:.1f}",
                f"{best.speedup:.2f}",
                f"{best.docs_per_s_cv:.1%}",
                _runner_up(by_cell[cell], best),
                _peer_note(by_cell[cell], best),
            )
        )
    header = (
        "workload",
        "size",
        "complexity",
        "winner",
        "workers",
        "docs/s",
        "speedup",
        "cv",
        "lead over runner-up",
        "best peer",
    )
    return [
        "## Winner per cell",
        "",
        *_table(header, rows),
        "",
        "A lead within twice the larger coefficient of variation is marked as within noise.",
        "",
    ]


def strategy_section(summaries: list[Summary], cores: int) -> list[str]:
    fractions = serial_fractions(summaries, cores=cores)
    recommended = recommended_workers(summaries)
    rows = []
    for key in sorted(recommended):
        f = fractions.get(key)
        if overlaps_io(key[0]) and key[1] != "cpu":  # its concurrency is not its worker count
            rows.append((key[0], key[1], recommended[key], "— (overlaps I/O)", "—"))
            continue
        limit = f"{1 / f:.1f}×" if f else "∞"
        rows.append((key[0], key[1], recommended[key], "—" if f is None else f"{f:.3f}", limit))
    header = ("strategy", "workload", "recommended workers", "serial fraction f", "max speedup 1/f")
    return [
        "## Strategies: recommended workers and Amdahl fit",
        "",
        *_table(header, rows),
        "",
        "Recommended = fewest workers reaching 95 % of the strategy's best mean speedup on that workload. "
        f"f is fitted to speedup(n) = 1/(f + (1−f)/n) with n = min(workers, {cores}) for cpu and mixed "
        "work and n = workers for io, after normalising by the strategy's own 1-worker run.",
        "",
    ]


def caveats(summaries: list[Summary], facts: Mapping[str, Any], spec: MatrixSpec) -> list[str]:
    cores = int(facts["cores"])
    over = sorted(w for w in spec.workers if w > cores)
    noisy = [s for s in summaries if s.docs_per_s_cv > NOISY_CV]
    lines = ["## Caveats", ""]
    lines.append(f"- {cores} cores available ({facts['memory_gb']} GB, Python {facts['python']}).")
    if over:
        lines.append(
            f"- {', '.join(map(str, over))} workers oversubscribe the {cores} cores: for CPU-bound work "
            "they can only add scheduling and memory cost; for io they add concurrency."
        )
    lines += _load_lines(summaries, facts)
    lines.append(
        f"- {len(noisy)} of {len(summaries)} cases vary by more than {NOISY_CV:.0%} "
        f"(coefficient of variation over {spec.repeat} repetitions)."
    )
    lines.append(
        "- Times include pool start-up and shutdown, as a user's run pays them; short cells "
        f"({spec.cell_seconds:g} s of sequential work) magnify that fixed cost."
    )
    return [*lines, ""]


def _load_lines(summaries: list[Summary], facts: Mapping[str, Any]) -> list[str]:
    other = [s.other_cores for s in summaries] or [0.0]
    lines = [
        f"- Other processes kept {statistics.fmean(other):.2f} cores busy on average during the measurements "
        f"(up to {max(other):.2f}; load average {facts['load_average']} at start): absolute rates are noisy, "
        "compare ratios within this run."
    ]
    overlap = sorted({s.strategy for s in summaries if overlaps_io(s.strategy)})
    if overlap:
        lines.append(
            f"- {', '.join(overlap)} overlap I/O beyond their worker count (async stage, threads inside "
            "processes): on io work their efficiency (speedup / workers) can exceed 100 %."
        )
    return lines


def render(
    summaries: list[Summary], facts: Mapping[str, Any], spec: MatrixSpec, skipped: Mapping[str, str]
) -> str:
    cores = int(facts["cores"])
    lines = [
        "# docmill bench",
        "",
        f"Strategies: {', '.join(spec.strategies)}; workers {', '.join(map(str, spec.workers))}; "
        f"sizes {', '.join(f'{s} KB' for s in spec.sizes_kb)}; complexity {', '.join(spec.complexities)}; "
        f"workloads {', '.join(spec.workloads)}; {spec.repeat} repetitions.",
        "",
    ]
    if skipped:
        lines += [f"Skipped: {', '.join(f'{k} ({v})' for k, v in sorted(skipped.items()))}.", ""]
    lines += winners_section(summaries)
    lines += strategy_section(summaries, cores)
    lines += caveats(summaries, facts, spec)
    lines += ["Files: raw.csv (one row per repetition), summary.csv (medians), plots/*.png.", ""]
    return "\n".join(lines)
