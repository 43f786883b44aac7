"""A Celery run whose Redis (broker and result store) freezes or restarts empty mid-run.

Each test has a Redis server of its own (no persistence), never the shared one. The run must
pause, continue, send again what a restart lost, and end with the sequential run's rows: none
lost, none twice. Longer freezes (8 s, 30 s) are in the chaos tier (tests/chaos).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import Workers
from fault_kit import celery_run
from redis_server import RedisServer, redis_server

from docmill.errors import BrokenExecutorError
from docmill.executors.distributed import CeleryExecutor
from docmill.job import Job
from docmill.testing import MemorySource, SleepProcessor

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.timeout(120)]

N = 120
SECONDS = 0.02


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A second Redis, for the run's results when the broker is the one that restarts."""
    with redis_server(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture(scope="module")
def workers(own_redis: RedisServer) -> Iterator[Workers]:
    pool = Workers(own_redis.url(), count=2, visibility=10)
    try:
        with CeleryExecutor(broker=own_redis.url(), queue=pool.queue) as probe:
            pool.wait_ready(probe.app, 2)
        yield pool
    finally:
        pool.stop()


def executor(server: RedisServer, workers: Workers, **options: object) -> CeleryExecutor:
    return CeleryExecutor(2, broker=server.url(), queue=workers.queue, chunk_size=5, **options)  # type: ignore[arg-type]


@pytest.mark.chaos
@pytest.mark.parametrize("seconds", [8, 30])
def test_a_frozen_redis_pauses_the_run_which_then_ends_like_the_sequential_one(
    own_redis: RedisServer, workers: Workers, pg_target: str, seconds: int
) -> None:
    with executor(own_redis, workers) as ex:
        result, stats = celery_run(
            ex, pg_target, N, SECONDS, at=30, fault=lambda: own_redis.freeze(seconds).join()
        )
    print(
        f"freeze {seconds} s: {result}, outages={stats.outages} ({stats.outage_seconds:.1f} s), "
        f"resent={stats.resent_chunks}, duplicate_results={stats.duplicate_results}"
    )
    assert result.clean and result.rows == N


def test_a_redis_restarted_empty_loses_chunks_that_are_sent_again(
    own_redis: RedisServer, workers: Workers, pg_target: str
) -> None:
    with executor(own_redis, workers, redeliver_after=8) as ex:
        result, stats = celery_run(ex, pg_target, N, SECONDS, at=30, fault=lambda: own_redis.restart(1))
    print(
        f"restart: {result}, outages={stats.outages} ({stats.outage_seconds:.1f} s), "
        f"resent={stats.resent_chunks}, duplicate_results={stats.duplicate_results}"
    )
    assert result.clean and result.rows == N
    assert stats.outages >= 1 and stats.resent_chunks >= 1


def test_chunks_a_restarted_broker_lost_are_sent_again_after_redeliver_after(
    own_redis: RedisServer, store: RedisServer, workers: Workers, pg_target: str
) -> None:
    """The results live in another Redis, which did not restart: only the timer finds the loss."""
    with executor(own_redis, workers, store=store.url(), redeliver_after=4) as ex:
        result, stats = celery_run(ex, pg_target, N, SECONDS, at=30, fault=lambda: own_redis.restart(1))
    print(
        f"broker restart: {result}, outages={stats.outages}, resent={stats.resent_chunks}, "
        f"duplicate_results={stats.duplicate_results}"
    )
    assert result.clean and result.rows == N
    assert stats.resent_chunks >= 1


def test_a_redis_that_stays_away_stops_the_run_with_one_error(tmp_path: Path) -> None:
    source = MemorySource(20)
    with (
        redis_server(tmp_path) as own_redis,
        CeleryExecutor(2, broker=own_redis.url(), queue="nobody-serves", outage_limit=2) as ex,
    ):
        outcomes = ex.map_unordered(Job(source, SleepProcessor(0)), source)
        own_redis.kill()
        started = time.monotonic()
        with pytest.raises(BrokenExecutorError, match=r"did not answer for 2 s .* start the run again"):
            next(outcomes)
    assert time.monotonic() - started < 30
