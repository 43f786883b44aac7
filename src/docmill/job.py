"""``Job``: the unit an executor runs. ``run``/``arun`` never raise for a document's failure.

A Job binds a source (to load refs), a pipeline, a retry policy, a per-document time limit and a
clock. It is picklable; executors call ``setup()`` once per worker. Layers, outermost first::

    run(ref) → _load(ref) → retry loop (one decision: RetryPolicy.delay) → _deadline → pipeline.process

A ref with ``pages`` is one part of a split PDF (``docmill.page_split``): only the first step (the
extraction) runs, and the part's text travels back in its result for the runner to join.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document, DocumentRef
from docmill.errors import ProcessingTimeout
from docmill.outcome import ErrorInfo, Outcome, Status, Timings
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor
from docmill.retry import RetryPolicy
from docmill.sources.base import Source

_CAUGHT = (Exception, SystemExit)  # a processor calling sys.exit fails its document, not the run


class Job:
    """Load → pipeline → Outcome, with retries and a per-document time limit."""

    def __init__(
        self,
        source: Source,
        pipeline: Processor,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.source = source
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
        self.retry = retry or RetryPolicy(max_attempts=1)
        self.timeout = timeout
        self.clock = clock
        self.worker = ""

    def fingerprint(self) -> str:
        return self.pipeline.fingerprint()

    def setup(self) -> None:
        """Once per worker: build heavy state and name the worker."""
        self.worker = f"{os.getpid()}:{threading.current_thread().name}"
        self.pipeline.setup()

    def teardown(self) -> None:
        self.pipeline.teardown()

    def run(self, ref: DocumentRef) -> Outcome:
        """Process one document; every failure becomes an Outcome."""
        started = self.clock.wall()
        return self._drive(self._load(ref, started), started)

    def run_document(self, doc: Document) -> Outcome:
        """Process a document already in hand (a split PDF's joined text); never raises either."""
        return self._drive(doc, self.clock.wall())

    def _drive(self, doc: Document | Outcome, started: float) -> Outcome:
        attempt = 0
        while isinstance(doc, Document):
            attempt += 1
            try:
                with _deadline(self.timeout):
                    return self._succeeded(self._steps(doc.ref).process(doc), attempt, started)
            except _CAUGHT as exc:
                step = self._decide(doc, exc, attempt, started)
            if isinstance(step, Outcome):
                return step
            self.clock.sleep(step)
        return doc

    async def arun(self, ref: DocumentRef) -> Outcome:
        """The coroutine form of ``run``: async steps awaited, sync steps in a thread."""
        started = self.clock.wall()
        doc = self._load(ref, started)
        attempt = 0
        while isinstance(doc, Document):
            attempt += 1
            try:
                return self._succeeded(await self._aprocess(doc), attempt, started)
            except _CAUGHT as exc:
                step = self._decide(doc, exc, attempt, started)
            if isinstance(step, Outcome):
                return step
            await self.clock.asleep(step)
        return doc

    def _load(self, ref: DocumentRef, started: float) -> Document | Outcome:
        try:
            return self.source.load(ref)
        except _CAUGHT as exc:
            return self._failed(ref, None, exc, 1, started)

    def _decide(self, doc: Document, exc: BaseException, attempt: int, started: float) -> float | Outcome:
        """The one retry decision both drivers share: seconds to wait, or the final Outcome."""
        wait = self.retry.delay(attempt, exc)
        return self._failed(doc.ref, doc.sha256, exc, attempt, started) if wait is None else wait

    async def _aprocess(self, doc: Document) -> Document:
        # asyncio.timeout, not wait_for: wait_for wraps every document in one more Task
        if self.timeout is None:
            return await self._steps(doc.ref).aprocess(doc)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._steps(doc.ref).aprocess(doc)
        except TimeoutError as exc:
            raise ProcessingTimeout(f"no result within {self.timeout:g} s") from exc

    def _steps(self, ref: DocumentRef) -> Pipeline:
        """The whole pipeline, or only its extraction for one part of a split PDF."""
        return self.pipeline if ref.pages is None else Pipeline(*self.pipeline.steps[:1])

    def _succeeded(self, doc: Document, attempts: int, started: float) -> Outcome:
        result: dict[str, Any] = dict(doc.metadata)
        if doc.text is not None:
            result["chars"] = len(doc.text)
            if doc.ref.pages is not None:
                result["text"] = doc.text  # a part's text, for the runner to join
        status = Status.EMPTY if doc.is_empty else Status.OK
        return Outcome(doc.ref, status, doc.sha256, result, None, attempts, self._timings(started))

    def _failed(
        self, ref: DocumentRef, sha: str | None, exc: BaseException, attempts: int, started: float
    ) -> Outcome:
        error = ErrorInfo.from_exception(exc)
        usage = getattr(exc, "usage", None)  # spend a processor was billed for before failing
        result = dict(usage) if usage else None
        return Outcome(ref, Status.FAILED, sha, result, error, attempts, self._timings(started))

    def _timings(self, started: float) -> Timings:
        return Timings(started, self.clock.wall(), self.worker)


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise ProcessingTimeout in this thread after ``seconds`` (main thread only: SIGALRM).

    Elsewhere the executor's watchdog enforces the limit (a worker thread cannot be interrupted).
    """
    in_main = threading.current_thread() is threading.main_thread()
    usable = seconds and hasattr(signal, "setitimer") and in_main
    if not usable:
        yield
        return

    def _expire(signum: int, frame: FrameType | None) -> None:
        raise ProcessingTimeout(f"no result within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds or 0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
