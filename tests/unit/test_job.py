from __future__ import annotations

import asyncio
import pickle
import sys
from collections.abc import Iterator

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import CorruptDocument, SourceError, UpstreamError
from docmill.job import Job
from docmill.outcome import Status
from docmill.pipeline import Pipeline
from docmill.processors.base import AsyncProcessor, Processor
from docmill.retry import RetryPolicy


class MemorySource:
    root = "mem"

    def __init__(self, texts: dict[str, bytes]) -> None:
        self.texts = texts

    def __iter__(self) -> Iterator[DocumentRef]:
        return (DocumentRef(k, f"mem://{k}", len(v)) for k, v in self.texts.items())

    def count(self) -> int:
        return len(self.texts)

    def load(self, ref: DocumentRef) -> Document:
        if ref.id not in self.texts:
            raise SourceError(f"no such document: {ref.id}", uri=ref.uri)
        data = self.texts[ref.id]
        return Document(ref, sha256_bytes(data), content=data)


class Decode(Processor):
    name = "decode"

    def process(self, doc: Document) -> Document:
        return doc.evolve(text=(doc.content or b"").decode())


class Label(Processor):
    name = "label"

    def process(self, doc: Document) -> Document:
        return doc.with_metadata(label="long" if len(doc.text or "") > 3 else "short", score=1.0)


class Flaky(Processor):
    """Fails with a retryable error the first ``failures`` times."""

    name = "flaky"

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def process(self, doc: Document) -> Document:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return doc


class Exits(Processor):
    name = "exits"

    def process(self, doc: Document) -> Document:
        sys.exit(3)


class SleepyAsync(AsyncProcessor):
    name = "sleepy"

    async def aprocess(self, doc: Document) -> Document:
        await asyncio.sleep(0)
        return doc.with_metadata(label="async")


class NoSleepClock:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 100.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_ok_outcome_carries_result_hash_and_chars() -> None:
    job = Job(MemorySource({"a": b"hello"}), Pipeline(Decode(), Label()))
    job.setup()
    outcome = job.run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.OK
    assert outcome.label == "long"
    assert outcome.sha256 == sha256_bytes(b"hello")
    assert outcome.result is not None and outcome.result["chars"] == 5


def test_empty_text_stops_the_pipeline_and_ends_empty() -> None:
    job = Job(MemorySource({"a": b"  \n "}), Pipeline(Decode(), Label()))
    outcome = job.run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.EMPTY
    assert outcome.label is None


def test_load_failure_is_an_outcome_not_an_exception() -> None:
    outcome = Job(MemorySource({}), Decode()).run(DocumentRef("missing", "mem://missing"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None and outcome.error.type == "SourceError"
    assert "missing" in outcome.error.message


def test_retryable_errors_are_retried_with_the_policy_and_injected_sleep() -> None:
    clock = NoSleepClock()
    flaky = Flaky(2, UpstreamError("503"))
    job = Job(MemorySource({"a": b"x"}), flaky, retry=RetryPolicy(max_attempts=3, jitter=0), clock=clock)
    outcome = job.run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.OK
    assert outcome.attempts == 3
    assert clock.slept == [1.0, 2.0]


def test_permanent_errors_are_not_retried() -> None:
    flaky = Flaky(5, CorruptDocument("truncated"))
    job = Job(MemorySource({"a": b"x"}), flaky, retry=RetryPolicy(max_attempts=5), clock=NoSleepClock())
    outcome = job.run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.FAILED and outcome.attempts == 1 and flaky.calls == 1
    assert outcome.error is not None and not outcome.error.retryable


def test_sys_exit_in_a_processor_fails_the_document_only() -> None:
    outcome = Job(MemorySource({"a": b"x"}), Exits()).run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None and outcome.error.type == "SystemExit"


def test_timeout_in_the_main_thread_fails_with_processing_timeout() -> None:
    class Hang(Processor):
        name = "hang"

        def process(self, doc: Document) -> Document:
            while True:
                pass

    outcome = Job(MemorySource({"a": b"x"}), Hang(), timeout=0.05).run(DocumentRef("a", "mem://a"))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None and outcome.error.type == "ProcessingTimeout"


def test_arun_awaits_async_steps_and_offloads_sync_ones() -> None:
    job = Job(MemorySource({"a": b"hello"}), Pipeline(Decode(), SleepyAsync()))
    outcome = asyncio.run(job.arun(DocumentRef("a", "mem://a")))
    assert outcome.status is Status.OK and outcome.label == "async"


def test_arun_timeout_and_retry_share_the_decision_core() -> None:
    class SlowAsync(AsyncProcessor):
        name = "slow"

        async def aprocess(self, doc: Document) -> Document:
            await asyncio.sleep(10)
            return doc

    clock = NoSleepClock()
    retry = RetryPolicy(max_attempts=2)
    job = Job(MemorySource({"a": b"x"}), SlowAsync(), timeout=0.01, retry=retry, clock=clock)
    outcome = asyncio.run(job.arun(DocumentRef("a", "mem://a")))
    assert outcome.status is Status.FAILED and outcome.attempts == 2
    assert outcome.error is not None and outcome.error.type == "ProcessingTimeout"
    assert len(clock.slept) == 1


def test_job_and_async_processor_pickle_without_loops() -> None:
    step = SleepyAsync()
    step.setup()
    job = Job(MemorySource({"a": b"x"}), Pipeline(Decode(), step))
    clone = pickle.loads(pickle.dumps(job))
    assert clone.fingerprint() == job.fingerprint()
    step.teardown()


def test_fingerprint_changes_with_the_pipeline() -> None:
    assert Pipeline(Decode()).fingerprint() != Pipeline(Decode(), Label()).fingerprint()
    assert Pipeline(Decode(), Label()).fingerprint() == Pipeline(Decode(), Label()).fingerprint()


def test_split_separates_cpu_steps_from_the_async_stage() -> None:
    cpu, io = Pipeline(Decode(), Label(), SleepyAsync()).split()
    assert [type(s) for s in cpu.steps] == [Decode, Label]
    assert [type(s) for s in io.steps] == [SleepyAsync]
    assert not cpu.is_async and io.is_async
