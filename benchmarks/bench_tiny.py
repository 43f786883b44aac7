"""Many tiny records: docmill's per-record cost beside a naive single-process loop, side by side.

    python benchmarks/bench_tiny.py [--records 200000] [--strategies sequential,queue] [--repeat 1]
                                    [--resume] [--baseline SRC_DIR]

The workload: ``--records`` short JSON Lines records (a ticket-sized sentence each, ~1 in 50 a
duplicate text), no classifier: read, hash, record. The naive loop is what a user writes instead:
``json.loads`` per line, ``sha256`` of the text, ``INSERT OR REPLACE`` in batches of 1,000 into one
SQLite table. docmill runs ``docmill.run(file, classifier="none", strategy=…)`` into a fresh
journal. Rounds alternate (naive, then each strategy) so a busy machine slows all alike; the ratio
to the naive loop within one round is the figure to read. ``--resume`` also times a second run over
the same journal (every record skipped) and reports the journal's bytes per record.

Each docmill case runs in a child process (timed inside it, imports excluded), which also gives
its whole tree's peak RSS. ``--baseline SRC_DIR`` adds the same cases run from another checkout's
``src`` (``git archive HEAD src | tar -x -C /tmp/base``): before and after, side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_WORDS = "printer login invoice refund delay broken password shipping account error screen slow".split()


def make_records(path: Path, n: int) -> None:
    """``n`` short records; every 50th repeats an earlier text (duplicates the journal must find)."""
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            seed = i - 7 if i % 50 == 49 else i
            words = " ".join(_WORDS[(seed * k) % len(_WORDS)] for k in range(1, 9))
            out.write(json.dumps({"id": f"t{i:07d}", "text": f"ticket {seed}: {words}"}) + "\n")


def naive(path: Path, db: Path) -> int:
    """The loop a user writes: parse, hash, batched INSERT OR REPLACE."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, sha256 TEXT, chars INTEGER)")
    batch: list[tuple[str, str, int]] = []
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            record = json.loads(line)
            text = record["text"]
            batch.append((record["id"], hashlib.sha256(text.encode()).hexdigest(), len(text)))
            if len(batch) >= 1000:
                count += _flush(con, batch)
    count += _flush(con, batch)
    con.close()
    return count


def _flush(con: sqlite3.Connection, batch: list[tuple[str, str, int]]) -> int:
    with con:
        con.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", batch)
    n = len(batch)
    batch.clear()
    return n


_CHILD = """
import sys, time, resource, docmill
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
started, cpu0 = time.perf_counter(), cpu()
result = docmill.run(sys.argv[1], classifier="none", strategy=sys.argv[2],
                     workers=int(sys.argv[3]) or None, db=sys.argv[4])
seconds = time.perf_counter() - started
rss = max(resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(result.stats.done, result.stats.skipped, seconds, rss, cpu() - cpu0)
"""


@dataclass(frozen=True)
class Case:
    done: int
    skipped: int
    seconds: float
    rss_mib: float  # the largest process of the tree (parent or a worker)
    parent_cpu: float  # seconds on a CPU, the parent process only


def docmill_case(data: Path, db: Path, strategy: str, workers: int | None, src: str | None) -> Case:
    """One ``docmill.run`` in a child process, from ``src`` (another checkout) when given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    argv = [sys.executable, "-c", _CHILD, str(data), strategy, str(workers or 0), str(db)]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout.split()
    return Case(int(out[0]), int(out[1]), float(out[2]), int(out[3]) / 1024, float(out[4]))


def timed(fn: object, *args: object) -> tuple[float, int]:
    started = time.perf_counter()
    count = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started, int(count)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--strategies", default="sequential,queue")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--baseline", default=None, help="another checkout's src/ to run beside this one")
    args = parser.parse_args(argv)
    trees: dict[str, str | None] = {"": None}
    if args.baseline:
        trees = {"before ": args.baseline, "": None}
    labels = [f"{tree}{name}" for name in args.strategies.split(",") for tree in trees]
    with tempfile.TemporaryDirectory(prefix="bench-tiny-") as tmp:
        data = Path(tmp) / "records.jsonl"
        make_records(data, args.records)
        mb, load = data.stat().st_size / 1e6, os.getloadavg()[0]
        print(f"bench_tiny: {args.records:,} records, {mb:.1f} MB, load {load:.1f}")
        rates: dict[str, list[float]] = {label: [] for label in ["naive", *labels]}
        parent: dict[str, list[float]] = {label: [] for label in ["naive", *labels]}
        for round_ in range(args.repeat):
            cpu = _cpu()
            seconds, n = timed(naive, data, Path(tmp) / f"naive{round_}.db")
            rates["naive"].append(n / seconds)
            parent["naive"].append((_cpu() - cpu) / n)
            for name in args.strategies.split(","):
                for tree, src in trees.items():
                    db = Path(tmp) / f"{tree.strip()}{name}{round_}.db"
                    case = _case(data, db, name, args, src)
                    rates[f"{tree}{name}"].append(case.done / case.seconds)
                    parent[f"{tree}{name}"].append(case.parent_cpu / case.done)
                    if args.resume:
                        _resume(data, db, f"{tree}{name}", args, src)
        _report(rates, parent, args.repeat)
        print(f"load at the end {os.getloadavg()[0]:.1f}")


def _case(data: Path, db: Path, name: str, args: argparse.Namespace, src: str | None) -> Case:
    workers = None if name == "sequential" else args.workers
    return docmill_case(data, db, name, workers, src)


def _report(rates: dict[str, list[float]], parent: dict[str, list[float]], repeat: int) -> None:
    """Median rate per case, its ratio to the naive loop of the same rounds, the parent's CPU."""
    print(f"  {'case':<20} {'records/s':>9}  {'× naive':>7}  parent CPU µs/record (median of {repeat})")
    for label, values in rates.items():
        ratios = [value / base for value, base in zip(values, rates["naive"], strict=True)]
        rate, cpu = statistics.median(values), statistics.median(parent[label])
        print(f"  {label:<20} {rate:>9,.0f}  {statistics.median(ratios):>6.2f}×  {cpu * 1e6:6.1f}")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _resume(data: Path, db: Path, label: str, args: argparse.Namespace, src: str | None) -> None:
    case = _case(data, db, label.split()[-1], args, src)
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    print(
        f"  {label:<20} resume: {case.skipped:,} skipped in {case.seconds:5.2f} s; "
        f"journal {size / args.records:,.0f} bytes/record; peak RSS {case.rss_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
