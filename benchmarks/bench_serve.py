"""Dashboard figures: how long the page's once-a-second poll takes against a large SQLite journal,
and how fast the CSV export streams.

The journal is filled directly (one run, ``--rows`` documents, 2 % failures, five labels); requests
go through Starlette's test client, so the figures are the server's work without network. Each URL
is timed ``--repeat`` times on a fresh server (cold: what a poll costs while a run changes the
journal, at most every few seconds, see ``serve/cache.py``) and repeated at once (memoised).

Usage: python benchmarks/bench_serve.py [--rows 100000 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from docmill.document import DocumentRef
from docmill.journal.base import RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.serve.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

POLL = [  # what the page asks for every second (the error types every five)
    "/api/runs",
    "/api/runs/1",
    "/api/runs/1/throughput?buckets=60",
    "/api/failures?run=1&status=failed,quarantined,crashed&limit=50",
    "/api/runs/1/errors",
]
OTHER = ["/api/documents?run=1&limit=50&offset=5000", "/api/documents?run=1&path=07/&limit=50", "/metrics"]
BASE_URL = "http://127.0.0.1:8765"
LABELS = ["invoice", "report", "letter", "contract", "other"]


def _outcome(i: int, now: float) -> Outcome:
    ref = DocumentRef(f"{i % 100:02d}/doc {i:07d} — ü.pdf", f"file:///corpus/{i}", 10_000 + i)
    failed = i % 50 == 7
    error = ErrorInfo("CorruptDocument" if i % 100 == 7 else "ProcessingTimeout", "bad") if failed else None
    result = None if failed else {"label": LABELS[i % 5], "score": 0.9}
    status = Status.FAILED if failed else Status.OK
    return Outcome(ref, status, f"{i:064x}", result, error, 1, Timings(now + i * 1e-3, now + i * 1e-3 + 0.01))


def fill(db: Path, rows: int) -> None:
    journal = SqliteJournal(db)
    run_id = journal.begin_run(RunInfo("/corpus", "fp", "processes", 2, rows, {}))
    now = time.time()
    for start in range(0, rows, 5000):
        batch = [_outcome(i, now) for i in range(start, min(rows, start + 5000))]
        journal.record(batch, run_id=run_id, source="/corpus", fingerprint="fp")
    journal.heartbeat(run_id, {"done": rows, "docs_per_second": 1000.0, "total": rows})
    journal.close()


def _timed(client: TestClient, url: str) -> float:
    start = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return time.perf_counter() - start


def median_ms(db: Path, url: str, repeat: int) -> tuple[float, float]:
    """(cold, memoised) medians: the first request of a fresh server, then a repeat of it."""
    cold, warm = [], []
    for _ in range(repeat):
        with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
            cold.append(_timed(client, url))
            warm.append(_timed(client, url))
    return statistics.median(cold) * 1000, statistics.median(warm) * 1000


def export_rate(client: TestClient, rows: int) -> float:
    start = time.perf_counter()
    body = client.get("/api/export.csv?run=1").content
    seconds = time.perf_counter() - start
    assert body.count(b"\n") == rows + 1
    return rows / seconds


def bench(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "docmill.db"
        fill(db, rows)
        print(f"\n{rows:,} documents (median of {repeat}): cold ms, memoised ms, URL")
        polls = [0.0, 0.0]
        for url in POLL + OTHER:
            cold, warm = median_ms(db, url, repeat)
            if url in POLL:
                polls = [polls[0] + cold, polls[1] + warm]
            print(f"  {cold:8.1f} {warm:8.1f}  {url}")
        print(f"  {polls[0]:8.1f} {polls[1]:8.1f}  one full poll of the page")
        with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
            print(f"  {export_rate(client, rows):8,.0f} rows/s CSV export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for rows in args.rows:
        bench(rows, args.repeat)


if __name__ == "__main__":
    main()
