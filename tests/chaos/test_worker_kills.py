"""SIGKILL of k of n workers at once, 20 times in a run, for every strategy with worker processes.

Each round kills k of the n worker processes at the same moment (k cycles through 1…n), mid-run.
The strategies' promise: every document is yielded exactly once (0 lost, 0 duplicate); a document
a killed worker was holding may end ``crashed`` ("killed by SIGKILL"), and running those again
(what a resume does) gives the sequential run's outcomes exactly.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psutil
import pytest
from distributed_helpers import REDIS_URL, running_workers

from docmill.executors import get_executor
from docmill.executors.base import Executor
from docmill.executors.distributed import CeleryExecutor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.outcome import Outcome, Status
from docmill.testing import MemorySource, SleepProcessor

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

ROUNDS = 20
N_WORKERS = 4
DOCS = 80
SECONDS = 0.02
KILL_AT = 20  # outcomes into each round


def local_workers() -> list[int]:
    return [p.pid for p in psutil.Process().children() if p.is_running() and p.status() != "zombie"]


def kill(pids: list[int], k: int, rng: random.Random) -> int:
    chosen = rng.sample(pids, min(k, len(pids)))
    for pid in chosen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(chosen)


def expected(n: int) -> dict[str, tuple[object, ...]]:
    with SequentialExecutor() as ex:
        return {o.ref.id: key(o) for o in ex.map_unordered(job(n), MemorySource(n))}


def job(n: int) -> Job:
    return Job(MemorySource(n), SleepProcessor(SECONDS))


def key(o: Outcome) -> tuple[object, ...]:
    return (o.status, o.sha256, None if o.result is None else o.result.get("label"))


def one_round(ex: Executor, k: int, pids: Callable[[], list[int]], rng: random.Random) -> dict[str, int]:
    """A run with k workers killed at once; the crashed documents run again. Returns the books."""
    seen: Counter[str] = Counter()
    final: dict[str, tuple[object, ...]] = {}
    crashed = []
    killed = 0
    for count, outcome in enumerate(ex.map_unordered(job(DOCS), MemorySource(DOCS)), 1):
        if count == KILL_AT:
            killed = kill(pids(), k, rng)
        seen[outcome.ref.id] += 1
        final[outcome.ref.id] = key(outcome)
        if outcome.status is Status.CRASHED:
            assert outcome.error is not None and "SIGKILL" in outcome.error.message
            crashed.append(outcome.ref)
    redelivered = ex.distributed_stats().redelivered_chunks if isinstance(ex, CeleryExecutor) else 0
    for outcome in ex.map_unordered(job(DOCS), crashed):  # what a resume does
        final[outcome.ref.id] = key(outcome)
    oracle = expected(DOCS)
    return {
        "killed": killed,
        "lost": len(set(oracle) - set(seen)),
        "dup": sum(n - 1 for n in seen.values()),
        "crashed": len(crashed),
        "redelivered": redelivered,
        "differ": sum(1 for ref, row in oracle.items() if final.get(ref) != row),
    }


def rounds(ex: Executor, pids: Callable[[], list[int]], name: str) -> None:
    rng = random.Random(7)
    totals: Counter[str] = Counter()
    started = time.monotonic()
    for r in range(ROUNDS):
        books = one_round(ex, 1 + r % N_WORKERS, pids, rng)
        totals.update(books)
    print(
        f"{name}: {ROUNDS} rounds of k=1..{N_WORKERS} of {N_WORKERS} workers SIGKILLed at once, "
        f"{totals['killed']} kills, {totals['crashed']} documents crashed then re-run, "
        f"{totals['redelivered']} chunks redelivered, "
        f"lost={totals['lost']} dup={totals['dup']} label/status differences={totals['differ']}, "
        f"{time.monotonic() - started:.0f} s"
    )
    assert totals["killed"] >= ROUNDS
    assert totals["lost"] == totals["dup"] == totals["differ"] == 0


@pytest.mark.parametrize("strategy", ["processes", "queue", "hybrid"])
def test_k_of_n_local_workers_killed_at_once(strategy: str) -> None:
    with get_executor(strategy, workers=N_WORKERS) as ex:
        rounds(ex, local_workers, strategy)


@pytest.fixture
def celery_pool() -> Iterator[tuple[CeleryExecutor, Callable[[], list[int]]]]:
    with running_workers(2, concurrency=N_WORKERS // 2) as pool:

        def pids() -> list[int]:
            return [c.pid for i in range(2) for c in pool.children(i) if c.is_running()]

        with CeleryExecutor(N_WORKERS, broker=REDIS_URL, queue=pool.queue, chunk_size=5) as ex:
            yield ex, pids


@pytest.mark.celery
@pytest.mark.redis
def test_k_of_n_celery_worker_processes_killed_at_once(
    celery_pool: tuple[CeleryExecutor, Callable[[], list[int]]],
) -> None:
    ex, pids = celery_pool
    rounds(ex, pids, "celery")
