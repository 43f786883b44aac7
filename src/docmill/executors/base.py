"""The Executor ABC: one abstract method, ``map_unordered``; the rest is derived.

Executors only schedule ``Job.run`` over refs. Retry, time limits and loading live in the Job;
journal, sinks and progress live in the parent (the runner). To add a strategy, subclass
:class:`Executor`, implement ``map_unordered`` and register it in ``docmill.executors.EXECUTORS``;
it is done when ``tests/contract`` passes for it.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.job import Job
from docmill.outcome import Outcome


@dataclass(frozen=True, slots=True)
class ExecutorStats:
    """A frozen snapshot the progress line and the benchmark read."""

    workers: int
    in_flight: int = 0
    completed: int = 0
    crashed_workers: int = 0
    replaced_workers: int = 0
    detail: str = ""


def default_workers() -> int:
    """Usable CPU cores (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Executor(abc.ABC):
    """A parallelization strategy.

    ``workers`` is the degree of parallelism (processes, threads or coroutines, by strategy; None =
    the strategy's default). ``max_in_flight`` bounds how many refs have been pulled from the source
    and not yet yielded back, which keeps memory bounded for any source size.
    """

    name: ClassVar[str] = "executor"

    def __init__(
        self, workers: int | None = None, *, max_in_flight: int | None = None, **options: Any
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = workers or self.default_workers()
        self.max_in_flight = max_in_flight or self.default_in_flight()
        if self.max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        self.options = options
        self._closed = False

    def default_workers(self) -> int:
        return default_workers()

    def default_in_flight(self) -> int:
        return max(16, 4 * self.workers)

    @abc.abstractmethod
    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        """Yield exactly one Outcome per ref, in completion order.

        Pull refs lazily, at most ``max_in_flight`` ahead. Call ``job.setup()`` at most once per
        worker. A worker that dies holding a document yields ``Status.CRASHED`` for it and is
        replaced. Raise BrokenExecutorError only when the strategy itself cannot continue.
        """

    def map(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        """Outcomes in the order of ``refs`` (buffers out-of-order completions)."""
        order: dict[str, int] = {}

        def numbered() -> Iterator[DocumentRef]:
            for i, ref in enumerate(refs):
                order[ref.id] = i
                yield ref

        pending: dict[int, Outcome] = {}
        next_index = 0
        for outcome in self.map_unordered(job, numbered()):
            pending[order.pop(outcome.ref.id)] = outcome
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1

    def statistics(self) -> ExecutorStats:
        return ExecutorStats(workers=self.workers)

    def describe(self) -> str:
        """One line for logs and run records: strategy and its sizing."""
        return f"{self.name}(workers={self.workers})"

    def close(self) -> None:
        """Release pools and threads. Idempotent."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
