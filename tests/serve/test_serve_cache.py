"""Throttle: memoised aggregates that refresh when the journal changes, but not too often."""

from __future__ import annotations

from collections.abc import Callable

from docmill.serve.cache import Throttle
from docmill.testing import FakeClock


def _counting(clock: FakeClock, seconds: float) -> tuple[list[int], Callable[[], int]]:
    calls: list[int] = []

    def compute() -> int:
        clock.advance(seconds)  # the computation "takes" this long
        calls.append(1)
        return len(calls)

    return calls, compute


def test_unchanged_journal_is_never_recomputed() -> None:
    clock = FakeClock()
    throttle = Throttle(min_age=1.0, factor=4.0, clock=clock)
    calls, compute = _counting(clock, 0.5)
    assert throttle.get("k", "v1", compute) == 1
    clock.advance(3600)
    assert throttle.get("k", "v1", compute) == 1
    assert len(calls) == 1


def test_changing_journal_is_recomputed_at_most_every_factor_times_cost() -> None:
    clock = FakeClock()
    throttle = Throttle(min_age=1.0, factor=4.0, clock=clock)
    calls, compute = _counting(clock, 0.5)  # 0.5 s per computation → reused for 2 s
    throttle.get("k", 0, compute)
    clock.advance(1.9)
    assert throttle.get("k", 1, compute) == 1
    clock.advance(0.2)
    assert throttle.get("k", 2, compute) == 2


def test_cheap_computations_refresh_after_min_age() -> None:
    clock = FakeClock()
    throttle = Throttle(min_age=1.0, factor=4.0, clock=clock)
    calls, compute = _counting(clock, 0.001)
    throttle.get("k", 0, compute)
    clock.advance(0.5)
    throttle.get("k", 1, compute)
    clock.advance(0.6)
    throttle.get("k", 2, compute)
    assert len(calls) == 2


def test_keys_are_independent() -> None:
    clock = FakeClock()
    throttle = Throttle(clock=clock)
    assert throttle.get("a", 0, lambda: "A") == "A"
    assert throttle.get("b", 0, lambda: "B") == "B"


def test_least_recently_used_entries_are_dropped() -> None:
    clock = FakeClock()
    throttle = Throttle(max_entries=2, clock=clock)
    calls, compute = _counting(clock, 0.0)
    throttle.get("a", 0, compute)
    throttle.get("b", 0, compute)
    throttle.get("a", 0, compute)  # a is now the most recent
    throttle.get("c", 0, compute)  # evicts b
    throttle.get("a", 0, compute)
    assert len(calls) == 3
    throttle.get("b", 0, compute)
    assert len(calls) == 4
