"""A soak: one long run of the processes strategy with 1 % mixed faults, watched from outside.

Faults, 0.25 % each, picked by each document's id: a permanent error, SIGKILL of the worker,
``os._exit``, and a hang past the per-document timeout (the watchdog kills the worker). The
coordinator (this process) must not grow: RSS at the end within 10 % of RSS once warm, no file
descriptor left open that was not open before, no zombie child. And every document has exactly
one row.

Length: ``DOCMILL_SOAK_SECONDS`` (default 180) and ``DOCMILL_SOAK_DOCS`` (default 100000), whichever
ends first. The issue's form, one hour of 10⁵ documents: ``DOCMILL_SOAK_SECONDS=3600``; CI runs
the default only.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import UnsupportedDocument
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.processors.base import Processor
from docmill.runner import run
from docmill.testing import MemorySource, ref_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(4 * 3600)]

SECONDS = float(os.environ.get("DOCMILL_SOAK_SECONDS", 180))
DOCS = int(os.environ.get("DOCMILL_SOAK_DOCS", 100_000))
COST = 0.05  # seconds per document: two workers do ~40 documents/s, 10⁵ in about 45 minutes
TIMEOUT = 1.0


class TimedSource(MemorySource):
    """Documents until ``deadline`` (wall clock) or ``n`` of them, whichever comes first."""

    def __init__(self, n: int, deadline: float) -> None:
        super().__init__(n)
        self.deadline = deadline

    def __iter__(self) -> Iterator[DocumentRef]:
        for i in range(self.n):
            if time.time() >= self.deadline:
                return
            yield ref_for(i)


class MixedFaults(Processor):
    """1 % of documents misbehave (four ways, 0.25 % each); the others cost ``COST`` seconds."""

    name = "soak-faults"

    def process(self, doc: Document) -> Document:
        fault = int(hashlib.sha256(doc.ref.id.encode()).hexdigest()[:8], 16) % 400
        if fault == 0:
            raise UnsupportedDocument("refusing on purpose")
        if fault == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == 2:
            os._exit(7)
        time.sleep(10 * TIMEOUT if fault == 3 else COST)
        return doc.evolve(text="x").with_metadata(label="ok")


class Sampler(threading.Thread):
    """This process's RSS every half second, with the time of each sample."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(0.5):
            self.samples.append((time.monotonic(), me.memory_info().rss))

    def growth(self) -> tuple[int, int]:
        """(RSS once warm: median of the second fifth, RSS at the end: median of the last tenth)."""
        n = len(self.samples)
        warm = statistics.median(r for _, r in self.samples[n // 5 : 2 * n // 5])
        end = statistics.median(r for _, r in self.samples[-max(1, n // 10) :])
        return int(warm), int(end)


def soak(db: Path, seconds: float, docs: int) -> int:
    source = TimedSource(docs, time.time() + seconds)
    with SqliteJournal(db) as journal:
        result = run(source, MixedFaults(), executor="processes", workers=2, journal=journal, timeout=TIMEOUT)
        return result.run_id


def test_soak_with_one_percent_mixed_faults(tmp_path: Path) -> None:
    me = psutil.Process()
    soak(tmp_path / "warm.db", 3, 200)  # imports, caches and the first pool, before counting
    gc.collect()
    fds = me.num_fds()
    sampler = Sampler()
    sampler.start()
    started = time.monotonic()
    soak(tmp_path / "soak.db", SECONDS, DOCS)
    sampler.done.set()
    sampler.join()
    gc.collect()
    warm, end = sampler.growth()
    zombies = [c.pid for c in me.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
    with SqliteJournal(tmp_path / "soak.db", read_only=True) as journal:
        rows = list(journal.iter_documents(Query(limit=10 * DOCS)))
    paths = {r.path for r in rows}
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    expected = {f"doc-{i:06d}" for i in range(len(paths))}
    print(
        f"soak {time.monotonic() - started:.0f} s, {len(rows)} documents {statuses}: "
        f"coordinator RSS {warm / 2**20:.1f} → {end / 2**20:.1f} MiB ({100 * (end / warm - 1):+.1f} %), "
        f"file descriptors {fds} → {me.num_fds()}, zombies {len(zombies)}, "
        f"lost {len(expected - paths)}, duplicate rows {len(rows) - len(paths)}"
    )
    assert paths == expected and len(rows) == len(paths)
    assert end < 1.10 * warm
    assert me.num_fds() <= fds
    assert not zombies
