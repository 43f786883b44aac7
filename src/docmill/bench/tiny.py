"""The ``tiny`` workload: many short JSON Lines records, no classifier, recorded in a journal.

Millions of small records (tickets, messages, abstracts) are a common job, and there the framework's
cost per record *is* the run. So this workload measures what a user's run does end to end — read,
hash, record — through ``docmill.runner.run`` with a SQLite journal (the other workloads time the
strategy alone), and ``peer:naive`` is the loop a user writes instead: ``json.loads`` per line,
``sha256`` of the text, ``INSERT OR REPLACE`` 1,000 rows at a time into one SQLite table. The ratio
of the two, measured side by side on the user's own machine, is the figure to read.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from docmill.document import Document, DocumentRef
from docmill.job import Job
from docmill.pipeline import Pipeline
from docmill.sources.base import Source

TINY_WORKLOAD = "tiny"
TINY_DOCS = 200_000  # records per case unless --docs says otherwise
NAIVE_PEER = "peer:naive"
_NAIVE_BATCH = 1000
_WORDS = "printer login invoice refund delay broken password shipping account error screen slow".split()


def write_records(folder: Path, n_docs: int) -> Path:
    """``n_docs`` ticket-sized records (every 50th repeats an earlier text); written once per size."""
    path = folder / f"records-{n_docs}.jsonl"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as out:
        for i in range(n_docs):
            out.write(json.dumps({"id": f"t{i:07d}", "text": _text(i)}) + "\n")
    path.with_suffix(".tmp").replace(path)
    return path


def _text(i: int) -> str:
    seed = i - 7 if i % 50 == 49 else i
    words = " ".join(_WORDS[(seed * k) % len(_WORDS)] for k in range(1, 9))
    return f"ticket {seed}: {words}"


def tiny_job(records: Path) -> Job:
    """What ``docmill run records.jsonl -c none`` runs."""
    from docmill.processors.extract import ExtractText
    from docmill.sources.jsonl import JsonlSource

    return Job(JsonlSource(records), Pipeline(ExtractText()))


def run_tiny(strategy: str, workers: int, job: Job, refs: Sequence[DocumentRef]) -> tuple[int, int]:
    """(successes, outcomes) of ``refs`` through a whole run, or through the naive loop."""
    if strategy == NAIVE_PEER:
        return _naive(job, len(refs))
    from docmill.executors import get_executor
    from docmill.journal.sqlite import SqliteJournal
    from docmill.runner import run

    with tempfile.TemporaryDirectory(prefix="docmill-tiny-") as folder:
        journal = SqliteJournal(Path(folder) / "journal.db")
        try:
            executor = get_executor(strategy, workers=workers)
            result = run(_Slice(job.source, refs), job.pipeline, executor=executor, journal=journal)
        finally:
            journal.close()
    return result.stats.ok, result.stats.done


def _naive(job: Job, n: int) -> tuple[int, int]:
    """The first ``n`` lines of the job's JSONL file: parse, hash, INSERT OR REPLACE in batches."""
    path = getattr(job.source, "path", "")
    with tempfile.TemporaryDirectory(prefix="docmill-naive-") as folder:
        db = sqlite3.connect(Path(folder) / "naive.db")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, sha256 TEXT, chars INTEGER)")
        done = 0
        with open(path, "rb") as lines:
            for batch in _batches(lines, n):
                with db:
                    db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", batch)
                done += len(batch)
        db.close()
    return done, done


def _batches(lines: Iterator[bytes], n: int) -> Iterator[list[tuple[str, str, int]]]:
    batch: list[tuple[str, str, int]] = []
    for number, line in enumerate(lines):
        if number >= n:
            break
        record = json.loads(line)
        text = record["text"]
        batch.append((record["id"], hashlib.sha256(text.encode()).hexdigest(), len(text)))
        if len(batch) >= _NAIVE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Slice:
    """``refs`` of ``source`` as a source of their own (a warm-up runs a few, a case all)."""

    def __init__(self, source: Source, refs: Sequence[DocumentRef]) -> None:
        self.source, self.refs = source, refs
        self.root = source.root

    def __iter__(self) -> Iterator[DocumentRef]:
        return iter(self.refs)

    def count(self) -> int | None:
        return len(self.refs)

    def load(self, ref: DocumentRef) -> Document:
        return self.source.load(ref)
