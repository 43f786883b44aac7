"""Distributed runs on real Celery workers (subprocesses), Redis and PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from distributed_helpers import (
    HERE,
    EmulatorCaller,
    SlowProcessor,
    Workers,
    drive,
    running_workers,
)

from docmill.errors import BrokenExecutorError, ConfigError
from docmill.executors.distributed import CeleryExecutor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.journal.base import DocumentRecord, Query
from docmill.journal.postgres import PostgresJournal
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.processors.extract import ExtractText
from docmill.sources.files import DirectorySource
from docmill.testing import KillingProcessor, MemorySource, NoopProcessor

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.redis]

HELPERS = HERE / "distributed_helpers.py"


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with running_workers(2) as pool:
        yield pool


def executor(workers: Workers, **options: object) -> CeleryExecutor:
    return CeleryExecutor(2, broker=workers.broker, queue=workers.queue, **options)  # type: ignore[arg-type]


def by_path(outcomes: list[Outcome]) -> dict[str, tuple[str, str | None, object]]:
    return {o.ref.id: (o.status.value, o.sha256, o.result) for o in outcomes}


@pytest.mark.slow  # kept out of the default run for its length; `pytest -m slow`
def test_manpages_on_two_workers_equal_the_sequential_run(
    workers: Workers, manpages: Path, pg_target: str, tmp_path: Path
) -> None:
    source = DirectorySource(manpages)
    job = Job(source, Pipeline(ExtractText()))
    with SqliteJournal(tmp_path / "local.db") as local:
        local_run, expected = drive(SequentialExecutor(), job, local, source)
        local_rows = rows(local.iter_documents(Query(run_id=local_run)))
    with PostgresJournal(pg_target) as journal, executor(workers, chunk_size=25) as ex:
        run_id, got = drive(ex, job, journal, source)
        pg_rows = rows(journal.iter_documents(Query(run_id=run_id)))
    assert len(got) == len(expected) == len(pg_rows) == 1200
    assert by_path(got) == by_path(expected)  # what the strategies yield
    assert pg_rows == local_rows  # what the journals settle on (duplicates included)
    assert {s for s, _, _, _ in pg_rows.values()} >= {"ok", "duplicate"}
    pids = {o.timings.worker.split(":")[1] for o in got}
    assert pids == {str(c.pid) for i in (0, 1) for c in workers.children(i)}
    assert ex.distributed_stats().duplicate_results == 0


def rows(records: Iterable[DocumentRecord]) -> dict[str, tuple[object, ...]]:
    return {d.path: (d.status, d.sha256, d.label, d.duplicate_of) for d in records}


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


def test_sigkill_of_a_worker_process_mid_run_loses_and_duplicates_nothing(
    workers: Workers, pg_target: str
) -> None:
    source = MemorySource(160)
    job = Job(source, SlowProcessor(0.05))  # a worker is idle only for the ms between chunks
    killed: list[int] = []

    def kill_once(n: int) -> None:
        if n == 40 and not killed:
            time.sleep(0.2)  # the chunk that just finished may be worker 0's: let it start the next one
            victim = workers.children(0)[0]
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)

    with PostgresJournal(pg_target) as journal, executor(workers, chunk_size=10) as ex:
        run_id, got = drive(ex, job, journal, source, on_outcome=kill_once)
        assert journal.count(Query(run_id=run_id)) == 160
        assert journal.summary(run_id).by_status == {"ok": 160}
    assert killed and sorted(o.ref.id for o in got) == sorted(r.id for r in source)
    assert ex.distributed_stats().redelivered_chunks >= 1  # the dead process's chunk ran again
    workers.wait_ready(ex.app, 2)


def test_a_document_that_kills_its_worker_ends_crashed_and_the_run_goes_on(
    workers: Workers, pg_target: str
) -> None:
    source = MemorySource(40)
    job = Job(source, KillingProcessor(targets=["doc-000013"]))
    with PostgresJournal(pg_target) as journal, executor(workers, chunk_size=10) as ex:
        run_id, got = drive(ex, job, journal, source)
        poisoned = journal.document("doc-000013", run_id=run_id)
        assert journal.summary(run_id).by_status == {"ok": 39, "crashed": 1}
    assert poisoned is not None and poisoned.error_type == "WorkerCrashedError"
    assert len(got) == 40 and ex.distributed_stats().redelivered_chunks == 1
    workers.wait_ready(ex.app, 2)


def test_restarted_runner_resumes_without_duplicates(workers: Workers, pg_target: str) -> None:
    env = {**os.environ, "DOCMILL_BROKER": workers.broker, "DOCMILL_QUEUE": workers.queue}
    argv = [sys.executable, str(HELPERS), pg_target, "200", "0.02"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    for line in first.stdout:
        if line.strip() == "80":
            first.send_signal(signal.SIGKILL)
            break
    first.wait(10)
    first.stdout.close()
    with PostgresJournal(pg_target) as journal:
        recorded_before = journal.count(Query())
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True)
    resumed = int(second.stdout.strip().splitlines()[-1].split()[1])
    with PostgresJournal(pg_target) as journal:
        assert journal.count(Query()) == 200
        assert journal.summary().by_status == {"ok": 200}
        assert [r.state for r in journal.runs()] == ["done", "running"]  # the killed one never ended
    assert 0 < recorded_before < 200 and resumed == 200 - recorded_before


def test_a_job_workers_cannot_load_stops_the_run_with_one_clear_error(
    workers: Workers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "only_here.py").write_text(
        "from docmill.testing import NoopProcessor\n\nclass LocalOnly(NoopProcessor):\n    name = 'local'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from only_here import LocalOnly  # type: ignore[import-not-found]  # importable here only

    job = Job(MemorySource(5), LocalOnly())
    with pytest.raises(BrokenExecutorError, match="cannot load the job"), executor(workers) as ex:
        list(ex.map_unordered(job, MemorySource(5)))


def test_a_job_that_does_not_pickle_is_a_config_error(workers: Workers) -> None:
    job = Job(MemorySource(1), NoopProcessor())
    job.pipeline.lock = threading.Lock()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="must pickle"), executor(workers) as ex:
        list(ex.map_unordered(job, MemorySource(1)))


def test_a_chunk_outliving_the_visibility_timeout_is_redelivered_and_counted(
    redis_url: str, pg_target: str
) -> None:
    pool = Workers(redis_url, count=2, visibility=2)
    try:
        ex = CeleryExecutor(2, broker=redis_url, queue=pool.queue, chunk_size=4)
        pool.wait_ready(ex.app, 2)
        # Chunk 1 takes 3.2 s and chunk 2 6 s, both past the 2 s visibility timeout: when the first
        # worker frees up, a redelivered copy waits in the queue and starts while the run still runs.
        source = MemorySource(8)
        job = Job(source, SlowProcessor(0.8, slower={f"doc-00000{i}": 1.5 for i in range(4, 8)}))
        with PostgresJournal(pg_target) as journal, ex:
            run_id, got = drive(ex, job, journal, source, batch=4)
            assert journal.count(Query(run_id=run_id)) == 8
            assert journal.summary(run_id).by_status == {"ok": 8}
        assert sorted(o.ref.id for o in got) == sorted(r.id for r in source)
        stats = ex.distributed_stats()
        assert stats.redelivered_chunks >= 1
        assert f"redelivered={stats.redelivered_chunks}" in ex.statistics().detail
    finally:
        pool.stop()


def test_the_redis_limiter_holds_the_providers_rate_across_two_workers(workers: Workers) -> None:
    from docmill.limits.redis_bucket import redis_provider_limits
    from docmill.llm.emulator import EmulatorConfig
    from docmill.llm.emulator_server import EmulatorServer

    config = EmulatorConfig(rpm=20, tpm=0, window=3.0, latency_median=0.02, latency_sigma=0.1)
    source = MemorySource(30)
    with EmulatorServer(config) as server:
        unlimited = Job(source, EmulatorCaller(server.url))
        with executor(workers, chunk_size=3) as ex:
            list(ex.map_unordered(unlimited, source))
        control = server.stats()
        server.reset()
        limits = redis_provider_limits(workers.broker, uuid.uuid4().hex, rpm=20, tpm=None, per=3.0)
        with executor(workers, chunk_size=3) as ex:
            got = list(ex.map_unordered(Job(source, EmulatorCaller(server.url, limits)), source))
        paced = server.stats()
    assert control["max_requests_per_window"] > 20 and control["rate_limited"] > 0  # the test can fail
    assert paced["requests"] == 30 and paced["rate_limited"] == 0
    assert paced["max_requests_per_window"] <= 20
    assert {o.result["http"] for o in got if o.result} == {200}
    assert len({o.timings.worker for o in got}) == 2  # both workers drew from the one budget


def test_cli_run_on_celery_with_postgres_then_status_and_export(
    workers: Workers, manpages: Path, pg_target: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DOCMILL_BROKER": workers.broker, "DOCMILL_QUEUE": workers.queue}
    docmill = [sys.executable, "-m", "docmill"]
    run = [*docmill, "run", str(manpages), "--include", "batch-a/*", "--strategy", "celery",
           "--workers", "2", "--classifier", "none", "--db", pg_target, "--progress", "none"]  # fmt: skip
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    status = subprocess.run([*docmill, "status", "--db", pg_target, "--json"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    summary = json.loads(status.stdout)
    out = tmp_path / "out.csv"
    subprocess.run([*docmill, "export", "--db", pg_target, "-o", str(out)], env=env, check=True, timeout=60)
    with PostgresJournal(pg_target) as journal:
        (record,) = journal.runs()
        total = journal.count(Query(run_id=record.id))
    assert record.strategy == "celery" and record.state == "done" and total > 100
    assert "redelivered=0" in record.stats["executor"]["detail"]
    assert len(out.read_text().splitlines()) == total + 1
    assert str(total) in status.stdout and summary


def test_no_worker_on_the_queue_stops_the_run_with_a_hint(workers: Workers) -> None:
    ex = CeleryExecutor(1, broker=workers.broker, queue="docmill-test-nobody", stall_timeout=0.5)
    with pytest.raises(BrokenExecutorError, match="no Celery worker serves queue 'docmill-test-nobody'"):
        list(ex.map_unordered(Job(MemorySource(3), NoopProcessor()), MemorySource(3)))
    import redis

    redis.Redis.from_url(workers.broker).delete("docmill-test-nobody")
