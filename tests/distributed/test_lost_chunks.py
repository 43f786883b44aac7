"""Chunks the broker lost without a restart are sent again long before ``redeliver_after``.

A worker whose connection is cut while its BRPOP waits (a Redis frozen past the worker's socket
timeout) can have a message popped into a dead socket: it is then neither queued nor
unacknowledged, and no worker ever starts it. Here the queued chunks are deleted outright, which
leaves the broker in that same state; ``redeliver_after`` is an hour, so only the parent's look at
the idle broker can finish the run. A Redis server of the test's own, never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from distributed_helpers import Workers
from fault_kit import celery_run
from redis_server import RedisServer, redis_server

import docmill.executors.distributed as distributed
from docmill.executors.distributed import CeleryExecutor

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.timeout(120)]

N = 60


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def workers(own_redis: RedisServer) -> Iterator[Workers]:
    pool = Workers(own_redis.url(), count=2)
    try:
        with CeleryExecutor(broker=own_redis.url(), queue=pool.queue) as probe:
            pool.wait_ready(probe.app, 2)
        yield pool
    finally:
        pool.stop()


def test_chunks_lost_by_the_broker_are_sent_again_once_it_holds_nothing(
    own_redis: RedisServer, workers: Workers, pg_target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "LOST_CHECK", 1.0)
    dropped: list[int] = []

    def drop_queued() -> None:
        client = own_redis.client()
        deadline = time.monotonic() + 10
        while not dropped and time.monotonic() < deadline:
            if client.llen(workers.queue):
                dropped.append(int(client.delete(workers.queue)))
        client.close()

    ex = CeleryExecutor(2, broker=own_redis.url(), queue=workers.queue, chunk_size=5, redeliver_after=3600)
    with ex:
        started = time.monotonic()
        result, stats = celery_run(ex, pg_target, N, 0.05, at=10, fault=drop_queued)
    print(f"dropped {dropped}: {result}, resent={stats.resent_chunks}, {time.monotonic() - started:.1f} s")
    assert dropped == [1]  # the queue's key, holding at least one chunk
    assert result.clean and result.rows == N
    assert stats.resent_chunks >= 1
