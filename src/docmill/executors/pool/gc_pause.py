"""Fewer garbage collections while thousands of documents are in flight at once.

Each document in flight on an event loop keeps a task, a coroutine chain, futures and timer handles
alive for its whole wait; with the default threshold (700 allocations) the young generation is
collected every few dozen documents and the survivors are scanned again in the older ones. At 2,048
in flight that was ~15 µs of the ~45 µs of CPU a document cost the loop; a young threshold of 20,000
removes most of it (``benchmarks/bench_strategies.py latency``). Cycles are still collected, later.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG = 20_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young-generation threshold to ``YOUNG`` for the block; restore it after."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], YOUNG), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
