"""AsyncioExecutor: one event loop, thousands of documents awaiting at once.

For latency-bound pipelines (an LLM behind an HTTP API). The loop runs in a helper thread so that
``map_unordered`` stays a plain iterator the runner can drive; refs go to the loop in batches and
outcomes come back in batches, one thread hand-off per batch rather than per document. Async steps
are awaited natively (``job.arun``); sync steps run in a thread pool owned by the executor, whose
threads are abandoned, not awaited, when a document overruns its time limit.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from docmill.document import DocumentRef
from docmill.errors import BrokenExecutorError, PermanentError
from docmill.executors.base import Executor, ExecutorStats
from docmill.executors.pool.gc_pause import fewer_collections
from docmill.executors.sizing import MAX_AWAITING, MAX_THREADS, cap_count
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.settings import check

T = TypeVar("T")
R = TypeVar("R")


class StepThreads(ThreadPoolExecutor):
    """The thread pool behind ``asyncio.to_thread`` for sync steps.

    A ``SystemExit`` raised in a thread would reach the awaiting task as itself, and asyncio lets
    SystemExit escape the event loop, ending the strategy; here it becomes the document's error.
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(_contained, fn, *args, **kwargs)


def _contained(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    try:
        return fn(*args, **kwargs)
    except SystemExit as exc:
        raise PermanentError(f"SystemExit: {exc.code} raised in a worker thread") from exc


class LoopThread(Generic[T, R]):
    """An event loop in a helper thread running ``work(item)`` for submitted items.

    At most ``concurrency`` run at once; results are handed back in batches through ``results``
    (and, if given, a byte written to ``wakeup`` so a ``select`` on it wakes).
    """

    def __init__(
        self,
        work: Callable[[T], Awaitable[R]],
        concurrency: int,
        *,
        threads: int = 8,
        wakeup: Callable[[], None] | None = None,
    ) -> None:
        self.work, self.concurrency, self.wakeup = work, concurrency, wakeup
        self.results: queue.SimpleQueue[list[R]] = queue.SimpleQueue()
        self.loop = asyncio.new_event_loop()
        self.pool = StepThreads(threads, thread_name_prefix="docmill-aio")
        self._buffer: list[R] = []
        self._lanes: set[asyncio.Task[None]] = set()  # lanes still taking items
        # Items wait here, not as tasks parked on a semaphore: a live task is ~1 KiB the garbage
        # collector scans again and again, and at 2,048 in flight that scanning cost a third of
        # the loop's CPU (benchmarks/bench_strategies.py latency).
        self._backlog: collections.deque[T] = collections.deque()
        self.thread = threading.Thread(target=self._run, name="docmill-asyncio", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.set_default_executor(self.pool)
        try:
            with fewer_collections():
                self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self._cancel_all())
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.loop.close()

    def submit(self, items: list[T]) -> None:
        """Start ``items`` (thread-safe; called from the consumer's thread)."""
        self.loop.call_soon_threadsafe(self._start, items)

    def _start(self, items: list[T]) -> None:
        self._backlog.extend(items)
        for _ in range(min(len(self._backlog), self.concurrency - len(self._lanes))):
            self._lanes.add(self.loop.create_task(self._lane()))

    async def _lane(self) -> None:
        """One of up to ``concurrency`` coroutines running backlog items one after another.

        A lane ends when the backlog is empty; ``_start`` opens lanes again when items arrive.
        Lanes, not a task per item: the hand-off from one document to the next costs no task,
        no done-callback and no extra pass of the loop, and at 512 in flight that was ~3 % of
        the throughput (benchmarks/bench_strategies.py latency).
        """
        backlog = self._backlog
        try:
            while backlog:
                result = await self.work(backlog.popleft())
                if not self._buffer:
                    self.loop.call_soon(self._flush)  # after the others ending in this loop pass
                self._buffer.append(result)
        finally:  # now, not in a done-callback: _start may run before that one would
            self._lanes.discard(asyncio.current_task())

    def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        self.results.put(batch)
        if self.wakeup is not None:
            self.wakeup()

    def take(self, timeout: float = 1.0) -> list[R]:
        """The next batch of results; raises BrokenExecutorError if the loop thread died."""
        while True:
            try:
                return self.results.get(timeout=timeout)
            except queue.Empty:
                if not self.thread.is_alive():
                    raise BrokenExecutorError("the event loop thread stopped") from None

    async def _cancel_all(self) -> None:
        self._backlog.clear()
        lanes = list(self._lanes)
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)

    def stop(self) -> None:
        """Cancel what is running, stop the loop and join its thread. Idempotent."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()


class AsyncioExecutor(Executor):
    """Up to ``workers`` documents awaiting at once (default 64) on one event loop.

    ``sync_threads`` (default 8) sizes the thread pool for the pipeline's synchronous steps.
    """

    name = "asyncio"
    io_slots = "in_flight"

    @dataclass(frozen=True, kw_only=True)
    class Options(Executor.Options):
        """``max_in_flight`` and ``sync_threads``: the threads running the pipeline's sync steps."""

        sync_threads: int = 8

        def __post_init__(self) -> None:
            Executor.Options.__post_init__(self)
            check(self.sync_threads >= 1, "sync_threads", self.sync_threads, "must be >= 1")

    options: AsyncioExecutor.Options

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self.sync_threads = cap_count(self.options.sync_threads, MAX_THREADS, "sync_threads")
        self._loop: LoopThread[DocumentRef, Outcome] | None = None
        self._in_flight = self._completed = 0

    def default_workers(self) -> int:
        return 64

    def bounded(self, workers: int, *, explicit: bool) -> int:
        return cap_count(workers, MAX_AWAITING, "documents awaiting (workers)")

    def default_in_flight(self) -> int:
        return 2 * self.workers  # the next batch waits in the loop while the current one runs

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        job.setup()
        loop = self._loop = LoopThread(job.arun, self.workers, threads=self.sync_threads)
        try:
            yield from self._drive(loop, iter(refs))
        finally:
            loop.stop()
            self._loop = None
            job.teardown()

    def _drive(
        self, loop: LoopThread[DocumentRef, Outcome], refs: Iterator[DocumentRef]
    ) -> Iterator[Outcome]:
        more = True
        while True:
            room = self.max_in_flight - self._in_flight
            batch = [ref for _, ref in zip(range(room), refs, strict=False)] if more else []
            more = more and len(batch) == room
            if batch:
                loop.submit(batch)
                self._in_flight += len(batch)
            if self._in_flight == 0:
                return
            outcomes = loop.take()
            self._in_flight -= len(outcomes)
            self._completed += len(outcomes)
            yield from outcomes

    def statistics(self) -> ExecutorStats:
        return ExecutorStats(workers=self.workers, in_flight=self._in_flight, completed=self._completed)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
        super().close()
