"""Distributed faults, all in one run: a Celery run of 1,800 man pages that is SIGKILLed and resumed,
and whose resumed run rides out a broker freeze and a cut of its journal's connections.

    python benchmarks/chaos_acceptance.py [--manpages DIR] [--freeze 8] [--kill-at 500] [--json OUT]

* corpus: the 1,200 man pages of the shared data and 600 more documents (the first 600 txt, md and
  html pages again under ``copies/``, each with one newline appended: other bytes, the same text),
  1,800 in all, in five formats; the man-page labels of ``benchmarks/manpages.labels.yaml``.
* oracle: ``docmill run --strategy sequential`` into SQLite.
* the faulty run: two ``docmill worker`` processes (``--concurrency 1``) on a Redis server of this
  script's own (started on a free port, no persistence; never a shared Redis), the journal a fresh
  schema of PostgreSQL (``DOCMILL_TEST_PG``), the runner a ``docmill run --strategy celery``
  subprocess whose sessions carry an application_name of their own. Faults, in order:
  (1) the runner is SIGKILLed once ``--kill-at`` rows are recorded, and started again;
  (2) in the resumed run, ``DEBUG SLEEP`` freezes that Redis (broker and result store) ``--freeze`` s;
  (3) then every PostgreSQL session of the runner is terminated (``pg_terminate_backend``).
* verdict: the rows of the journal against the oracle: lost, duplicate rows, label differences.

"Ridden out" is the time from the fault's start to the next row recorded after it ended (sampled
every 0.1 s), beside what the runner itself logged ("answers again after", "working again after").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "distributed"))

from distributed_helpers import PG_URL, SRC, Workers  # noqa: E402
from redis_server import RedisServer  # noqa: E402

from docmill.executors.distributed import CeleryExecutor  # noqa: E402
from docmill.journal import open_journal  # noqa: E402
from docmill.journal.base import Query  # noqa: E402

LABELS = REPO / "benchmarks" / "manpages.labels.yaml"
COPIES = 600
Rows = dict[str, tuple[str, str | None]]


@dataclass
class Figures:
    """What one acceptance run measured."""

    documents: int = 0
    oracle_seconds: float = 0.0
    killed_at_rows: int = 0
    killed_after_seconds: float = 0.0
    resumed_seconds: float = 0.0
    freeze_seconds: float = 0.0
    freeze_ridden_seconds: float | None = None
    cut_sessions: int = 0
    cut_ridden_seconds: float | None = None
    rows: int = 0
    distinct_rows: int = 0
    lost: int = 0
    duplicate_rows: int = 0
    label_differences: int = 0
    runner_log: list[str] = field(default_factory=list)
    executor: str = ""

    @property
    def clean(self) -> bool:
        applied = self.freeze_ridden_seconds is not None and self.cut_ridden_seconds is not None
        faults = applied and self.cut_sessions > 0 and self.killed_at_rows > 0
        return faults and self.lost == self.duplicate_rows == self.label_differences == 0

    def summary(self) -> str:
        return (
            f"{self.documents} documents: oracle {self.oracle_seconds:.1f} s; celery run killed -9 at "
            f"{self.killed_at_rows} rows ({self.killed_after_seconds:.1f} s), resumed in "
            f"{self.resumed_seconds:.1f} s; freeze {self.freeze_seconds:g} s ridden out in "
            f"{_s(self.freeze_ridden_seconds)}; {self.cut_sessions} journal session(s) cut, ridden out "
            f"in {_s(self.cut_ridden_seconds)}; rows {self.rows} ({self.distinct_rows} distinct), lost "
            f"{self.lost}, duplicate rows {self.duplicate_rows}, label differences {self.label_differences}"
        )


def _s(seconds: float | None) -> str:
    return "n/a (fault not applied)" if seconds is None else f"{seconds:.1f} s"


def build_corpus(manpages: Path, out: Path, copies: int = COPIES) -> int:
    """The man pages, and ``copies`` text pages again (a newline appended) under ``copies/``."""
    shutil.copytree(manpages, out)
    texts = sorted(p for p in manpages.rglob("*") if p.suffix in {".txt", ".md", ".html"})[:copies]
    for path in texts:
        target = out / "copies" / path.relative_to(manpages)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes() + b"\n")
    return sum(1 for p in out.rglob("*") if p.is_file())


def docmill_run(corpus: Path, db: str, *options: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--labels", str(LABELS), "--db", db]
    argv += ["--progress", "none", "--commit-every", "50", "--commit-seconds", "0.5", *options]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def journal_rows(target: str) -> Rows:
    """(status, label) by path of the latest run's source and pipeline; a path twice is counted apart."""
    journal = open_journal(target, read_only=True)
    try:
        return {r.path: (r.status, r.label) for r in journal.iter_documents(Query())}
    finally:
        journal.close()


