"""PartitionedExecutor: static partitions, one worker process each (datatrove's ``refs[i::n]``).

Worker ``i`` gets partition ``i`` only, streamed in self-sized chunks so results still arrive as
they are done. The default ``partition="stride"`` is ``refs[i::n]`` without the list: the k-th ref
pulled goes to partition ``k % n``, and a ref pulled for another partition waits in that
partition's buffer; pulled-but-unfinished refs stay within ``max_in_flight``, so a worker that runs
ahead waits for the slowest (which the run waits for anyway). ``partition="size"`` balances the
total bytes per worker instead of the count, and for that materialises the refs first (about
200 bytes a ref in the parent; nothing starts before the source is listed). Predictable and
reproducible (the same worker always gets the same documents), it pays for that when documents are
uneven: the run lasts as long as the slowest partition. A crashed document's partition is finished
by the worker's replacement.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from docmill.document import DocumentRef
from docmill.executors.pool.parent import WorkerHandle
from docmill.executors.work_queue import QueueExecutor


class PartitionedExecutor(QueueExecutor):
    """``workers`` processes, each with a fixed share of the refs (``partition``: "stride" | "size")."""

    name = "batches"

    @dataclass(frozen=True, kw_only=True)
    class Options(QueueExecutor.Options):
        """The pool's options and ``partition``: "stride" (``refs[i::n]``) or "size" (bytes)."""

        partition: Literal["stride", "size"] = "stride"

    options: PartitionedExecutor.Options

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self.partition = self.options.partition

    def prepare(self, refs: Iterable[DocumentRef]) -> None:
        self._buffers = [collections.deque[DocumentRef]() for _ in range(self.workers)]
        self._buffered, self._pulled, self._exhausted = 0, 0, False
        if self.partition == "size":
            for i, part in enumerate(partition_by_size(list(refs), self.workers)):
                self._buffers[i].extend(part)
                self._buffered += len(part)
            self._refs: Iterator[DocumentRef] = iter(())
            self._exhausted = True
        else:
            self._refs = iter(refs)

    def next_items(self, worker: WorkerHandle, count: int) -> list[DocumentRef]:
        mine = self._buffers[worker.index]
        taken = [mine.popleft() for _ in range(min(count, len(mine)))]
        self._buffered -= len(taken)
        while len(taken) < count and self._room(len(taken)) and (ref := self._pull()) is not None:
            k, self._pulled = self._pulled % self.workers, self._pulled + 1
            if k == worker.index:
                taken.append(ref)
            else:
                self._buffers[k].append(ref)
                self._buffered += 1
        return taken

    def _room(self, taking: int) -> bool:
        """Whether one more ref may be pulled: pulled-but-unfinished refs stay within max_in_flight."""
        return not self._exhausted and len(self._pending) + self._buffered + taking < self.max_in_flight

    def _pull(self) -> DocumentRef | None:
        ref = next(self._refs, None)
        self._exhausted = self._exhausted or ref is None
        return ref

    def source_dry(self) -> bool:
        return self._exhausted and self._buffered == 0

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
