"""Helpers shared by the contract and crash-matrix suites."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections import Counter
from collections.abc import Iterable

from docmill.executors import EXECUTORS
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor
from docmill.sources.base import Source

STRATEGIES = sorted(set(EXECUTORS) - {"celery"})
IN_PROCESS = {"sequential", "threads", "asyncio"}  # a crash of the process is a crash of the run


def make_job(source: Source, *steps: Processor, timeout: float | None = None) -> Job:
    """A Job whose processors went through pickle first, as they would to a spawned worker."""
    pipeline = pickle.loads(pickle.dumps(Pipeline(*steps)))
    return Job(pickle.loads(pickle.dumps(source)), pipeline, timeout=timeout)


def key(outcome: Outcome) -> tuple[object, ...]:
    """What must match the oracle: everything but timings and the traceback text."""
    error = None if outcome.error is None else (outcome.error.type, outcome.error.message)
    result = None if outcome.result is None else tuple(sorted(outcome.result.items()))
    return (outcome.ref.id, outcome.status, outcome.sha256, result, error, outcome.attempts)


def multiset(outcomes: Iterable[Outcome]) -> Counter[tuple[object, ...]]:
    return Counter(key(o) for o in outcomes)


def settled_threads(before: set[threading.Thread], wait: float = 2.0) -> set[threading.Thread]:
    """Threads started since ``before`` that are still alive after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        extra = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.02)


def live_children() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.is_alive()]
