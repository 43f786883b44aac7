"""Core-run figures: docs/s and MB/s on the man-page corpus (sequential vs processes×2, side by side,
alternating, median of REPEAT), and the SQLite journal's write rate (rows/s) by batch size.

Usage: python benchmarks/bench_core.py [--repeat 3] [--rows 100000]
The man pages are read from $DOCMILL_SHARED_DATA/manpages (default ../shared/data next to the repo).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from docmill.config import RunConfig
from docmill.document import DocumentRef
from docmill.journal.base import RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome, Status, Timings
from docmill.runner import run_config

REPO = Path(__file__).resolve().parents[1]
LABELS = """labels:
  user-command: {description: "section 1", keywords: [options, usage, command line, exit status]}
  library-function: {description: "section 3", keywords: ["#include", library, return value]}
  system-call: {description: "section 2", keywords: [system call, errno, EINVAL, kernel]}
  overview: {description: "section 7", keywords: [overview, protocol, conventions]}
  admin-command: {description: "section 8", keywords: [daemon, administrator, service]}
  file-format: {description: "section 5", keywords: [file format, configuration file, syntax]}
"""


def manpages() -> Path:
    shared = Path(os.environ.get("DOCMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
    return shared / "manpages"


def one_run(corpus: Path, folder: Path, strategy: str, workers: int) -> tuple[float, int, int]:
    db = folder / f"{strategy}-{time.monotonic_ns()}.db"
    config = RunConfig(
        source=str(corpus), strategy=strategy, workers=workers, labels=str(folder / "labels.yaml"),
        db=str(db), progress="none",
    )  # fmt: skip
    started = time.perf_counter()
    result = run_config(config)
    seconds = time.perf_counter() - started
    return seconds, result.stats.done, result.stats.bytes


def bench_strategies(repeat: int) -> None:
    corpus = manpages()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "labels.yaml").write_text(LABELS)
        cases = [("sequential", 1), ("processes", 2)]
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        sizes: dict[str, tuple[int, int]] = {}
        for _ in range(repeat):
            for name, workers in cases:  # alternate so background load hits both alike
                seconds, docs, size = one_run(corpus, folder, name, workers)
                times[name].append(seconds)
                sizes[name] = (docs, size)
    print(f"man pages: {corpus} (end-to-end `docmill run`: walk, read+hash, extract, keywords, journal)")
    base = statistics.median(times["sequential"])
    for name, _ in cases:
        median = statistics.median(times[name])
        docs, size = sizes[name]
        print(
            f"  {name:<12} {docs} docs  median {median:6.2f} s  {docs / median:7.1f} docs/s  "
            f"{size / 1e6 / median:6.2f} MB/s  speed-up {base / median:4.2f}x  (runs: "
            + ", ".join(f"{t:.2f}" for t in times[name])
            + ")"
        )


def outcomes(n: int, offset: int = 0) -> list[Outcome]:
    return [
        Outcome(DocumentRef(f"doc-{i:08d}", "u", 1000, 1), Status.OK, f"{i:064x}",
                {"label": "x", "score": 0.5, "classifier": "k"}, timings=Timings(1.0, 2.0, "w"))
        for i in range(offset, offset + n)
    ]  # fmt: skip


def journal_rate(rows: int, batch: int, synchronous: str) -> float:
    with (
        tempfile.TemporaryDirectory() as tmp,
        SqliteJournal(Path(tmp) / "j.db", synchronous=synchronous) as j,
    ):
        run = j.begin_run(RunInfo("/bench", "fp", "sequential", 1))
        data = outcomes(rows)
        started = time.perf_counter()
        for start in range(0, rows, batch):
            j.record(data[start : start + batch], run_id=run, source="/bench", fingerprint="fp")
        return rows / (time.perf_counter() - started)


def bench_journal(rows: int) -> None:
    print("journal record() rate (SQLite WAL; each batch one transaction; dedup + quarantine bookkeeping):")
    for synchronous in ("NORMAL", "FULL"):
        for batch, n in ((1, min(rows, 3000)), (100, rows), (1000, rows)):
            rate = journal_rate(n, batch, synchronous)
            print(f"  synchronous={synchronous:<6} batch={batch:<5} {n:>7} rows  {rate:>10,.0f} rows/s")


def bench_overhead(n: int = 50_000) -> None:
    """What the parent adds per document: run() + journal + stats versus the bare strategy."""
    from docmill.executors.sequential import SequentialExecutor
    from docmill.job import Job
    from docmill.runner import run
    from docmill.testing import MemorySource, NoopProcessor

    started = time.perf_counter()
    for _ in SequentialExecutor().map_unordered(Job(MemorySource(n), NoopProcessor()), iter(MemorySource(n))):
        pass
    bare = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp, SqliteJournal(Path(tmp) / "j.db") as journal:
        started = time.perf_counter()
        run(MemorySource(n), NoopProcessor(), journal=journal, commit_every=1000)
        full = time.perf_counter() - started
    print(
        f"runner overhead ({n:,} no-op documents, sequential): bare strategy {n / bare:,.0f} docs/s, "
        f"through run() + SQLite journal {n / full:,.0f} docs/s "
        f"= {(full - bare) / n * 1e6:.1f} µs/doc in the parent"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} CPUs, shared with other work: absolute figures are indicative, "
        "ratios are side by side"
    )
    bench_strategies(args.repeat)
    bench_journal(args.rows)
    bench_overhead()


if __name__ == "__main__":
    main()
