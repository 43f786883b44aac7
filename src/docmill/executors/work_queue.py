"""QueueExecutor: worker processes pull chunks of work; the chunk size adapts to measured time.

A worker is sent its next chunk as soon as it reports one, so fast workers take more (a dynamic
work queue). A per-worker pipe stands in for one shared queue so that the parent always knows which
documents each worker holds — needed to attribute a crash to one document. Chunk size follows
joblib's AutoBatchingMixin, but on the workers' CPU time: start at 1 and scale so that a chunk
costs its worker about ``TARGET_SECONDS`` of CPU; tiny documents then travel by the thousand and
slow ones one at a time. Wall time would mislead on a busy machine: there a 5 ms document takes
25 ms of wall time, chunks shrank to one document, and the parent woke once per document (~280 µs
of its CPU each, taken from the workers). Sized on CPU, the parent's share stays a fixed fraction
of the work (its cost per wake-up over ``TARGET_SECONDS``) whatever the load. Documents that mostly
wait (little CPU) are still bounded by wall time: a chunk holds at most ``WALL_SLACK`` targets of it.
"""

from __future__ import annotations

from typing import Any

from docmill.executors.pool.dispatch import PooledExecutor
from docmill.executors.pool.parent import WorkerHandle

# A chunk's CPU time in its worker. The parent spends ~0.1–0.3 ms of CPU per chunk (a wake-up,
# unpickling, the next send), so 50 ms keeps it under 1 % of the work; larger chunks cost at the end
# of a run, when one worker still holds two chunks while the others have nothing left
# (benchmarks/bench_strategies.py, "cpu", "parent" and "auto"; thousands of tiny documents per
# chunk still travel together: "tiny").
TARGET_SECONDS = 0.05
# A chunk's wall time (send to report) may reach this many targets before it bounds the size: it is
# ~2x the compute when idle (a chunk waits behind one other) and 5x or more on a busy machine.
WALL_SLACK = 10.0


class QueueExecutor(PooledExecutor):
    """``workers`` processes (default: usable cores) with self-sizing chunks."""

    name = "queue"

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self._size = 1.0

    def chunk_size(self, worker: WorkerHandle) -> int:
        cap = max(1, self.max_in_flight // (self.depth * self.workers))
        return max(1, min(cap, int(self._size)))

    def observe(self, worker: int, docs: int, seconds: float, cpu: float | None = None) -> None:
        if docs == 0:
            return
        busy = seconds if cpu is None else max(cpu, seconds / WALL_SLACK)
        ideal = TARGET_SECONDS * docs / max(busy, 1e-6)
        # move at most 4x up or 2x down per observation, so one odd chunk cannot swing it far
        self._size = min(self._size * 4, max(self._size / 2, ideal, 1.0))

    def describe(self) -> str:
        return f"queue(workers={self.workers}, chunk≈{int(self._size)})"
