"""The contract every strategy keeps, checked against the sequential oracle."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_kit import live_children, make_job, multiset, settled_threads

from docmill.document import DocumentRef
from docmill.executors import get_executor
from docmill.executors.batches import PartitionedExecutor
from docmill.executors.pool.parent import WorkerHandle
from docmill.executors.sequential import SequentialExecutor
from docmill.outcome import Status
from docmill.testing import (
    AsyncSleepProcessor,
    MemorySource,
    NoopProcessor,
    PulledCounter,
    RaisingProcessor,
    SetupRecorder,
    iter_refs,
    make_refs,
)

pytestmark = pytest.mark.timeout(60)


def test_outcomes_match_the_oracle(executor_name: str) -> None:
    source = MemorySource(61, unreadable={"doc-000010"})
    job = make_job(source, RaisingProcessor({"doc-000003", "doc-000040"}))
    expected = multiset(SequentialExecutor().map_unordered(make_job(source, *job.pipeline.steps), source))
    with get_executor(executor_name, workers=2) as executor:
        outcomes = list(executor.map_unordered(job, source))
    assert len(outcomes) == 61
    assert len({o.ref.id for o in outcomes}) == 61
    assert multiset(outcomes) == expected
    assert sum(o.status is Status.FAILED for o in outcomes) == 3


def test_async_pipeline_matches_the_oracle(executor_name: str) -> None:
    source = MemorySource(24)
    job = make_job(source, NoopProcessor(), AsyncSleepProcessor(0.002))
    expected = multiset(SequentialExecutor().map_unordered(job, source))
    with get_executor(executor_name, workers=2) as executor:
        assert multiset(executor.map_unordered(job, source)) == expected


def test_map_keeps_input_order(executor_name: str) -> None:
    source = MemorySource(30)
    with get_executor(executor_name, workers=2) as executor:
        ids = [o.ref.id for o in executor.map(make_job(source, NoopProcessor()), source)]
    assert ids == [ref.id for ref in source]


def test_refs_are_pulled_lazily(executor_name: str) -> None:
    refs = PulledCounter(iter_refs(100_000))
    with get_executor(executor_name, workers=2, max_in_flight=8) as executor:
        outcomes = executor.map_unordered(make_job(MemorySource(), NoopProcessor()), refs)
        for yielded, _ in enumerate(outcomes, start=1):
            assert refs.pulled - yielded <= 8
            if yielded == 50:
                break
        outcomes.close()  # type: ignore[attr-defined]
    assert refs.pulled < 200


def test_batches_by_size_materialises_and_stride_does_not() -> None:
    for partition in ("size", "stride"):
        refs = PulledCounter(iter_refs(5_000))
        with get_executor("batches", workers=2, max_in_flight=8, partition=partition) as executor:
            outcomes = executor.map_unordered(make_job(MemorySource(), NoopProcessor()), refs)
            next(outcomes)
            assert refs.pulled == 5_000 if partition == "size" else refs.pulled <= 8
            outcomes.close()  # type: ignore[attr-defined]


def test_batches_stride_gives_worker_i_the_refs_i_mod_n() -> None:
    executor = PartitionedExecutor(workers=3)
    executor.prepare(iter_refs(10))
    handles = [WorkerHandle.__new__(WorkerHandle) for _ in range(3)]
    for i, handle in enumerate(handles):
        handle.index = i
    got = {i: [r.id for r in executor.next_items(handles[i], 10)] for i in (2, 0, 1)}
    expected = {i: [r.id for r in make_refs(10)[i::3]] for i in range(3)}
    assert got == expected
    assert executor.next_items(handles[0], 10) == [] and executor.source_dry()


def test_setup_runs_at_most_once_per_worker(executor_name: str, tmp_path: Path) -> None:
    log = tmp_path / "setups"
    source = MemorySource(40)
    with get_executor(executor_name, workers=2) as executor:
        list(executor.map_unordered(make_job(source, SetupRecorder(log), NoopProcessor()), source))
    counts = SetupRecorder.setups_per_pid(log)
    assert counts, "setup never ran"
    assert max(counts.values()) == 1, counts


def test_close_is_idempotent(executor_name: str) -> None:
    executor = get_executor(executor_name, workers=2)
    source = MemorySource(5)
    assert len(list(executor.map_unordered(make_job(source, NoopProcessor()), source))) == 5
    executor.close()
    executor.close()


def test_a_stopped_source_drains_what_is_in_flight(executor_name: str) -> None:
    """The runner's Ctrl-C: the refs iterator ends early; every ref already pulled is yielded."""
    pulled: list[DocumentRef] = []

    def refs() -> Iterator[DocumentRef]:
        for ref in iter_refs(1_000):
            if len(pulled) == 37:
                return
            pulled.append(ref)
            yield ref

    with get_executor(executor_name, workers=2) as executor:
        outcomes = list(executor.map_unordered(make_job(MemorySource(), NoopProcessor()), refs()))
    assert sorted(o.ref.id for o in outcomes) == sorted(r.id for r in pulled)


def test_nothing_leaks_after_a_run(
    executor_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = set(threading.enumerate())
    source = MemorySource(30)
    with get_executor(executor_name, workers=2) as executor:
        list(executor.map_unordered(make_job(source, NoopProcessor()), source))
    assert not settled_threads(before)
    assert not live_children()
    assert list(tmp_path.iterdir()) == []


def test_nothing_leaks_when_the_consumer_stops_early(executor_name: str) -> None:
    before = set(threading.enumerate())
    source = MemorySource(500)
    executor = get_executor(executor_name, workers=2)
    outcomes = executor.map_unordered(make_job(source, NoopProcessor()), source)
    next(outcomes)
    outcomes.close()  # type: ignore[attr-defined]
    executor.close()
    assert not settled_threads(before)
    assert not live_children()


def test_nothing_leaks_when_the_consumer_raises(executor_name: str) -> None:
    before = set(threading.enumerate())
    source = MemorySource(500)
    with pytest.raises(KeyError), get_executor(executor_name, workers=2) as executor:
        for _ in executor.map_unordered(make_job(source, NoopProcessor()), source):
            raise KeyError("the consumer failed")
    assert not settled_threads(before)
    assert not live_children()


def test_an_empty_source_yields_nothing(executor_name: str) -> None:
    with get_executor(executor_name, workers=2) as executor:
        assert list(executor.map_unordered(make_job(MemorySource(), NoopProcessor()), [])) == []
