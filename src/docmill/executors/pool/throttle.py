"""``CpuThrottle``: how many thread lanes of a hybrid worker may run at once.

Threads help a process only while its documents wait; once the lanes keep a core busy, each extra
thread joins the queue for the GIL, and that queue costs: eight CPU-bound threads per process
spend 9 % more CPU per document than one (``benchmarks/bench_strategies.py cpu``). Nothing outside
the interpreter tells a thread waiting for the GIL from one waiting for a socket, so the throttle
experiments, like a congestion window: each window (``WINDOW`` seconds and at least one document
per lane) it reads the process's CPU use and throughput; when the process looks busy
(``BUSY`` CPU seconds per wall second) it tries half the lanes, when it looks idle it tries more,
and it keeps a change only if throughput held (a cut) or rose (a rise); otherwise it reverts and
leaves the limit alone for ``HOLD`` seconds. The clocks are injected, so the arithmetic is tested
without threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BUSY = 0.7  # CPU seconds per wall second above which fewer lanes might do as well
IDLE = 0.5  # ... below which more lanes might do better
KEEP = 0.92  # a cut is kept if throughput stays above this fraction of what it was
GAIN = 1.08  # a rise is kept if throughput grows by at least this factor
WINDOW = 0.1  # seconds, at least, between two decisions
HOLD = 2.0  # seconds without experiments after one was reverted


class CpuThrottle:
    """The lane limit of one worker process, from its CPU use and its throughput."""

    def __init__(
        self,
        width: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = self.limit = width
        self.clock, self.cpu = clock, cpu
        self._since, self._cpu_since, self._docs = clock(), cpu(), 0
        self._trial: tuple[int, float] | None = None  # (limit before the change, its throughput)
        self._hold_until = 0.0

    def tick(self) -> bool:
        """Call after each document; True when the limit just grew (open more lanes)."""
        self._docs += 1
        now = self.clock()
        elapsed = now - self._since
        if elapsed < WINDOW or self._docs < self.limit:
            return False
        cpu = self.cpu()
        used, rate = (cpu - self._cpu_since) / elapsed, self._docs / elapsed
        self._since, self._cpu_since, self._docs = now, cpu, 0
        before = self.limit
        self.limit = self._judge(rate, now) if self._trial else self._propose(used, rate, now)
        return self.limit > before

    def _judge(self, rate: float, now: float) -> int:
        """Keep the last change if it paid, else undo it and hold."""
        assert self._trial is not None
        previous, was = self._trial
        self._trial = None
        paid = rate >= KEEP * was if self.limit < previous else rate >= GAIN * was
        if paid:
            return self.limit
        self._hold_until = now + HOLD
        return previous

    def _propose(self, used: float, rate: float, now: float) -> int:
        if now < self._hold_until:
            return self.limit
        if used >= BUSY and self.limit > 1:
            wanted = self.limit // 2
        elif used < IDLE and self.limit < self.width:
            wanted = min(self.width, max(self.limit + 1, round(self.limit * BUSY / max(used, 1e-3))))
        else:
            return self.limit
        self._trial = (self.limit, rate)
        return wanted
