"""Tail-aware timeouts: abandon a call that takes longer than ``multiplier`` × the observed p99.

A fixed timeout has to allow for the slowest healthy call, so every hung call waits all of it: 2 %
hangs behind a 60 s timeout add minutes to a run. As in "The Tail at Scale" (Dean & Barroso) and
gRPC deadlines, the limit follows what the provider is doing now: ``multiplier`` × the p99 of the
last ``samples`` replies, never under ``floor`` (a few fast replies say little) and never over
``ceiling`` (the configured ``timeout``, also used until ``min_samples`` replies are in). An
abandoned call is retried by the caller's retry policy.

When the provider slows down for everyone, abandoned calls bring no new samples; so each call
abandoned with no reply since doubles the limit (up to the ceiling) until replies come back.
Time is injected (``clock``): the tests drive it with ``FakeClock``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from docmill.clock import SYSTEM_CLOCK, Clock


@dataclass(slots=True)
class LatencyTracker:
    """The recent latencies of one client, and the timeout they imply."""

    ceiling: float
    floor: float = 5.0
    multiplier: float = 3.0
    samples: int = 200
    min_samples: int = 10
    clock: Clock = SYSTEM_CLOCK
    _recent: deque[float] = field(init=False, repr=False)
    _misses: int = field(default=0, init=False)
    _limit: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.samples)
        self._limit = self.ceiling

    def timeout(self) -> float:
        """Seconds a call may take now."""
        return self._limit

    def remaining(self, started: float) -> float:
        """Seconds left to a call that started at ``started`` (``clock.monotonic()``); may be < 0."""
        return started + self._limit - self.clock.monotonic()

    def observe(self, latency: float) -> bool:
        """A reply came back after ``latency`` seconds; returns whether the timeout changed."""
        self._recent.append(max(0.0, latency))
        self._misses = 0
        return self._update()

    def abandoned(self) -> bool:
        """A call ran out of time; returns whether the timeout changed."""
        self._misses += 1
        return self._update()

    def p99(self) -> float | None:
        """The 99th percentile of the recent latencies (None below ``min_samples``)."""
        return self.percentile(0.99)

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q <= 1) of the recent latencies (None below ``min_samples``)."""
        if len(self._recent) < self.min_samples:
            return None
        ordered = sorted(self._recent)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def _update(self) -> bool:
        p99 = self.p99()
        base = self.ceiling if p99 is None else max(self.floor, p99 * self.multiplier)
        limit = min(self.ceiling, base * 2.0**self._misses)
        changed = limit != self._limit
        self._limit = limit
        return changed
