"""RedisTokenBucket: the in-process bucket's semantics, kept in Redis and shared by processes."""

from __future__ import annotations

import multiprocessing
import pickle
import time
import uuid

import pytest

from docmill.limits.redis_bucket import RedisTokenBucket, redis_provider_limits
from docmill.testing import FakeClock

pytestmark = pytest.mark.redis


def bucket(redis_url: str, rate: float = 60, burst: float = 2, **kw: object) -> RedisTokenBucket:
    key = f"docmill:test:{uuid.uuid4().hex}"
    return RedisTokenBucket(rate, 60.0, burst=burst, url=redis_url, key=key, **kw)  # type: ignore[arg-type]


def test_reserve_waits_for_the_debt_under_a_fake_clock(redis_url: str) -> None:
    clock = FakeClock()
    b = bucket(redis_url, rate=60, burst=2, redis_time=False, clock=clock)  # 1 unit per second
    b.acquire()
    b.acquire()
    assert clock.sleeps == []
    b.acquire()
    assert clock.sleeps == [pytest.approx(1.0)]
    b.acquire(3)
    assert clock.sleeps[-1] == pytest.approx(3.0)  # the debt left by a large cost is paid off
    stats = b.statistics()
    assert stats.acquired == 6 and stats.waits == 2 and stats.capacity == 2 and stats.rate == 1.0


def test_refund_resync_and_pause(redis_url: str) -> None:
    clock = FakeClock()
    b = bucket(redis_url, rate=60, burst=10, redis_time=False, clock=clock)
    b.acquire(8)
    b.refund(5)
    assert b.statistics().level == pytest.approx(7)
    b.resync(3)
    assert b.statistics().level == pytest.approx(3)
    b.resync(9)  # never raised
    assert b.statistics().level == pytest.approx(3)
    b.pause_for(30)
    assert b.statistics().paused_for == pytest.approx(30)
    b.acquire()
    assert sum(clock.sleeps) == pytest.approx(30)
    assert b.statistics().pauses == 1


def test_pickled_copies_share_one_budget(redis_url: str) -> None:
    clock = FakeClock()
    a = bucket(redis_url, rate=60, burst=1, redis_time=False)
    b = pickle.loads(pickle.dumps(a))
    a.clock = b.clock = clock
    a.acquire()
    b.acquire()
    assert clock.sleeps == [pytest.approx(1.0)]


def _hammer(b: RedisTokenBucket, n: int, out: multiprocessing.Queue[list[float]]) -> None:
    stamps = []
    for _ in range(n):
        b.acquire()
        stamps.append(time.time())
    out.put(stamps)


def test_processes_share_the_rate_with_redis_time(redis_url: str) -> None:
    b = bucket(redis_url, rate=1200, burst=1)  # 20 per second, real time from Redis
    ctx = multiprocessing.get_context("spawn")  # fork would inherit locks of threads other tests left
    out: multiprocessing.Queue[list[float]] = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(b, 10, out)) for _ in range(3)]
    for p in procs:
        p.start()
    stamps = sorted(s for _ in procs for s in out.get(timeout=30))
    for p in procs:
        p.join(10)
    elapsed = stamps[-1] - stamps[0]
    assert len(stamps) == 30
    assert elapsed >= (30 - 1) / 20 * 0.9  # at most burst + rate * elapsed admitted


def test_provider_limits_over_redis(redis_url: str) -> None:
    limits = redis_provider_limits(redis_url, uuid.uuid4().hex, rpm=100, tpm=10_000)
    limits.acquire(500)
    limits.settle(500, 200)
    stats = limits.statistics()
    assert stats.requests.acquired == 1 and stats.tokens.refunded == 300
