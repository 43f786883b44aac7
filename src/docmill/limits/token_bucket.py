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

**Learned limits.** ``TokenBucket.unlimited(per, margin=m)`` knows no limit yet: it admits at once
(pauses still hold). ``learn(limit)`` sets the limit the provider announced (``x-ratelimit-limit-*``)
with the same arithmetic as ``within``; it is part of the bucket's state, so every holder of a
shared bucket (other processes, other hosts through Redis) paces by it from its next operation.
A configured bucket learns too, but its own rate and burst stay a ceiling: the effective ones are
the lower of the configured and the learned.

**Pauses.** ``pause_for(s)`` (a 429's Retry-After) stops the refill until the pause ends and
empties the bucket down to one unit: the first waiter goes when the pause ends and the others
follow one at a time at the rate, never all together. Waiters whose reservation predates the
pause (its ``pauses`` count moved) queue again behind it. Waits end early, with RunStoppedError,
when the run stops (``docmill.limits.interrupt``).
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ConfigError
from docmill.limits import interrupt
from docmill.limits.base import LimiterStats

T = TypeVar("T")
INF = math.inf


@dataclass(slots=True)
class BucketState:
    """The whole mutable state of a bucket: small enough to live in 10 doubles of shared memory.

    ``learned_rate`` and ``learned_capacity`` are 0 until the provider announced its limit.
    """

    level: float
    stamp: float  # monotonic time of the last refill; during a pause, the pause's end
    paused_until: float = 0.0
    acquired: float = 0.0
    refunded: float = 0.0
    waits: float = 0.0
    waited: float = 0.0
    pauses: float = 0.0  # also the epoch a waiter checks: a pause since its reservation re-queues it
    learned_rate: float = 0.0
    learned_capacity: float = 0.0

    def effective(self, rate: float, capacity: float) -> tuple[float, float]:
        """The rate and capacity in force: the configured ones, lowered by what was learned."""
        if self.learned_rate > 0:
            rate = min(rate, self.learned_rate)
        if self.learned_capacity > 0:
            capacity = min(capacity, self.learned_capacity)
        return rate, capacity

    def refill(self, now: float, rate: float, capacity: float) -> None:
        if now > self.stamp:
            if math.isfinite(rate):  # an unlimited bucket keeps no level
                self.level = min(capacity, self.level + (now - self.stamp) * rate)
            self.stamp = now

    def reserve(self, cost: float, now: float, rate: float, *, again: bool = False) -> tuple[float, float]:
        """Spend ``cost`` now; return the seconds the caller must wait and the epoch it waits in.

        ``again``: the caller re-queues after a pause (its first reservation was forgiven), so the
        units are not counted as acquired twice.
        """
        wait = max(0.0, self.stamp - now)  # paused: nothing refills before the pause ends
        if math.isfinite(rate):
            self.level -= cost
            if self.level < 0:
                wait += -self.level / rate
        if not again:
            self.acquired += cost
        if wait > 0:
            self.waits += 1
            self.waited += wait
        return wait, self.pauses

    def recheck(self, cost: float, epoch: float, now: float, rate: float) -> tuple[float, float]:
        """A waiter woke: 0 if its reservation stands, else (a pause began since) queue it again."""
        if self.pauses == epoch:
            return 0.0, epoch
        return self.reserve(cost, now, rate, again=True)

    def pause(self, now: float, until: float, capacity: float) -> None:
        """Nobody goes before ``until``; then one unit, and the rest at the rate."""
        self.paused_until = max(self.paused_until, until)
        self.stamp = max(self.stamp, self.paused_until)
        self.level = min(capacity, 1.0)  # debts are forgiven: their waiters queue again
        self.pauses += 1

    def learn(self, rate: float, capacity: float, configured: tuple[float, float], now: float) -> None:
        """Adopt the provider's announced limit (as a rate and a burst)."""
        before, _ = self.effective(*configured)
        self.learned_rate, self.learned_capacity = rate, capacity
        after, cap = self.effective(*configured)
        if not math.isfinite(before) and math.isfinite(after):
            self.level = cap  # the first limit we know: start with its burst
            self.stamp = max(self.stamp, now)
        else:
            self.level = min(self.level, cap)

    def snapshot(self, now: float, rate: float, capacity: float) -> LimiterStats:
        return LimiterStats(
            rate=rate,
            capacity=capacity,
            level=self.level if math.isfinite(rate) else INF,
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


def learned_pace(limit: float, per: float, burst: float | None = None) -> tuple[float, float]:
    """(units per second, burst) keeping under an announced ``limit`` per ``per`` seconds.

    The arithmetic of ``within`` (burst 1 % of the limit unless given, refill one unit below it),
    extended to the tiny limits a provider may announce (1 or 2 per window) instead of refusing them.
    """
    burst = max(1.0, math.floor(limit / 100)) if burst is None else burst
    return max(limit - 1 - burst, 0.5) / per, burst


class BucketLimiter(abc.ABC):
    """A RateLimiter over a BucketState; subclasses say only where the state lives.

    To implement one, subclass and write ``_apply(op)``: run ``op(state, now)`` atomically with
    respect to every other holder of the same bucket, and return its result.
    """

    def __init__(
        self, rate: float, per: float = 60.0, *, burst: float | None = None, clock: Clock = SYSTEM_CLOCK
    ):
        if not rate > 0 or not per > 0:
            raise ConfigError(f"a rate limit needs rate > 0 and per > 0, got {rate} per {per}")
        self.per = per  # the period announced limits are paced over (the window plus the margin)
        self.rate = rate / per  # units per second; inf: no configured limit
        self.capacity = float(burst) if burst is not None else float(rate)
        if not self.capacity > 0:
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

    @classmethod
    def unlimited(
        cls, per: float = 60.0, *, margin: float = 0.0, clock: Clock = SYSTEM_CLOCK, **options: Any
    ) -> Self:
        """A bucket with no limit until it ``learn``s one (announced per ``per`` seconds).

        ``options`` go to the constructor (``path`` of a SharedTokenBucket, ``key`` of a Redis one).
        """
        if margin < 0:
            raise ConfigError(f"the rate margin must be >= 0 seconds, got {margin}")
        return cls(INF, per + margin, clock=clock, **options)

    @abc.abstractmethod
    def _apply(self, op: Operation[T]) -> T:
        """Run ``op(state, now)`` atomically (after refilling) and return its result."""

    def _refilled(self, op: Callable[[BucketState, float, float, float], T]) -> Operation[T]:
        """``op(state, now, rate, capacity)`` with the effective rate and capacity, after a refill."""

        def run(state: BucketState, now: float) -> T:
            rate, capacity = state.effective(self.rate, self.capacity)
            state.refill(now, rate, capacity)
            return op(state, now, rate, capacity)

        return run

    def _reserve(self, cost: float) -> tuple[float, float]:
        return self._apply(self._refilled(lambda s, now, rate, cap: s.reserve(cost, now, rate)))

    def _recheck(self, cost: float, epoch: float) -> tuple[float, float]:
        return self._apply(self._refilled(lambda s, now, rate, cap: s.recheck(cost, epoch, now, rate)))

    def acquire(self, cost: float = 1.0) -> None:
        self.take(cost)

    async def aacquire(self, cost: float = 1.0) -> None:
        await self.atake(cost)

    def take(self, cost: float = 1.0) -> float:
        """``acquire``, returning the epoch the units were granted in (for ``confirm``)."""
        wait, epoch = self._reserve(cost)
        return self._waited(cost, wait, epoch)

    async def atake(self, cost: float = 1.0) -> float:
        wait, epoch = self._reserve(cost)
        return await self._awaited(cost, wait, epoch)

    def confirm(self, cost: float, epoch: float) -> float:
        """The caller took ``cost`` in ``epoch``, then waited elsewhere (for a place on the wire).

        If a pause began meanwhile, that grant was forgiven with the others: wait out the pause
        and queue again, behind it, as the callers still waiting here do.
        """
        wait, epoch = self._recheck(cost, epoch)
        return self._waited(cost, wait, epoch)

    async def aconfirm(self, cost: float, epoch: float) -> float:
        wait, epoch = self._recheck(cost, epoch)
        return await self._awaited(cost, wait, epoch)

    def _waited(self, cost: float, wait: float, epoch: float) -> float:
        while wait > 0:  # a pause may have begun while we slept
            interrupt.sleep(self.clock, wait)
            wait, epoch = self._recheck(cost, epoch)
        return epoch

    async def _awaited(self, cost: float, wait: float, epoch: float) -> float:
        while wait > 0:
            await interrupt.asleep(self.clock, wait)
            wait, epoch = self._recheck(cost, epoch)
        return epoch

    def refund(self, cost: float) -> None:
        def op(state: BucketState, now: float, rate: float, capacity: float) -> None:
            if math.isfinite(rate):
                state.level = min(capacity, state.level + cost)
            state.refunded += cost

        self._apply(self._refilled(op))

    def pause_for(self, seconds: float) -> None:
        def op(state: BucketState, now: float, rate: float, capacity: float) -> None:
            state.pause(now, now + max(0.0, seconds), capacity)

        self._apply(self._refilled(op))

    def resync(self, remaining: float) -> None:
        def op(state: BucketState, now: float, rate: float, capacity: float) -> None:
            if math.isfinite(rate):
                state.level = min(state.level, remaining)

        self._apply(self._refilled(op))

    def learn(self, limit: float, *, burst: float | None = None) -> None:
        """Pace by ``limit`` units per ``per`` seconds, as the provider announced.

        ``burst``: 1 % of the limit unless given. A configured rate and burst stay a ceiling; a
        later, different ``limit`` replaces this one.
        """
        if not limit > 0 or not math.isfinite(limit):
            return
        rate, burst = learned_pace(limit, self.per, burst)

        def op(state: BucketState, now: float, effective: float, capacity: float) -> None:
            state.learn(rate, burst, (self.rate, self.capacity), now)

        self._apply(self._refilled(op))

    def known(self) -> bool:
        """Whether the bucket paces by a limit (configured, or learned by any holder)."""
        if math.isfinite(self.rate):
            return True
        return self._apply(lambda s, now: math.isfinite(s.effective(self.rate, self.capacity)[0]))

    def statistics(self) -> LimiterStats:
        return self._apply(self._refilled(lambda s, now, rate, cap: s.snapshot(now, rate, cap)))

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
