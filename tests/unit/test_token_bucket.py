"""TokenBucket / SharedTokenBucket specifics and ProviderLimits (the shared contract is elsewhere)."""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from docmill.errors import ConfigError
from docmill.limits.base import NullLimiter
from docmill.limits.provider import ProviderLimits
from docmill.limits.shared import SharedTokenBucket
from docmill.limits.token_bucket import TokenBucket
from docmill.testing import FakeClock


def test_within_keeps_burst_plus_refill_one_below_the_limit() -> None:
    bucket = TokenBucket.within(600, 60.0)
    assert bucket.capacity == 6
    assert bucket.capacity + bucket.rate * 60 == pytest.approx(599)
    assert TokenBucket.within(20, 1.0).capacity == 1


def test_within_a_margin_paces_over_the_window_plus_the_margin() -> None:
    bucket = TokenBucket.within(20, 1.0, margin=0.5)
    assert bucket.capacity + bucket.rate * 1.5 == pytest.approx(19)
    with pytest.raises(ConfigError):
        TokenBucket.within(20, 1.0, margin=-0.1)


def _busiest(arrivals: list[float], window: float) -> int:
    return max(sum(1 for t in arrivals if start <= t < start + window) for start in arrivals)


@pytest.mark.parametrize(("margin", "fits"), [(0.0, False), (0.3, True)])
def test_the_margin_absorbs_that_much_delay_variation(margin: float, fits: bool) -> None:
    """The worst case: calls admitted early reach the provider 0.3 s late, later ones at once."""
    clock = FakeClock()
    bucket = TokenBucket.within(60, 1.0, margin=margin, clock=clock)
    admitted = []
    for _ in range(200):
        bucket.acquire()
        admitted.append(clock.monotonic())
    arrivals = [t + 0.3 if (t % 2.0) < 1.0 else t for t in admitted]
    assert (_busiest(arrivals, 1.0) <= 59) is fits


@pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": 5, "per": 0}, {"rate": 5, "burst": 0}])
def test_invalid_buckets_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        TokenBucket(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TokenBucket.within(1)


def test_threads_share_one_budget() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 1.0, burst=1, clock=clock)
    start = clock.monotonic()

    def spend() -> None:
        for _ in range(50):
            bucket.acquire()

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = bucket.statistics()
    assert stats.acquired == 200
    assert stats.waited == pytest.approx(sum(clock.sleeps))
    assert clock.monotonic() - start >= 1.99 - 1e-9  # 199 units beyond the burst at 100/s


def test_a_pickled_token_bucket_is_a_separate_budget() -> None:
    bucket = TokenBucket(10, 1.0, burst=1)
    copy = pickle.loads(pickle.dumps(bucket))
    copy.acquire()
    assert bucket.statistics().acquired == 0


def test_a_pickled_shared_bucket_is_the_same_budget(tmp_path: Path) -> None:
    bucket = SharedTokenBucket(10, 1.0, burst=5, path=tmp_path / "b")
    copy = pickle.loads(pickle.dumps(bucket))
    copy.acquire(3)
    assert bucket.statistics().acquired == 3


def test_the_owner_removes_its_file_and_copies_do_not() -> None:
    bucket = SharedTokenBucket(10, 1.0)
    bucket.acquire()
    path = bucket.path
    copy = pickle.loads(pickle.dumps(bucket))
    del copy
    gc.collect()
    assert path.exists()
    del bucket
    gc.collect()
    assert not path.exists()


def _spend(bucket: SharedTokenBucket, n: int, out: multiprocessing.Queue[list[float]]) -> None:
    stamps = []
    for _ in range(n):
        bucket.acquire()
        stamps.append(time.monotonic())
    out.put(stamps)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_one_budget(method: str, tmp_path: Path) -> None:
    context: Any = multiprocessing.get_context(method)
    bucket = SharedTokenBucket(40, 1.0, burst=1, path=tmp_path / "bucket")
    out = context.Queue()
    workers = [context.Process(target=_spend, args=(bucket, 15, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    stamps = sorted(out.get(timeout=30) + out.get(timeout=30))
    for worker in workers:
        worker.join(10)
    assert bucket.statistics().acquired == 30
    assert stamps[-1] - stamps[0] >= 29 / 40 * 0.95  # one budget: 30 units at 40/s, not twice that


def test_provider_limits_settle_pause_and_observe() -> None:
    clock = FakeClock()
    limits = ProviderLimits(TokenBucket(10, 1.0, clock=clock), TokenBucket(1000, 1.0, clock=clock))
    limits.acquire(300)
    limits.settle(300, 120)
    assert limits.statistics().tokens.level == pytest.approx(880)
    limits.observe(requests_left=2, tokens_left=None)
    assert limits.statistics().requests.level == pytest.approx(2)
    limits.pause_for(2.0)
    assert limits.statistics().requests.paused_for == limits.statistics().tokens.paused_for == 2.0


def test_provider_limits_from_rates() -> None:
    limits = ProviderLimits.from_rates(600, None, shared=False)
    assert isinstance(limits.requests, TokenBucket)
    assert isinstance(limits.tokens, TokenBucket) and not limits.tokens.known()  # learned from replies
    assert isinstance(ProviderLimits.from_rates(600, None, learn=False).tokens, NullLimiter)
    assert isinstance(ProviderLimits.from_rates(600, 1000).tokens, SharedTokenBucket)
