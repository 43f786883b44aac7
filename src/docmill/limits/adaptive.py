"""AIMD concurrency: how many requests to keep in flight, learned from the provider's answers.

The decision core, :class:`AIMD`, is a pure function of what happened (latency, throttled or
not) and the clock: it grows the limit by one per window of successes and cuts it by ``backoff``
on a 429 or when latency rises well above the best seen (the provider is queueing us). Cuts are
at most one per ``cooldown`` seconds, because a burst of 429s answers one decision, not many.

:class:`ConcurrencyGate` enforces the limit for threads (``hold()``) and coroutines (``ahold()``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError


@dataclass(slots=True)
class AIMD:
    """Additive increase, multiplicative decrease of a concurrency limit."""

    limit: float = 8.0
    minimum: int = 1
    maximum: int = 256
    backoff: float = 0.5  # factor applied on a 429
    latency_backoff: float = 0.9  # gentler factor applied when latency rises
    latency_tolerance: float = 2.0  # "rising" = smoothed latency above this multiple of the best
    cooldown: float = 1.0  # seconds between two cuts
    drift: float = 0.001  # per result, how fast the latency floor forgets
    _best: float = float("inf")
    _smoothed: float = 0.0
    _last_cut: float = float("-inf")

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.limit <= self.maximum:
            raise ConfigError(
                f"need 1 <= minimum <= limit <= maximum, got {self.minimum}, {self.limit}, {self.maximum}"
            )
        if not 0 < self.backoff < 1 or not 0 < self.latency_backoff <= 1:
            raise ConfigError("backoff factors must be within (0, 1)")

    @property
    def current(self) -> int:
        return int(self.limit)

    def on_result(self, latency: float, *, throttled: bool, now: float) -> int:
        """Update from one finished request; return the new limit."""
        if throttled:
            return self._cut(self.backoff, now)
        self._smoothed = latency if self._smoothed == 0 else 0.8 * self._smoothed + 0.2 * latency
        # The floor is the best *smoothed* latency (one lucky sample is no baseline); it drifts up
        # slowly so that a provider that became slower for everyone stops looking like queueing.
        self._best = min(self._best * (1 + self.drift), self._smoothed)
        if self._smoothed > self._best * self.latency_tolerance:
            return self._cut(self.latency_backoff, now)
        self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
        return self.current

    def _cut(self, factor: float, now: float) -> int:
        if now - self._last_cut >= self.cooldown:
            self.limit = max(float(self.minimum), self.limit * factor)
            self._last_cut = now
            self._smoothed = 0.0  # judge the new level by its own latencies
        return self.current


class ConcurrencyGate:
    """Admits at most ``controller.current`` holders at a time; the limit moves as results arrive."""

    def __init__(self, controller: AIMD | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.controller = controller or AIMD()
        self.clock = clock
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    def _enter(self) -> bool:
        with self._cond:
            if self.in_flight >= self.controller.current:
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def _leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    @contextlib.contextmanager
    def hold(self) -> Iterator[int]:
        """Block until a slot is free; yield the limit in force."""
        with self._cond:
            self._cond.wait_for(lambda: self.in_flight < self.controller.current)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield self.controller.current
        finally:
            self._leave()

    @contextlib.asynccontextmanager
    async def ahold(self) -> AsyncIterator[int]:
        """Await a free slot (polling lightly: the gate is shared with threads); yield the limit."""
        delay = 0.005
        while not self._enter():
            await self.clock.asleep(delay)
            delay = min(0.1, delay * 2)
        try:
            yield self.controller.current
        finally:
            self._leave()

    def record(self, latency: float, *, throttled: bool) -> int:
        """Feed one result to the controller and wake waiters if the limit grew."""
        with self._cond:
            limit = self.controller.on_result(latency, throttled=throttled, now=self.clock.monotonic())
            self._cond.notify_all()
            return limit

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.update(_cond=None, in_flight=0, peak=0)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._cond = threading.Condition()