def oracle(corpus: Path, workdir: Path) -> tuple[Rows, float]:
    started = time.monotonic()
    db = str(workdir / "oracle.db")
    proc = docmill_run(corpus, db, "--strategy", "sequential")
    _, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the sequential run failed: {err.strip()[-500:]}")
    return journal_rows(db), time.monotonic() - started


class Postgres:
    """A fresh schema for the run's journal, and an admin session (of another name) to watch and cut."""

    def __init__(self) -> None:
        import psycopg

        self.schema = f"acc_{uuid.uuid4().hex[:10]}"
        self.app = f"docmill-acceptance-{uuid.uuid4().hex[:6]}"
        sep = "&" if "?" in PG_URL else "?"
        self.target = f"{PG_URL}{sep}schema={self.schema}&application_name={self.app}"
        self.admin = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
        self.lock = threading.Lock()

    def counts(self) -> tuple[int, int]:
        """(rows, distinct keys) of the documents table; (0, 0) before the run made it."""
        table = f'"{self.schema}".docmill_documents'
        sql = f"SELECT count(*), count(DISTINCT (source, path, fingerprint)) FROM {table}"
        with self.lock:
            if not self._exists():
                return 0, 0
            row = self.admin.execute(sql).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _exists(self) -> bool:
        sql = "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'docmill_documents'"
        return self.admin.execute(sql, (self.schema,)).fetchone() is not None

    def cut(self) -> int:
        """Terminate every session of the runner (and only those); how many."""
        sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s"
        with self.lock:
            row = self.admin.execute(sql, (self.app,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.admin.close()


class Monitor(threading.Thread):
    """Samples the journal's row count every 0.1 s: (monotonic time, rows)."""

    def __init__(self, pg: Postgres) -> None:
        super().__init__(daemon=True)
        self.pg = pg
        self.samples: list[tuple[float, int]] = [(time.monotonic(), 0)]
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            self.samples.append((time.monotonic(), self.pg.counts()[0]))

    @property
    def rows(self) -> int:
        return self.samples[-1][1]

    def until(self, ready: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 900) -> bool:
        """Wait for ``ready``; False when the runner ended first (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def ridden(self, began: float, ended: float, proc: subprocess.Popen[str]) -> float | None:
        """Seconds from ``began`` to the first new row recorded after ``ended``."""
        base = max((n for t, n in self.samples if t <= ended), default=0)
        if not self.until(lambda: self.rows > base, proc):
            return None
        first = next(t for t, n in self.samples if t > ended and n > base)
        return first - began


@contextmanager
def cluster(workdir: Path) -> Iterator[tuple[RedisServer, Workers]]:
    """A Redis server of our own and two ``docmill worker`` processes on a private queue."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed")
    server = RedisServer(workdir)
    server.start()
    pool = Workers(server.url(), count=2, visibility=60)
    try:
        with CeleryExecutor(broker=server.url(), queue=pool.queue) as probe:
            pool.wait_ready(probe.app, 2)
        yield server, pool
    finally:
        pool.stop()
        server.kill()


def faulty_run(
    corpus: Path, pg: Postgres, server: RedisServer, pool: Workers, f: Figures, kill_at: int
) -> None:
    options = ("--strategy", "celery", "--workers", "2", "--broker", server.url(), "--queue", pool.queue)
    monitor = Monitor(pg)
    monitor.start()
    try:
        started = time.monotonic()
        first = docmill_run(corpus, pg.target, *options)
        if monitor.until(lambda: monitor.rows >= kill_at, first):
            first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
        f.killed_after_seconds = time.monotonic() - started
        f.killed_at_rows = pg.counts()[0] if first.returncode == -signal.SIGKILL else 0
        resumed_at = time.monotonic()
        second = docmill_run(corpus, pg.target, *options)
        _faults(monitor, pg, server, second, f)
        _, err = second.communicate(timeout=1800)
        f.resumed_seconds = time.monotonic() - resumed_at
        f.runner_log = [line for line in err.splitlines() if line.strip()]
        if second.returncode != 0:
            raise RuntimeError(f"the resumed run failed ({second.returncode}): {err.strip()[-800:]}")
    finally:
        monitor.halt.set()
        monitor.join(5)


def _faults(
    monitor: Monitor, pg: Postgres, server: RedisServer, proc: subprocess.Popen[str], f: Figures
) -> None:
    """In the resumed run: a broker freeze 300 rows in, then a journal cut 300 rows after it healed."""
    base = pg.counts()[0]
    if not monitor.until(lambda: monitor.rows >= base + 300, proc):
        return
    began = time.monotonic()
    server.freeze(f.freeze_seconds).join()
    f.freeze_ridden_seconds = monitor.ridden(began, time.monotonic(), proc)
    base = monitor.rows
    if f.freeze_ridden_seconds is None or not monitor.until(lambda: monitor.rows >= base + 300, proc):
        return
    began = time.monotonic()
    f.cut_sessions = pg.cut()
    f.cut_ridden_seconds = monitor.ridden(began, began, proc)


def verdict(pg: Postgres, expected: Rows, f: Figures) -> None:
    f.rows, f.distinct_rows = pg.counts()
    got = journal_rows(pg.target)
    f.lost = len(set(expected) - set(got))
    f.duplicate_rows = f.rows - f.distinct_rows
    f.label_differences = sum(1 for path, row in got.items() if expected.get(path) != row)
    journal = open_journal(pg.target, read_only=True)
    try:
        stats: dict[str, Any] = dict(journal.runs()[0].stats)
    finally:
        journal.close()
    f.executor = str(stats.get("executor", {}).get("detail", ""))


def acceptance(manpages: Path, workdir: Path, *, freeze: float = 8, kill_at: int = 500) -> Figures:
    """Build the corpus, run the oracle, then the faulty Celery run; the figures of it all."""
    figures = Figures(freeze_seconds=freeze)
    corpus = workdir / "corpus"
    figures.documents = build_corpus(manpages, corpus)
    expected, figures.oracle_seconds = oracle(corpus, workdir)
    pg = Postgres()
    try:
        with cluster(workdir) as (server, pool):
            faulty_run(corpus, pg, server, pool, figures, kill_at)
        verdict(pg, expected, figures)
    finally:
        pg.close()
    return figures


def main() -> None:
    shared = Path(os.environ.get("DOCMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manpages", type=Path, default=shared / "manpages")
    parser.add_argument("--freeze", type=float, default=8.0, help="seconds Redis is frozen")
    parser.add_argument("--kill-at", type=int, default=500, help="rows recorded when the runner is killed")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    workdir = args.workdir or Path(f"/tmp/docmill-acceptance-{uuid.uuid4().hex[:8]}")
    workdir.mkdir(parents=True)
    try:
        figures = acceptance(args.manpages, workdir, freeze=args.freeze, kill_at=args.kill_at)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(figures.summary())
    for line in figures.runner_log:
        print(f"  runner: {line}")
    print(f"  executor: {figures.executor}")
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    raise SystemExit(0 if figures.clean else 1)


if __name__ == "__main__":
    main()
