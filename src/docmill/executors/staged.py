"""StagedExecutor: CPU stages in worker processes feeding an I/O stage on an event loop in the parent.

The pipeline is cut where its first async step starts (``Pipeline.split``)::

    refs ─▶ workers: load → extract (CPU, one document at a time per core)
                │  loaded Documents (text, no raw bytes) back to the parent, per chunk
                ▼
            parent's event loop: classify (async, e.g. LLM calls), hundreds awaiting at once
                ▼
            Outcomes

Both stages are bounded: ``max_in_flight`` counts a document from the moment its ref is pulled
until its Outcome is yielded, so a slow LLM holds back extraction instead of piling up documents.
The CPU stage has the crash handling of the process pool; the I/O stage has Job's retries and time
limit, applied to each stage separately.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

from docmill.document import Document, DocumentRef
from docmill.executors.aio import LoopThread
from docmill.executors.work_queue import QueueExecutor
from docmill.job import Job
from docmill.outcome import Outcome, Status
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor


class _Capture(Processor):
    """The last step of the CPU stage: keeps the document so the stage can hand it on."""

    name = "stage-capture"

    def __init__(self) -> None:
        self.last: Document | None = None

    def process(self, doc: Document) -> Document:
        self.last = doc
        return doc


class CpuStage:
    """What the workers run: the job's leading sync steps; returns a Document or a final Outcome."""

    def __init__(self, job: Job) -> None:
        self.capture = _Capture()
        cpu, _ = job.pipeline.split()
        steps = Pipeline(*cpu.steps, self.capture)
        self.job = Job(job.source, steps, retry=job.retry, timeout=job.timeout, clock=job.clock)

    def setup(self) -> None:
        self.job.setup()

    def teardown(self) -> None:
        self.job.teardown()

    def run(self, ref: DocumentRef) -> Document | Outcome:
        self.capture.last = None
        outcome = self.job.run(ref)
        doc, self.capture.last = self.capture.last, None
        if doc is None or outcome.status is not Status.OK:
            return outcome
        return doc.evolve(content=None) if doc.text is not None else doc


class _Handoff:
    """The I/O stage's source: documents the CPU stage already loaded, by ref id."""

    root = "handoff"

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    def __iter__(self) -> Iterator[DocumentRef]:
        return iter(())

    def count(self) -> int | None:
        return None

    def load(self, ref: DocumentRef) -> Document:
        return self.docs.pop(ref.id)


class StagedExecutor(QueueExecutor):
    """``workers`` CPU processes (default: usable cores) ‖ ``io_concurrency`` awaiting documents
    (default 256) on the parent's event loop."""

    name = "staged"

    def __init__(self, workers: int | None = None, *, io_concurrency: int = 256, **options: Any) -> None:
        super().__init__(workers, **options)
        self.io_concurrency = io_concurrency
        self._io: LoopThread[tuple[int, DocumentRef], tuple[int, Outcome]] | None = None
        self._io_busy = 0
        self._to_io: list[tuple[int, DocumentRef]] = []

    def task(self, job: Job) -> CpuStage:
        return CpuStage(job)

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        _, io = job.pipeline.split()
        self._handoff = _Handoff()
        io_job = Job(self._handoff, io, retry=job.retry, timeout=job.timeout, clock=job.clock)
        io_job.setup()
        self._bell, bell = socket.socketpair()
        self._bell.setblocking(False)
        bell.setblocking(False)

        async def work(item: tuple[int, DocumentRef]) -> tuple[int, Outcome]:
            return item[0], await io_job.arun(item[1])

        self._io = LoopThread(work, self.io_concurrency, wakeup=lambda: _ring(bell))
        try:
            yield from super().map_unordered(job, refs)
        finally:
            self._io.stop()
            self._io = None
            io_job.teardown()
            self._bell.close()
            bell.close()

    def accept(self, seq: int, result: Any) -> Outcome | None:
        if isinstance(result, Outcome):
            return result
        self._handoff.docs[result.ref.id] = result
        self._io_busy += 1
        self._to_io.append((seq, result.ref))
        return None

    def accepted(self) -> None:
        if self._to_io:
            assert self._io is not None
            self._io.submit(self._to_io)  # one hand-off to the loop per batch
            self._to_io = []

    def later_stages_busy(self) -> bool:
        return self._io_busy > 0

    def wakeups(self) -> list[Any]:
        return [self._bell]

    def later_results(self) -> list[tuple[int, Outcome]]:
        assert self._io is not None
        try:
            while self._bell.recv(4096):
                pass
        except BlockingIOError:
            pass
        done: list[tuple[int, Outcome]] = []
        while not self._io.results.empty():
            done.extend(self._io.results.get())
        self._io_busy -= len(done)
        return done

    def describe(self) -> str:
        return f"staged(cpu_workers={self.workers}, io_concurrency={self.io_concurrency})"


def _ring(bell: socket.socket) -> None:
    try:
        bell.send(b"!")
    except (BlockingIOError, OSError):
        pass  # already ringing (the buffer is full) or closed at shutdown
