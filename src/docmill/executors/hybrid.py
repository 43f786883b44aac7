"""HybridExecutor: N worker processes, each running many documents at once (threads or asyncio).

For pipelines that mix CPU work with waiting, or that wait so much one process cannot keep up
with the bookkeeping. ``max_processes`` processes (default: usable cores) × ``max_threads_per_process``
documents each (default 8 with threads, 64 with asyncio). ``inner="auto"`` picks asyncio for a
pipeline with async steps, threads otherwise. Chunks stream into a worker while earlier ones run.
When a worker dies with several documents running, the culprit is unknown: each of those documents
is re-run alone ("solo") and only the one that kills a worker again ends CRASHED.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, cast

from docmill.executors.base import Executor
from docmill.executors.pool.parent import WorkerHandle
from docmill.executors.pool.worker import WorkerLimits
from docmill.executors.sizing import MAX_AWAITING, cap_count
from docmill.executors.work_queue import QueueExecutor
from docmill.job import Job
from docmill.settings import check


class HybridExecutor(QueueExecutor):
    """Processes × (threads | asyncio)."""

    name = "hybrid"
    nested = True
    overlaps_io = True
    io_slots = "in_flight"

    @dataclass(frozen=True, kw_only=True)
    class Options(QueueExecutor.Options):
        """The pool's options, its shape (``parallelization:``) and ``inner``: how a worker runs
        its documents ("threads", "asyncio", or "auto": asyncio for async pipelines)."""

        max_processes: int | None = None
        max_threads_per_process: int | None = None
        inner: Literal["auto", "threads", "asyncio"] = "auto"

        def __post_init__(self) -> None:
            QueueExecutor.Options.__post_init__(self)
            for key in ("max_processes", "max_threads_per_process"):
                value = getattr(self, key)
                check(value is None or value >= 1, key, value, "must be >= 1")

    options: HybridExecutor.Options

    def __init__(
        self, workers: int | None = None, *, options: Executor.Options | None = None, **settings: Any
    ) -> None:
        options = cast(HybridExecutor.Options, self.resolve_options(options, settings))
        super().__init__(options.max_processes or workers, options=options)
        self.inner = options.inner
        width = options.max_threads_per_process
        self.width = None if width is None else cap_count(width, MAX_AWAITING, "max_threads_per_process")
        self._width = 1  # the width of the current run's workers

    def worker_limits(self, job: Job) -> WorkerLimits:
        inner = self.inner
        if inner == "auto":
            inner = "asyncio" if job.pipeline.is_async else "threads"
        width = self.width or (64 if inner == "asyncio" else 8)
        self._width = width
        self._deepen()
        return dataclasses.replace(self.limits, width=width, inner=inner)

    def chunk_size(self, worker: WorkerHandle) -> int:
        # At least a quarter of the width per chunk, and enough chunks per worker (``depth``) that
        # it holds its width plus two chunks: each chunk goes back when its slowest document ends
        # while the other lanes already run the next ones (whole-width chunks, two per worker,
        # left lanes idle waiting for a chunk's last document: 91 % → 94 % of the ideal at 2,048
        # in flight, benchmarks/bench_strategies.py latency).
        return self._at_least_a_quarter(super().chunk_size(worker))

    def observe(self, worker: int, docs: int, seconds: float, cpu: float | None = None) -> None:
        super().observe(worker, docs, seconds, cpu)
        self._deepen()

    def _deepen(self) -> None:
        self.depth = 2 + -(-self._width // self._at_least_a_quarter(int(self._size)))

    def _at_least_a_quarter(self, size: int) -> int:
        return max(-(-self._width // 4), size)

    def describe(self) -> str:
        return f"hybrid(processes={self.workers}, per_process={self.width or 'auto'}, inner={self.inner})"
