"""The staged strategy beyond the shared contract: one in-flight bound over both stages, its
options, and the pool loop it is built on (``PooledExecutor.stream``)."""

from __future__ import annotations

import socket

import pytest

from docmill.errors import ConfigError
from docmill.executors import get_executor
from docmill.executors.staged import StagedExecutor
from docmill.executors.work_queue import QueueExecutor
from docmill.job import Job
from docmill.outcome import Status
from docmill.pipeline import Pipeline
from docmill.testing import AsyncSleepProcessor, MemorySource, NoopProcessor, PulledCounter, iter_refs

pytestmark = pytest.mark.timeout(60)


def test_max_in_flight_counts_documents_in_the_io_stage() -> None:
    refs = PulledCounter(iter_refs(200))
    job = Job(MemorySource(), Pipeline(NoopProcessor(), AsyncSleepProcessor(0.02)))
    with get_executor("staged", workers=2, max_in_flight=8, io_concurrency=64) as executor:
        yielded = 0
        for yielded, _ in enumerate(executor.map_unordered(job, refs), start=1):
            assert refs.pulled - yielded <= 8
        stats = executor.statistics()
    assert yielded == 200
    assert (stats.completed, stats.in_flight) == (200, 0)


def test_documents_failing_in_either_stage_end_once() -> None:
    job = Job(MemorySource(), Pipeline(NoopProcessor(), AsyncSleepProcessor(0.001)))
    with get_executor("staged", workers=2) as executor:
        outcomes = list(executor.map_unordered(job, iter_refs(50)))
    assert sorted(o.ref.id for o in outcomes) == sorted(r.id for r in iter_refs(50))
    assert {o.status for o in outcomes} == {Status.OK}


def test_options_are_the_pools_and_io_concurrency() -> None:
    executor = StagedExecutor(2, io_concurrency=3, max_tasks_per_child=7, max_in_flight=40)
    assert executor.io_concurrency == 3
    assert executor.cpu.limits.max_tasks == 7
    assert executor.cpu.max_in_flight == executor.max_in_flight == 40
    assert executor.describe() == "staged(cpu_workers=2, io_concurrency=3)"
    with pytest.raises(ConfigError, match="io_concurrency"):
        StagedExecutor(io_concurrency=0)
    with pytest.raises(ConfigError, match="io_concurency"):
        StagedExecutor(io_concurency=3)


def test_capabilities() -> None:
    assert StagedExecutor.needs_processes and StagedExecutor.overlaps_io
    assert StagedExecutor.io_slots == "in_flight"
    assert not StagedExecutor.nested and not StagedExecutor.delegates


def test_stream_waits_while_documents_are_held_and_wakes_for_a_wakeup() -> None:
    ring, bell = socket.socketpair()
    held = [4]  # a later stage holds all of max_in_flight: nothing to send, yet not finished
    with QueueExecutor(1, max_in_flight=4) as pool, ring, bell:
        job = Job(MemorySource(), NoopProcessor())
        stream = pool.stream(job, iter_refs(3), wakeups=[bell], held=lambda: held[0])
        ring.send(b"!")
        assert next(stream) == []  # the wakeup ended the wait
        held[0] = 0
        outcomes = [outcome for batch in stream for outcome in batch]
    assert sorted(o.ref.id for o in outcomes) == sorted(r.id for r in iter_refs(3))


def test_stream_counts_held_documents_against_max_in_flight() -> None:
    refs = PulledCounter(iter_refs(50))
    with QueueExecutor(4, max_in_flight=8) as pool:
        stream = pool.stream(Job(MemorySource(), NoopProcessor()), refs, held=lambda: 6)
        next(stream)
        stream.close()
    assert refs.pulled <= 4  # 8 when nothing is held: two chunks of one for each of 4 workers
