"""Distributed runs on real Celery workers (subprocesses), Redis and PostgreSQL on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import Workers, drive

from docmill.executors.distributed import CeleryExecutor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.journal.base import Query
from docmill.journal.postgres import PostgresJournal
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.sources.files import DirectorySource
from docmill.testing import MemorySource, NoopProcessor

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    from conftest import REDIS_URL

    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    pool = Workers(REDIS_URL, count=2)
    try:
        pool.wait_ready(CeleryExecutor(broker=REDIS_URL, queue=pool.queue).app, 2)
        yield pool
    finally:
        pool.stop()


def executor(workers: Workers, **options: object) -> CeleryExecutor:
    return CeleryExecutor(2, broker=workers.broker, queue=workers.queue, **options)  # type: ignore[arg-type]


def by_path(outcomes: list[Outcome]) -> dict[str, tuple[str, str | None, object]]:
    return {o.ref.id: (o.status.value, o.sha256, o.result) for o in outcomes}


def test_manpages_on_two_workers_equal_the_sequential_run(
    workers: Workers, manpages: Path, pg_target: str, tmp_path: Path
) -> None:
    source = DirectorySource(manpages)
    job = Job(source, Pipeline(ExtractText()))
    with SqliteJournal(tmp_path / "local.db") as local:
        _, expected = drive(SequentialExecutor(), job, local, source)
    with PostgresJournal(pg_target) as journal, executor(workers, chunk_size=25) as ex:
        run_id, got = drive(ex, job, journal, source)
        assert journal.count(Query(run_id=run_id)) == len(expected) == 1200
        rows = {d.path: (d.status, d.sha256, d.label) for d in journal.iter_documents(Query(run_id=run_id))}
    assert by_path(got) == by_path(expected)
    assert rows == {o.ref.id: (o.status.value, o.sha256, o.label) for o in expected}
    assert {o.timings.worker.split(":")[1] for o in got} == {
        str(c.pid) for i in (0, 1) for c in workers.children(i)
    }
    assert ex.distributed_stats().duplicate_results == 0


def test_small_run_streams_with_backpressure(workers: Workers, pg_target: str) -> None:
    source = MemorySource(500)
    job = Job(source, NoopProcessor())
    pulled = []

    def refs() -> Iterator[object]:
        for ref in source:
            pulled.append(ref)
            yield ref

    ex = executor(workers, chunk_size=10, max_in_flight=40)
    seen = 0
    for _ in ex.map_unordered(job, refs()):  # type: ignore[arg-type]
        seen += 1
        assert len(pulled) - seen <= 40  # never more than max_in_flight refs out
    assert seen == 500
    stats = ex.distributed_stats()
    assert stats.chunks_sent == stats.chunks_done == 50
