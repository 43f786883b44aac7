"""ThreadExecutor: a pool of threads in this process, fed through a bounded submission window.

For I/O-bound synchronous pipelines (blocking HTTP, slow disks). CPU-bound Python gains nothing
here (the GIL). The pool is our own rather than ``ThreadPoolExecutor`` because a thread stuck in a
document past the per-document timeout must be *abandoned and replaced*: the executor yields
FAILED(ProcessingTimeout) for that document at once and hires a new thread, so the run carries on.
A thread cannot be interrupted, so each abandoned thread keeps running until its document returns:
at most one leaked thread per timed-out document, and only while that document is still running.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docmill.document import DocumentRef
from docmill.executors.base import Executor, ExecutorStats, default_workers
from docmill.executors.pool.outcomes import timed_out
from docmill.executors.sizing import MAX_THREADS, cap_count
from docmill.job import Job
from docmill.outcome import Outcome

_now = time.monotonic  # scheduling only: compared with the same clock in the threads


@dataclass(eq=False)
class _Slot:
    """What one thread is working on; the lock settles the race between finishing and abandoning."""

    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    ref: DocumentRef | None = None
    started: float = 0.0
    abandoned: bool = False


class _Crew:
    """The threads, their inbox (refs) and outbox (outcomes)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.inbox: queue.SimpleQueue[DocumentRef | None] = queue.SimpleQueue()
        self.outbox: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.slots: dict[_Slot, threading.Thread] = {}
        self.hired = 0

    def hire(self) -> None:
        self.hired += 1
        slot = _Slot(f"docmill-thread-{self.hired}")
        thread = threading.Thread(target=self._work, args=(slot,), name=slot.name, daemon=True)
        self.slots[slot] = thread
        thread.start()

    def _work(self, slot: _Slot) -> None:
        loop = asyncio.new_event_loop() if self.job.pipeline.is_async else None
        try:
            self._serve(slot, loop)
        finally:
            if loop is not None:
                loop.close()

    def _serve(self, slot: _Slot, loop: asyncio.AbstractEventLoop | None) -> None:
        while (ref := self.inbox.get()) is not None:
            with slot.lock:
                slot.ref, slot.started = ref, _now()
            outcome = self.job.run(ref) if loop is None else loop.run_until_complete(self.job.arun(ref))
            with slot.lock:
                if slot.abandoned:
                    return  # the executor already yielded a timeout for this document
                slot.ref = None
            self.outbox.put(outcome)

    def abandon_overdue(self, limit: float) -> list[Outcome]:
        """Give up on documents running past ``limit`` seconds; a new thread replaces each."""
        now, expired = _now(), []
        for slot in list(self.slots):
            with slot.lock:
                if slot.ref is None or now - slot.started < limit:
                    continue
                slot.abandoned = True
                expired.append(timed_out(slot.ref, limit, started=slot.started, now=now, worker=slot.name))
            del self.slots[slot]
            self.hire()
        return expired

    def stop(self) -> None:
        """Drop queued refs, let each live thread finish its document, and join them."""
        while True:
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                break
        for _ in self.slots:
            self.inbox.put(None)
        for thread in self.slots.values():
            thread.join()
        self.slots.clear()


class ThreadExecutor(Executor):
    """``workers`` threads (default: cores + 4, at most 32) running ``job.run``.

    ``job.setup()`` runs once, in the calling thread: the threads share one set of processors,
    which must therefore be thread-safe. An async pipeline runs as ``job.arun`` on an event loop
    owned by each thread (a processor's own loop cannot serve several threads at once).
    """

    name = "threads"
    io_slots = "threads"

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self._crew: _Crew | None = None
        self._abandoned = self._in_flight = self._completed = 0

    def default_workers(self) -> int:
        return min(32, default_workers() + 4)

    def bounded(self, workers: int, *, explicit: bool) -> int:
        return cap_count(workers, MAX_THREADS, "threads")

    def default_in_flight(self) -> int:
        return 2 * self.workers

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        refs = self.fit_to_pending(refs)
        job.setup()
        crew = self._crew = _Crew(job)
        try:
            for _ in range(self.workers):
                crew.hire()
            yield from self._drive(crew, refs, job.timeout)
        finally:
            crew.stop()
            self._crew = None
            job.teardown()

    def _drive(self, crew: _Crew, refs: Iterator[DocumentRef], limit: float | None) -> Iterator[Outcome]:
        more = True
        tick = min(0.25, limit / 4) if limit else None
        while True:
            while more and self._in_flight < self.max_in_flight:
                ref = next(refs, None)
                if ref is None:
                    more = False
                    break
                crew.inbox.put(ref)
                self._in_flight += 1
            if self._in_flight == 0:
                return
            for outcome in self._collect(crew, limit, tick):
                self._in_flight -= 1
                self._completed += 1
                yield outcome

    def _collect(self, crew: _Crew, limit: float | None, tick: float | None) -> list[Outcome]:
        """At least one outcome, or the timeouts found while waiting for one."""
        outcomes: list[Outcome] = []
        try:
            outcomes.append(crew.outbox.get(timeout=tick))
        except queue.Empty:
            pass
        if limit:
            expired = crew.abandon_overdue(limit)
            self._abandoned += len(expired)
            outcomes.extend(expired)
        return outcomes

    def statistics(self) -> ExecutorStats:
        return ExecutorStats(
            workers=self.workers,
            in_flight=self._in_flight,
            completed=self._completed,
            replaced_workers=self._abandoned,
            detail=f"abandoned_threads={self._abandoned}",
        )
