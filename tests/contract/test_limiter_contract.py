"""Every RateLimiter keeps the same promises (docmill.limits.base), checked under a fake clock."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docmill.limits.base import LimiterStats, NullLimiter, RateLimiter
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import BucketLimiter, TokenBucket
from docmill.testing import FakeClock

Factory = Callable[..., BucketLimiter]


def _redis(rate: float, per: float = 60.0, *, burst: float | None = None, clock: FakeClock) -> BucketLimiter:
    redis_module = pytest.importorskip("docmill.limits.redis_bucket")
    bucket = redis_module.RedisTokenBucket(
        rate, per, burst=burst, clock=clock, key=f"docmill:test:{uuid.uuid4().hex}", redis_time=False
    )
    try:
        bucket.statistics()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable: {exc}")
    return bucket  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "shared", "redis"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "memory":
        yield TokenBucket
    elif request.param == "shared":
        yield lambda *a, **kw: SharedTokenBucket(*a, path=tmp_path / f"bucket-{uuid.uuid4().hex}", **kw)
    else:
        if "redis" not in request.config.getoption("-m", default=""):
            pytest.importorskip("redis")
        yield _redis


def _admissions(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(clock.monotonic())
    return times


def test_is_a_rate_limiter(make: Factory) -> None:
    assert isinstance(make(10, 1.0, clock=FakeClock()), RateLimiter)


def test_burst_is_immediate_then_the_rate_holds(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=5, clock=clock)
    times = _admissions(limiter, clock, 25)
    assert times[4] == times[0]  # the burst
    assert times[-1] - times[0] == pytest.approx(2.0)  # 20 more at 10/s


def test_never_more_than_the_bound_in_any_window(make: Factory) -> None:
    clock = FakeClock()
    limiter = (
        make.within(60, 1.0, clock=clock) if hasattr(make, "within") else make(58, 1.0, burst=1, clock=clock)
    )
    times = _admissions(limiter, clock, 400)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 59


def test_refund_gives_units_back_and_a_negative_refund_charges(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=10, clock=clock)
    limiter.acquire(10)
    limiter.refund(4)
    assert limiter.statistics().level == pytest.approx(4)
    limiter.refund(-6)
    assert limiter.statistics().level == pytest.approx(-2)
    limiter.acquire(1)
    assert clock.sleeps[-1] == pytest.approx(0.3)


def test_refund_never_exceeds_capacity(make: Factory) -> None:
    limiter = make(10, 1.0, burst=3, clock=FakeClock())
    limiter.refund(100)
    assert limiter.statistics().level == pytest.approx(3)


def test_pause_for_stops_every_caller(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(100, 1.0, clock=clock)
    start = clock.monotonic()
    limiter.pause_for(7.5)
    limiter.acquire()
    assert clock.monotonic() - start == pytest.approx(7.5)
    assert limiter.statistics().pauses == 1


def test_a_pause_begun_while_waiting_is_honoured(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(1, 1.0, burst=1, clock=clock)
    limiter.acquire()
    original = clock.sleep

    def sleep_and_get_throttled(seconds: float) -> None:
        original(seconds)
        if len(clock.sleeps) == 1:
            limiter.pause_for(3.0)  # another worker saw a 429 meanwhile

    clock.sleep = sleep_and_get_throttled  # type: ignore[method-assign]
    start = clock.monotonic()
    limiter.acquire()
    assert clock.monotonic() - start == pytest.approx(4.0)


def test_resync_only_lowers_the_level(make: Factory) -> None:
    limiter = make(10, 1.0, burst=10, clock=FakeClock())
    limiter.resync(3)
    assert limiter.statistics().level == pytest.approx(3)
    limiter.resync(8)
    assert limiter.statistics().level == pytest.approx(3)


def test_a_cost_above_capacity_is_admitted_after_its_debt(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=5, clock=clock)
    limiter.acquire(25)
    assert clock.sleeps == [pytest.approx(2.0)]


def test_async_acquire_waits_on_the_clock(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=1, clock=clock)

    async def main() -> None:
        for _ in range(3):
            await limiter.aacquire()

    asyncio.run(main())
    assert clock.sleeps == [pytest.approx(0.1), pytest.approx(0.1)]  # each waits for its own unit


def test_statistics_is_a_frozen_snapshot(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=1, clock=clock)
    limiter.acquire()
    limiter.acquire()
    stats = limiter.statistics()
    assert isinstance(stats, LimiterStats)
    assert (stats.acquired, stats.waits, stats.rate, stats.capacity) == (2, 1, 10, 1)
    with pytest.raises(AttributeError):
        stats.level = 5  # type: ignore[misc]


def test_null_limiter_admits_everything() -> None:
    limiter = NullLimiter()
    limiter.acquire(1e9)
    limiter.pause_for(100)
    assert isinstance(limiter, RateLimiter)
    assert limiter.statistics().level == float("inf")


def test_an_unlimited_bucket_admits_at_once_until_it_learns_a_limit(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(math.inf, 1.0, clock=clock)
    assert not limiter.known()
    assert _admissions(limiter, clock, 20) == [clock.monotonic()] * 20
    limiter.learn(12)  # 12 per second: burst 1, 10 a second after it
    assert limiter.known()
    times = _admissions(limiter, clock, 11)
    assert times[-1] - times[0] == pytest.approx(1.0)
    assert limiter.statistics().rate == pytest.approx(10) and limiter.statistics().capacity == 1


def test_a_learned_limit_never_raises_the_configured_one(make: Factory) -> None:
    limiter = make(10, 1.0, burst=2, clock=FakeClock())
    limiter.learn(1000)
    assert limiter.statistics().rate == pytest.approx(10) and limiter.statistics().capacity == 2
    limiter.learn(7)
    assert limiter.statistics().rate == pytest.approx(5) and limiter.statistics().capacity == 1


def test_after_a_pause_callers_go_one_at_a_time(make: Factory) -> None:
    clock = FakeClock()
    limiter = make(10, 1.0, burst=5, clock=clock)
    limiter.pause_for(3.0)
    start = clock.monotonic()
    times = [t - start for t in _admissions(limiter, clock, 3)]
    assert times == [pytest.approx(3.0), pytest.approx(3.1), pytest.approx(3.2)]
