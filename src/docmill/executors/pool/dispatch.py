"""``PooledExecutor``: the dispatch loop shared by the process-based strategies.

Subclasses choose only *how big a chunk is* (``chunk_size``/``observe``) and *which refs a worker
gets* (``next_items``); pulling refs lazily, re-dispatching after crashes and yielding outcomes are
here, once. Each worker holds at most ``depth`` chunks (one running, one waiting in its pipe), so
it never waits for the parent, and no more than ``max_in_flight`` refs are pulled ahead.

``map_unordered`` runs the job on the workers; ``stream`` runs any task (a stage of the job) and
hands back its raw results a wait at a time, so that another executor can build on the loop
(``staged`` feeds them to its event loop) without overriding it.
"""

from __future__ import annotations

import collections
import multiprocessing
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from docmill.document import DocumentRef
from docmill.errors import BrokenExecutorError
from docmill.executors.base import Executor, ExecutorStats
from docmill.executors.pool.parent import Pool, WorkerHandle
from docmill.executors.pool.wire import Item
from docmill.executors.pool.worker import Task, WorkerLimits
from docmill.executors.sizing import cap_processes
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.settings import check

_MIB = 1 << 20


class PooledExecutor(Executor):
    """A strategy over worker processes.

    Options (keyword-only): ``start_method`` ("fork" on Linux, "spawn"), ``max_tasks_per_child``
    (recycle a worker after that many documents), ``max_memory_mb`` (recycle a worker whose
    resident memory passed this, failing the document that pushed it over), ``timeout_grace``
    (seconds past ``job.timeout`` before the watchdog kills a stuck worker).
    """

    needs_processes = True
    depth = 2  # chunks per worker: one running, one queued so the worker never waits on us

    @dataclass(frozen=True, kw_only=True)
    class Options(Executor.Options):
        """What every process pool takes (see the class docstring)."""

        start_method: str | None = None
        max_tasks_per_child: int | None = None
        max_memory_mb: float | None = None
        timeout_grace: float = 1.0

        def __post_init__(self) -> None:
            Executor.Options.__post_init__(self)
            methods = multiprocessing.get_all_start_methods()
            ok = self.start_method is None or self.start_method in methods
            check(ok, "start_method", self.start_method, "one of " + ", ".join(methods))
            check(self.timeout_grace >= 0, "timeout_grace", self.timeout_grace, "must be >= 0")
            limits_from(self.max_tasks_per_child, self.max_memory_mb)

    options: PooledExecutor.Options

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self.start_method = self.options.start_method
        self.limits = limits_from(self.options.max_tasks_per_child, self.options.max_memory_mb)
        self.timeout_grace = self.options.timeout_grace
        self._pool: Pool | None = None
        self._stats = ExecutorStats(workers=self.workers)
        self._pending: dict[int, DocumentRef] = {}
        self._completed = 0

    def bounded(self, workers: int, *, explicit: bool) -> int:
        return cap_processes(workers, explicit=explicit)

    def worker_limits(self, job: Job) -> WorkerLimits:
        """The workers' limits and shape for this job (hybrid widens them)."""
        return self.limits

    def default_in_flight(self) -> int:
        return 8192  # refs are ~200 bytes; chunk sizing keeps the *time* held per worker small

    # ------------------------------------------------------------------------------ the hooks

    def chunk_size(self, worker: WorkerHandle) -> int:
        return 1

    def observe(self, worker: int, docs: int, seconds: float, cpu: float | None = None) -> None:
        """A chunk of ``docs`` documents took ``seconds`` (wall, send to report) and ``cpu`` (the
        worker's CPU seconds, None when unknown) on ``worker``."""

    def prepare(self, refs: Iterable[DocumentRef]) -> None:
        """Called once before dispatch with the refs; ``next_items`` then takes from them."""
        self._refs: Iterator[DocumentRef] = iter(refs)
        self._dry = False

    def next_items(self, worker: WorkerHandle, count: int) -> list[DocumentRef]:
        """Up to ``count`` fresh refs for ``worker`` (fewer when the source runs dry)."""
        refs = [ref for _, ref in zip(range(count), self._refs, strict=False)]
        self._dry = self._dry or len(refs) < count
        return refs

    def source_dry(self) -> bool:
        """True once ``next_items`` has nothing more to give."""
        return self._dry

    # ------------------------------------------------------------------------------- the loop

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        for batch in self.stream(job, refs):
            for outcome in batch:
                self._completed += 1
                yield outcome

    def stream(
        self,
        job: Job,
        refs: Iterable[DocumentRef],
        *,
        task: Task | None = None,
        wakeups: Sequence[Any] = (),
        held: Callable[[], int] = lambda: 0,
    ) -> Generator[list[Any]]:
        """Run ``task`` (default: ``job``) over ``refs``; after each wait, the results it brought.

        A result is what ``task.run`` returned, or the Outcome made for a document whose worker
        crashed or overran the job's time limit; each document gives exactly one. The job shapes
        the workers and sets the time limit. A wait also ends when one of ``wakeups`` (objects with
        ``fileno``) is ready, and the batch may then be empty. ``held()`` counts documents the
        caller took from earlier batches and has not finished yet (a later stage): they count
        against ``max_in_flight``, and while there are any, having nothing to dispatch is a wait.
        """
        refs = self.fit_to_pending(refs)
        pool = self._pool = self._make_pool(job, task or job)
        try:
            pool.start()
            self.prepare(refs)
            yield from self._drive(pool, list(wakeups), held)
            pool.shutdown(drain=True)
        finally:
            pool.shutdown(drain=False)
            self._stats = self._snapshot(pool)
            self._pool = None

    def _make_pool(self, job: Job, task: Task) -> Pool:
        return Pool(
            task,
            self.workers,
            limits=self.worker_limits(job),
            timeout=job.timeout,
            grace=self.timeout_grace,
            start_method=self.start_method,
        )

    def _drive(self, pool: Pool, wakeups: list[Any], held: Callable[[], int]) -> Iterator[list[Any]]:
        pending = self._pending = {}
        retry: collections.deque[Item] = collections.deque()
        suspects: collections.deque[Item] = collections.deque()
        self._seq = 0
        while True:
            self._dispatch(pool, pending, retry, suspects, self.max_in_flight - held())
            if not pending and self.source_dry():
                return
            if not (pool.holding or retry or suspects or held()):
                raise BrokenExecutorError(f"{len(pending)} documents were lost track of")
            report = pool.wait(extra=wakeups)
            retry.extend(report.requeue)
            suspects.extend(report.suspects)
            for worker, docs, seconds, cpu in report.timings:
                self.observe(worker, docs, seconds, cpu)
            yield [result for seq, result in report.finished if pending.pop(seq, None) is not None]

    def _dispatch(
        self,
        pool: Pool,
        pending: dict[int, DocumentRef],
        retry: collections.deque[Item],
        suspects: collections.deque[Item],
        budget: int,
    ) -> None:
        sent = True
        while sent:  # one chunk per worker per round, until every worker holds ``depth``
            sent = False
            for worker in pool.idle_capacity(self.depth):
                if suspects:
                    pool.send(worker, [suspects.popleft()], solo=True)
                elif items := self._take(worker, pending, retry, budget):
                    pool.send(worker, items)
                else:
                    continue
                sent = True

    def _take(
        self,
        worker: WorkerHandle,
        pending: dict[int, DocumentRef],
        retry: collections.deque[Item],
        budget: int,
    ) -> list[Item]:
        """The next chunk for ``worker``: handed-back items first, then fresh refs within ``budget``."""
        size = self.chunk_size(worker)
        items = [retry.popleft() for _ in range(min(size, len(retry)))]
        room = min(size - len(items), budget - len(pending))
        for ref in self.next_items(worker, room) if room > 0 else ():
            pending[self._seq] = ref
            items.append((self._seq, ref))
            self._seq += 1
        return items

    # ------------------------------------------------------------------------------ reporting

    def _snapshot(self, pool: Pool) -> ExecutorStats:
        return ExecutorStats(
            workers=self.workers,
            in_flight=len(self._pending),
            completed=self._completed,
            crashed_workers=pool.crashed,
            replaced_workers=pool.replaced,
            detail=f"recycled={pool.recycled}",
        )

    def statistics(self) -> ExecutorStats:
        pool = self._pool
        return self._snapshot(pool) if pool is not None else self._stats

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(drain=False)
        super().close()


def limits_from(max_tasks_per_child: int | None = None, max_memory_mb: float | None = None) -> WorkerLimits:
    """WorkerLimits from the user-facing options, validated."""
    ok = max_tasks_per_child is None or max_tasks_per_child >= 1
    check(ok, "max_tasks_per_child", max_tasks_per_child, "must be >= 1")
    check(max_memory_mb is None or max_memory_mb > 0, "max_memory_mb", max_memory_mb, "must be > 0")
    rss = int(max_memory_mb * _MIB) if max_memory_mb else None
    return WorkerLimits(max_tasks=max_tasks_per_child, max_rss=rss)
