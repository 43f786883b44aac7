"""The RateLimiter protocol, its frozen statistics, and the null limiter.

A limiter guards one budget (requests, or tokens) of an upstream API. Semantics every
implementation keeps (``tests/contract/test_limiter_contract.py`` checks them):

* ``acquire(cost)`` blocks until ``cost`` units may be spent, then spends them. Over any window of
  ``per`` seconds a limiter admits at most ``capacity + rate * per`` units. A cost larger than the
  capacity is admitted once the debt it leaves is paid off (it never waits forever).
* ``aacquire(cost)``: the same, awaiting instead of blocking.
* ``refund(cost)`` gives back units that were acquired but not used (an estimate that proved too
  high); a negative cost charges more (the estimate was too low). Never waits.
* ``pause_for(seconds)``: nobody is admitted for ``seconds`` from now (a provider's Retry-After).
  Every caller sharing the limiter waits, including those already between acquire and send.
* ``resync(remaining)``: the provider says only ``remaining`` units are left right now; the level
  drops to that if it was higher (it is never raised: other clients may share the budget).
* ``statistics()`` returns a frozen :class:`LimiterStats` snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """A snapshot of one limiter: its configuration and what it has done so far."""

    rate: float  # units refilled per second
    capacity: float  # the most that can be spent at once (burst)
    level: float  # units available now; negative = debt being paid off by waiters
    acquired: float = 0.0  # units granted in all
    refunded: float = 0.0  # net units given back (negative: charged extra)
    waits: int = 0  # acquisitions that had to wait
    waited: float = 0.0  # seconds of waiting assigned in all
    pauses: int = 0  # pause_for calls
    paused_for: float = 0.0  # seconds still paused at snapshot time


@runtime_checkable
class RateLimiter(Protocol):
    """One budget shared by every caller that holds the limiter (see the module docstring)."""

    def acquire(self, cost: float = 1.0) -> None: ...
    async def aacquire(self, cost: float = 1.0) -> None: ...
    def refund(self, cost: float) -> None: ...
    def pause_for(self, seconds: float) -> None: ...
    def resync(self, remaining: float) -> None: ...
    def statistics(self) -> LimiterStats: ...


class NullLimiter:
    """Admits everything at once: no upstream limit."""

    def acquire(self, cost: float = 1.0) -> None:
        return None

    async def aacquire(self, cost: float = 1.0) -> None:
        return None

    def refund(self, cost: float) -> None:
        return None

    def pause_for(self, seconds: float) -> None:
        return None

    def resync(self, remaining: float) -> None:
        return None

    def statistics(self) -> LimiterStats:
        return LimiterStats(rate=float("inf"), capacity=float("inf"), level=float("inf"))

    def __repr__(self) -> str:
        return "NullLimiter()"
