"""Token buckets: one pure state machine, a thread-safe in-memory form, and sync/async drivers.

The bucket *reserves*: ``acquire`` spends the units at once, possibly into debt, and the caller
sleeps until the debt it created is paid off by the refill. Each acquisition takes the lock once,
waiters are served in order, and nothing polls. Over any window of ``W`` seconds the bucket admits
at most ``capacity + rate * W`` units (the usual GCRA bound).

``TokenBucket.within(limit, per, margin=m)`` builds the bucket a provider's "``limit`` per ``per``
seconds" needs: its burst plus its refill over ``per + m`` seconds stays one unit *below* ``limit``.
Providers count requests when they *arrive*; between our admission and their arrival lie thread
wake-ups, connection handling and the network. If that delay varies by up to ``m`` seconds, the
arrivals in any ``per``-second window were admitted within ``per + m`` seconds, so they still fit.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self, TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError
from docmill.limits.base import LimiterStats

T = TypeVar("T")


@dataclass(slots=True)
class BucketState:
    """The whole mutable state of a bucket: small enough to live in 8 doubles of shared memory."""

    level: float
    stamp: float  # monotonic time of the last refill
    paused_until: float = 0.0
    acquired: float = 0.0
    refunded: float = 0.0
    waits: float = 0.0
    waited: float = 0.0
    pauses: float = 0.0

    def refill(self, now: float, rate: float, capacity: float) -> None:
        if now > self.stamp:
            self.level = min(capacity, self.level + (now - self.stamp) * rate)
            self.stamp = now

    def reserve(self, cost: float, now: float, rate: float) -> float:
        """Spend ``cost`` now; return the seconds the caller must wait before using it."""
        self.level -= cost
        self.acquired += cost
        wait = max(-self.level / rate if self.level < 0 else 0.0, self.paused_until - now)
        if wait > 0:
            self.waits += 1
            self.waited += wait
        return wait

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)
        self.pauses += 1

    def snapshot(self, now: float, rate: float, capacity: float) -> LimiterStats:
        return LimiterStats(
            rate=rate,
            capacity=capacity,
            level=self.level,
            acquired=self.acquired,
            refunded=self.refunded,
            waits=int(self.waits),
            waited=self.waited,
            pauses=int(self.pauses),
            paused_for=max(0.0, self.paused_until - now),
        )


Operation = Callable[[BucketState, float], T]


def within_burst(limit: float, margin: float) -> float:
    """The burst of ``within(limit, ...)``; ConfigError for a limit or margin it cannot keep."""
    if limit < 2:
        raise ConfigError(f"a provider limit must be at least 2 per window, got {limit}")
    if margin < 0:
        raise ConfigError(f"the rate margin must be >= 0 seconds, got {margin}")
    return max(1.0, math.floor(limit / 100))


class BucketLimiter(abc.ABC):
    """A RateLimiter over a BucketState; subclasses say only where the state lives.

    To implement one, subclass and write ``_apply(op)``: run ``op(state, now)`` atomically with
    respect to every other holder of the same bucket, and return its result.
    """

    def __init__(
        self, rate: float, per: float = 60.0, *, burst: float | None = None, clock: Clock = SYSTEM_CLOCK
    ):
        if rate <= 0 or per <= 0:
            raise ConfigError(f"a rate limit needs rate > 0 and per > 0, got {rate} per {per}")
        self.rate = rate / per  # units per second
        self.capacity = float(burst) if burst is not None else float(rate)
        if self.capacity <= 0:
            raise ConfigError(f"burst must be > 0, got {burst}")
        self.clock = clock

    @classmethod
    def within(
        cls, limit: float, per: float = 60.0, *, margin: float = 0.0, clock: Clock = SYSTEM_CLOCK
    ) -> Self:
        """A bucket that never admits more than ``limit - 1`` units in any ``per + margin`` seconds.

        The burst is 1 % of the limit (at least 1): large enough to start promptly, small enough
        that the steady rate stays within 1-2 % of the ceiling. ``margin`` (seconds) absorbs that
        much variation in the delay between admission and the provider seeing the call.
        """
        burst = within_burst(limit, margin)
        return cls(limit - 1 - burst, per + margin, burst=burst, clock=clock)

    @abc.abstractmethod
    def _apply(self, op: Operation[T]) -> T:
        """Run ``op(state, now)`` atomically (after refilling) and return its result."""

    def _refilled(self, op: Operation[T]) -> Operation[T]:
        def run(state: BucketState, now: float) -> T:
            state.refill(now, self.rate, self.capacity)
            return op(state, now)

        return run

    def _reserve(self, cost: float) -> float:
        return self._apply(self._refilled(lambda s, now: s.reserve(cost, now, self.rate)))

    def _pause_left(self) -> float:
        return self._apply(lambda s, now: s.paused_until - now)

    def acquire(self, cost: float = 1.0) -> None:
        wait = self._reserve(cost)
        while wait > 0:  # a pause may have begun while we slept
            self.clock.sleep(wait)
            wait = self._pause_left()

    async def aacquire(self, cost: float = 1.0) -> None:
        wait = self._reserve(cost)
        while wait > 0:
            await self.clock.asleep(wait)
            wait = self._pause_left()

    def refund(self, cost: float) -> None:
        def op(state: BucketState, now: float) -> None:
            state.level = min(self.capacity, state.level + cost)
            state.refunded += cost

        self._apply(self._refilled(op))

    def pause_for(self, seconds: float) -> None:
        self._apply(lambda s, now: s.pause(now + max(0.0, seconds)))

    def resync(self, remaining: float) -> None:
        def op(state: BucketState, now: float) -> None:
            state.level = min(state.level, remaining)

        self._apply(self._refilled(op))

    def statistics(self) -> LimiterStats:
        return self._apply(self._refilled(lambda s, now: s.snapshot(now, self.rate, self.capacity)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate:g}/s, capacity={self.capacity:g})"


class TokenBucket(BucketLimiter):
    """A bucket shared by the threads and event loops of one process (a lock guards the state)."""

    def __init__(
        self, rate: float, per: float = 60.0, *, burst: float | None = None, clock: Clock = SYSTEM_CLOCK
    ):
        super().__init__(rate, per, burst=burst, clock=clock)
        self._lock = threading.Lock()
        self._state = BucketState(level=self.capacity, stamp=clock.monotonic())

    def _apply(self, op: Operation[T]) -> T:
        with self._lock:
            return op(self._state, self.clock.monotonic())

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_lock"]  # a copy in another process is a separate budget: use SharedTokenBucket
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
