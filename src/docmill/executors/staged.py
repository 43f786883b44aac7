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

Built by composition: a :class:`QueueExecutor` runs the CPU stage (``stream`` hands back each
wait's results), and an :class:`IoStage` runs the rest on a :class:`LoopThread`. The loop's
results ring a socket the queue's wait also watches, so one thread serves both stages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Self

from docmill.document import Document, DocumentRef
from docmill.executors.aio import LoopThread
from docmill.executors.base import Executor, ExecutorStats
from docmill.executors.sizing import MAX_AWAITING, cap_count
from docmill.executors.work_queue import QueueExecutor
from docmill.job import Job
from docmill.outcome import Outcome, Status
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor
from docmill.settings import check


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


class IoStage:
    """The job's steps after the CPU stage, on an event loop in a helper thread of the parent.

    ``submit`` hands it documents the CPU stage loaded; ``ready`` collects what finished since
    (without blocking) and ``take`` waits for the next batch. ``bell`` becomes readable whenever a
    batch is ready, for a ``wait`` on it beside other connections.
    """

    def __init__(self, job: Job, concurrency: int) -> None:
        _, steps = job.pipeline.split()
        self.handoff = _Handoff()
        self.job = Job(self.handoff, steps, retry=job.retry, timeout=job.timeout, clock=job.clock)
        self.concurrency = concurrency
        self.busy = 0  # documents submitted and not yet collected

    def __enter__(self) -> Self:
        self.job.setup()
        self.bell, self._ringer = socket.socketpair()
        self.bell.setblocking(False)
        self._ringer.setblocking(False)
        self.loop = LoopThread(self.job.arun, self.concurrency, wakeup=lambda: _ring(self._ringer))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.stop()
        self.job.teardown()
        self.bell.close()
        self._ringer.close()

    def held(self) -> int:
        return self.busy

    def submit(self, docs: list[Document]) -> None:
        """Start ``docs`` on the loop, in one hand-off."""
        if not docs:
            return
        for doc in docs:
            self.handoff.docs[doc.ref.id] = doc
        self.busy += len(docs)
        self.loop.submit([doc.ref for doc in docs])

    def ready(self) -> list[Outcome]:
        """Outcomes finished since the last call (empty if none)."""
        with contextlib.suppress(BlockingIOError):
            while self.bell.recv(4096):
                pass
        done: list[Outcome] = []
        while not self.loop.results.empty():
            done.extend(self.loop.results.get())
        self.busy -= len(done)
        return done

    def take(self) -> list[Outcome]:
        """The next batch of outcomes, waiting for it."""
        done = self.loop.take()
        self.busy -= len(done)
        return done


class StagedExecutor(Executor):
    """``workers`` CPU processes (default: usable cores) ‖ ``io_concurrency`` awaiting documents
    (default 256) on the parent's event loop."""

    name = "staged"
    needs_processes = True
    overlaps_io = True
    io_slots = "in_flight"

    @dataclass(frozen=True, kw_only=True)
    class Options(QueueExecutor.Options):
        """The CPU stage's pool options (as ``queue``) and ``io_concurrency``: documents awaiting
        at once in the I/O stage."""

        io_concurrency: int = 256

        def __post_init__(self) -> None:
            QueueExecutor.Options.__post_init__(self)
            check(self.io_concurrency >= 1, "io_concurrency", self.io_concurrency, "must be >= 1")

    options: StagedExecutor.Options

    def __init__(
        self, workers: int | None = None, *, options: Executor.Options | None = None, **settings: Any
    ) -> None:
        super().__init__(workers, options=options, **settings)
        self.io_concurrency = cap_count(self.options.io_concurrency, MAX_AWAITING, "io_concurrency")
        self.cpu = QueueExecutor(workers, options=_cpu_options(self.options, self.max_in_flight))
        self.workers = self.cpu.workers  # as the pool sized itself
        self._io: IoStage | None = None
        self._completed = 0

    def default_in_flight(self) -> int:
        return 8192  # as the process strategies: chunk sizing keeps the time held per worker small

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        with IoStage(job, self.io_concurrency) as io:
            self._io = io
            try:
                yield from self._run(job, refs, io)
            finally:
                self._io = None

    def _run(self, job: Job, refs: Iterable[DocumentRef], io: IoStage) -> Iterator[Outcome]:
        batches = self.cpu.stream(job, refs, task=CpuStage(job), wakeups=[io.bell], held=io.held)
        with contextlib.closing(batches):
            for batch in batches:
                yield from self._yield(self._hand_on(batch, io))
                yield from self._yield(io.ready())
        while io.busy:
            yield from self._yield(io.take())

    def _hand_on(self, batch: list[Document | Outcome], io: IoStage) -> list[Outcome]:
        """Send the CPU stage's documents on to ``io``; returns the outcomes it ended itself."""
        io.submit([result for result in batch if isinstance(result, Document)])
        return [result for result in batch if isinstance(result, Outcome)]

    def _yield(self, outcomes: list[Outcome]) -> Iterator[Outcome]:
        for outcome in outcomes:
            self._completed += 1
            yield outcome

    def statistics(self) -> ExecutorStats:
        in_io = self._io.busy if self._io is not None else 0
        cpu = self.cpu.statistics()
        return dataclasses.replace(cpu, in_flight=cpu.in_flight + in_io, completed=self._completed)

    def describe(self) -> str:
        return f"staged(cpu_workers={self.cpu.workers}, io_concurrency={self.io_concurrency})"

    def close(self) -> None:
        self.cpu.close()
        super().close()


def _cpu_options(options: StagedExecutor.Options, max_in_flight: int) -> QueueExecutor.Options:
    """The CPU stage's options: the pool's share of ``options``; both stages share one bound."""
    shared = {f.name: getattr(options, f.name) for f in dataclasses.fields(QueueExecutor.Options)}
    return QueueExecutor.Options(**{**shared, "max_in_flight": max_in_flight})


def _ring(bell: socket.socket) -> None:
    try:
        bell.send(b"!")
    except (BlockingIOError, OSError):
        pass  # already ringing (the buffer is full) or closed at shutdown
