"""``Gate``: an asyncio counting semaphore whose release costs the same with 10 or 10,000 waiters.

``asyncio.Semaphore`` in Python 3.11 scans its waiters on every release, and a woken waiter stays
in that list until it runs; when a loop pass ends hundreds of documents at once, each release
walks past all the ones woken before it. At 2,048 documents in flight that scan was 30 % of the
event loop's time (``benchmarks/bench_strategies.py latency``). Here a release hands its slot
straight to the first live waiter, popped from the deque, so the slot is never free-for-all.
"""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType


class Gate:
    """At most ``size`` holders at once; waiters are served first come, first served."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size  # slots nobody holds or has been handed
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        """Take a slot, waiting for one if none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        slot = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self.release()  # handed a slot, then cancelled before using it: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the first live waiter, else to the free count."""
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():  # a cancelled waiter is done: skip it
                slot.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    @property
    def waiting(self) -> int:
        """Waiters not yet served (cancelled ones included until a release skips them)."""
        return len(self._waiters)
