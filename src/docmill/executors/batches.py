"""PartitionedExecutor: static partitions, one worker process each (datatrove's ``refs[i::n]``).

The refs are materialised first — this strategy gives up laziness: the whole ref list lives in the
parent (about 200 bytes a ref; ``benchmarks/bench_strategies.py`` measures it) and no document
starts before the source is fully listed. Worker ``i`` gets partition ``i`` only, streamed in
self-sized chunks so results still arrive as they are done. ``partition="size"`` balances the total
bytes per worker instead of the count. Predictable and reproducible (the same worker always gets the
same documents), it pays for that when documents are uneven: the run lasts as long as the slowest
partition. A crashed document's partition is finished by the worker's replacement.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.executors._pool import WorkerHandle
from docmill.executors.work_queue import QueueExecutor


class PartitionedExecutor(QueueExecutor):
    """``workers`` processes, each with a fixed share of the refs (``partition``: "stride" | "size")."""

    name = "batches"

    def __init__(self, workers: int | None = None, *, partition: str = "stride", **options: Any) -> None:
        if partition not in ("stride", "size"):
            raise ConfigError(f"partition must be 'stride' or 'size', got {partition!r}")
        super().__init__(workers, **options)
        self.partition = partition
        self._parts: list[Iterator[DocumentRef]] = []

    def prepare(self, refs: Iterable[DocumentRef]) -> None:
        everything = list(refs)
        if self.partition == "size":
            parts = partition_by_size(everything, self.workers)
        else:
            parts = [everything[i :: self.workers] for i in range(self.workers)]
        self._parts = [iter(part) for part in parts]
        self._left = {i for i, part in enumerate(parts) if part}

    def next_items(self, worker: WorkerHandle, count: int) -> list[DocumentRef]:
        part = self._parts[worker.index]
        refs = [ref for _, ref in zip(range(count), part, strict=False)]
        if len(refs) < count:
            self._left.discard(worker.index)
        return refs

    def source_dry(self) -> bool:
        return not self._left

    def describe(self) -> str:
        return f"batches(workers={self.workers}, partition={self.partition})"


def partition_by_size(refs: list[DocumentRef], n: int) -> list[list[DocumentRef]]:
    """``n`` partitions of about equal total size (largest first, each to the lightest partition)."""
    parts: list[list[DocumentRef]] = [[] for _ in range(n)]
    heap = [(0, i) for i in range(n)]
    for ref in sorted(refs, key=lambda r: r.size or 0, reverse=True):
        total, i = heapq.heappop(heap)
        parts[i].append(ref)
        heapq.heappush(heap, (total + (ref.size or 0), i))
    return parts
