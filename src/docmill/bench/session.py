"""One ``docmill bench`` run: measure a matrix, then write results/<run-id>/ with CSVs, plots and report.

::

    results/<run-id>/
    ├── raw.csv        one row per repetition
    ├── summary.csv    medians per case, speedup, efficiency, coefficient of variation
    ├── run.json       the matrix, the machine, skipped strategies
    ├── report.md      winners, recommended workers, Amdahl fit, caveats
    └── plots/*.png
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.bench.harness import (
    Bench,
    BenchCase,
    BenchRow,
    MatrixSpec,
    ProgressHook,
    available_strategies,
)
from docmill.bench.measured import MeasuredCases
from docmill.bench.peers import PEERS
from docmill.bench.report import machine, read_raw, render, write_csv, write_run_json
from docmill.bench.summary import Summary, summarise
from docmill.bench.tiny import NAIVE_PEER, TINY_DOCS, TINY_WORKLOAD
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError

QUICK: Mapping[str, Any] = {
    "workers": (1, 2),
    "sizes_kb": (100,),
    "complexities": ("medium",),
    "workloads": ("cpu", "io"),
    "repeat": 2,
    "cell_seconds": 0.5,
    "warmup": False,  # the forked child already has the imports and the corpus is in the page cache
}


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Where a run's files are, and what it measured."""

    folder: Path
    rows: list[BenchRow]
    summaries: list[Summary]
    skipped: Mapping[str, str]


def default_strategies(*, peers: bool = True) -> list[str]:
    """Every registered strategy that imports (services-only ones excluded), then the peers
    (``peer:naive`` only when named: it is one loop, a bar for the ``tiny`` workload)."""
    ready, _ = available_strategies()
    return ready + ([p for p in PEERS if p != NAIVE_PEER] if peers else [])


def resolve_strategies(names: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Usable strategies among ``names`` and why the others are skipped; unknown names fail."""
    ready, skipped = available_strategies(names)
    if not ready:
        raise ConfigError(f"none of the strategies {', '.join(names)} can run: {skipped}")
    return tuple(ready), skipped


CASE_START_SECONDS = 1.0  # a forked child, a pool, a warm-up: measured ~0.5–1.5 s on two cores


def expected_seconds(spec: MatrixSpec) -> float:
    """A rough duration, said up front: each case runs about ``cell_seconds`` of sequential work
    (``tiny``: its records at ~10,000/s) plus its start-up. Parallel cases take less, LLM ones more."""
    total = 0.0
    for cell in spec.cells():
        work = (spec.docs or TINY_DOCS) / 10_000 if cell[0] == TINY_WORKLOAD else spec.cell_seconds
        total += len(spec.cases(cell, 1)) * (work + CASE_START_SECONDS)
    return total


def run_id(clock: Clock = SYSTEM_CLOCK) -> str:
    return dt.datetime.fromtimestamp(clock.wall(), dt.UTC).strftime("%Y%m%d-%H%M%S")


def run_bench(
    spec: MatrixSpec,
    out: Path,
    *,
    skipped: Mapping[str, str] | None = None,
    on_row: ProgressHook | None = None,
    clock: Clock = SYSTEM_CLOCK,
    deadline: float | None = None,
) -> BenchResult:
    """Measure ``spec`` and write every output file under a new ``out/<run-id>/``.

    ``deadline`` (a ``clock.monotonic()`` time): no case starts after it; the report covers the
    cases measured. raw.csv grows by one row per case as the bench goes.
    """
    folder = out / run_id(clock)
    while folder.exists():
        folder = folder.with_name(folder.name + "-1")
    folder.mkdir(parents=True)
    return _measure(folder, spec, [], skipped or {}, on_row, clock, deadline)


def load_run(folder: Path) -> tuple[MatrixSpec, dict[str, str], list[BenchRow]]:
    """(matrix, skipped strategies, rows measured) of the bench run in ``folder``."""
    try:
        body = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in body["spec"].items()}
        spec = MatrixSpec(**fields)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--resume: {folder} is not a bench run ({type(exc).__name__}: {exc})") from exc
    path = folder / "raw.csv"
    return spec, dict(body.get("skipped", {})), read_raw(path) if path.exists() else []


def resume_bench(
    folder: Path,
    *,
    on_row: ProgressHook | None = None,
    clock: Clock = SYSTEM_CLOCK,
    deadline: float | None = None,
) -> BenchResult:
    """Finish the bench run in ``folder`` (stopped by Ctrl-C, SIGTERM or ``deadline``): measure
    the cases its raw.csv lacks, with the same document counts, and report them all."""
    spec, skipped, rows = load_run(folder)
    return _measure(folder, spec, rows, skipped, on_row, clock, deadline)


def _measure(
    folder: Path,
    spec: MatrixSpec,
    rows: list[BenchRow],
    skipped: Mapping[str, str],
    on_row: ProgressHook | None,
    clock: Clock,
    deadline: float | None,
) -> BenchResult:
    facts = machine()
    write_run_json(folder / "run.json", spec, facts, skipped)  # resumable even if killed outright
    measured = MeasuredCases(rows)
    raw = _RawAppender(folder / "raw.csv", rows, on_row)
    try:
        with tempfile.TemporaryDirectory(prefix="docmill-bench-") as work:
            Bench(spec, Path(work), clock=clock).run(raw, deadline=deadline, measured=measured)
    finally:  # interrupted (Ctrl-C, SIGTERM) or not, what was measured is reported
        summaries = summarise(rows, cores=int(facts["cores"]))
        write_outputs(folder, spec, rows, summaries, facts, skipped)
    return BenchResult(folder, rows, summaries, skipped)


class _RawAppender:
    """The progress hook that also appends each case's row to raw.csv as soon as it is measured,
    so a bench that is stopped keeps every case it finished."""

    def __init__(self, path: Path, rows: list[BenchRow], then: ProgressHook | None) -> None:
        self.path, self.rows, self.then = path, rows, then
        write_csv(path, rows)

    def __call__(self, case: BenchCase, row: BenchRow) -> None:
        self.rows.append(row)
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=BenchRow.columns()).writerow(dataclasses.asdict(row))
        if self.then is not None:
            self.then(case, row)


def write_outputs(
    folder: Path,
    spec: MatrixSpec,
    rows: list[BenchRow],
    summaries: list[Summary],
    facts: Mapping[str, object],
    skipped: Mapping[str, str],
) -> None:
    from docmill.bench.plots import write_plots  # matplotlib loads only when plotting

    facts = {**facts, "load_average_end": list(_loadavg())}
    write_csv(folder / "raw.csv", rows)
    write_csv(folder / "summary.csv", sorted(summaries, key=_order))
    write_run_json(folder / "run.json", spec, facts, skipped)
    (folder / "report.md").write_text(render(summaries, facts, spec, skipped), encoding="utf-8")
    if summaries:
        write_plots(summaries, folder / "plots")


def _order(s: Summary) -> tuple[str, int, str, str, int]:
    return (s.workload, s.size_kb, s.complexity, s.strategy, s.workers)


def _loadavg() -> tuple[float, ...]:
    import os

    return tuple(round(x, 2) for x in os.getloadavg())


def quick_spec(strategies: Sequence[str], **overrides: Any) -> MatrixSpec:
    """The ``--quick`` preset (well under two minutes on two cores), with some fields replaced."""
    return MatrixSpec(strategies=tuple(strategies), **{**QUICK, **overrides})
