"""QueueExecutor: worker processes pull chunks of work; the chunk size adapts to measured time.

A worker is sent its next chunk as soon as it reports one, so fast workers take more (a dynamic
work queue). A per-worker pipe stands in for one shared queue so that the parent always knows which
documents each worker holds — needed to attribute a crash to one document. Chunk size follows
joblib's AutoBatchingMixin: start at 1 and scale so that a chunk's round trip takes about
``TARGET_SECONDS``; tiny documents then travel by the thousand and slow ones one at a time.
"""

from __future__ import annotations

from typing import Any

from docmill.executors._pool import WorkerHandle
from docmill.executors._pooled import PooledExecutor

# A chunk's round trip (it waits behind one other chunk, so ~half of it is compute). Per-message
# overhead is ~0.1–0.2 ms, so 25 ms of compute per chunk keeps it under 1 %; larger chunks cost at
# the end of a run, when one worker still holds two chunks while the others have nothing left
# (0.2 s here lost up to a third of a 5 ms × 600 run: benchmarks/bench_strategies.py, "cpu" and
# "auto"; thousands of tiny documents per chunk still travel together: "tiny").
TARGET_SECONDS = 0.05


class QueueExecutor(PooledExecutor):
    """``workers`` processes (default: usable cores) with self-sizing chunks."""

    name = "queue"

    def __init__(self, workers: int | None = None, **options: Any) -> None:
        super().__init__(workers, **options)
        self._size = 1.0

    def chunk_size(self, worker: WorkerHandle) -> int:
        cap = max(1, self.max_in_flight // (self.depth * self.workers))
        return max(1, min(cap, int(self._size)))

    def observe(self, worker: int, docs: int, seconds: float) -> None:
        if docs == 0:
            return
        per_doc = max(seconds, 1e-6) / docs
        ideal = TARGET_SECONDS / per_doc
        # move at most 4x up or 2x down per observation, so one odd chunk cannot swing it far
        self._size = min(self._size * 4, max(self._size / 2, ideal, 1.0))

    def describe(self) -> str:
        return f"queue(workers={self.workers}, chunk≈{int(self._size)})"
