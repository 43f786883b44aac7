"""Faults injected into a distributed run, and the verdict against the sequential oracle.

``celery_run`` drives a Celery run into a PostgreSQL journal and calls ``fault`` once, from a
thread, when the ``at``-th outcome arrives; ``Verdict`` counts what the journal settled on
against the sequential run of the same documents: lost rows, duplicate rows, label differences.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from distributed_helpers import drive

from docmill.executors.distributed import CeleryExecutor, DistributedStats
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.journal.base import Journal, Query
from docmill.journal.postgres import PostgresJournal
from docmill.testing import MemorySource, SleepProcessor


@dataclass(frozen=True)
class Verdict:
    """What a faulty run left in its journal, against the oracle."""

    rows: int
    lost: int
    duplicate_rows: int
    label_differences: int

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicate_rows == self.label_differences == 0


def oracle(n: int) -> dict[str, tuple[str, str | None]]:
    """The sequential run's (status, label) per document."""
    job = Job(MemorySource(n), SleepProcessor(0))
    with SequentialExecutor() as ex:
        return {
            o.ref.id: (o.status.value, label_of(o.result)) for o in ex.map_unordered(job, MemorySource(n))
        }


def label_of(result: object) -> str | None:
    return result.get("label") if isinstance(result, dict) else None


def verdict(journal: Journal, expected: dict[str, tuple[str, str | None]]) -> Verdict:
    records = list(journal.iter_documents(Query(limit=10 * len(expected) + 10)))
    got = {r.path: (r.status, r.label) for r in records}
    lost = len(set(expected) - set(got))
    differ = sum(1 for path, row in got.items() if expected.get(path) != row)
    return Verdict(len(records), lost, len(records) - len(got), differ)


def celery_run(
    executor: CeleryExecutor,
    target: str,
    n: int,
    seconds: float,
    *,
    at: int = 0,
    fault: Callable[[], None] = lambda: None,
) -> tuple[Verdict, DistributedStats]:
    """Run ``n`` documents of ``seconds`` each; ``fault()`` starts (in a thread) at outcome ``at``."""
    threads: list[threading.Thread] = []

    def maybe_fault(count: int) -> None:
        if count == at:
            threads.append(threading.Thread(target=fault, daemon=True))
            threads[0].start()

    source = MemorySource(n)
    job = Job(source, SleepProcessor(seconds))
    with PostgresJournal(target) as journal:
        drive(executor, job, journal, source, batch=10, on_outcome=maybe_fault)
        for thread in threads:
            thread.join(120)
        return verdict(journal, oracle(n)), executor.distributed_stats()
