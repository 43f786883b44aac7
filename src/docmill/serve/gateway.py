"""One thread owns the journal connection; the async handlers reach it through ``Gateway.call``.

SQLite and psycopg connections belong to the thread that opened them, and a dashboard's queries are
small, so a single dedicated thread is both the simplest and the safest way to share one journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.journal.base import Journal
from docmill.serve.cache import Throttle

T = TypeVar("T")


class Gateway:
    """Runs journal calls on one thread, opening the journal there on first use."""

    def __init__(self, opener: Callable[[], Journal], *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._opener = opener
        self._journal: Journal | None = None  # touched only from the pool's single thread
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-journal")
        self._throttle = Throttle(clock=clock)  # likewise

    async def call(self, fn: Callable[[Journal], T]) -> T:
        """``fn(journal)`` on the journal's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._apply, fn)

    async def cached(self, key: Hashable, fn: Callable[[Journal], T]) -> T:
        """``fn(journal)`` for an expensive aggregate: reused while the journal is unchanged, and
        recomputed no more often than ``Throttle`` allows while it changes."""
        return await self.call(lambda journal: self._throttle.get(key, version(journal), lambda: fn(journal)))

    def call_sync(self, fn: Callable[[Journal], T]) -> T:
        """``fn(journal)`` on the journal's thread, from synchronous code."""
        return self._pool.submit(self._apply, fn).result()

    def _apply(self, fn: Callable[[Journal], T]) -> T:
        if self._journal is None:
            self._journal = self._opener()
        return fn(self._journal)

    def close(self) -> None:
        """Close the journal (on its own thread) and stop the thread."""
        if self._journal is not None:
            self._pool.submit(self._journal.close).result()
            self._journal = None
        self._pool.shutdown(wait=True)


def version(journal: Journal) -> Hashable:
    """Changes whenever a run starts, heartbeats or ends, i.e. whenever documents may have been recorded."""
    return tuple((r.id, r.state, r.heartbeat, r.finished) for r in journal.runs())
