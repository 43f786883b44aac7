"""The wide worker of ``hybrid``: up to ``width`` documents at once on one event loop.

Chunks stream in over the pipe while earlier ones run, so the worker never idles between chunks.
Their items queue in arrival order and ``width`` lanes take them one after another; lane ``k``
owns slot ``k`` of the worker's shared-memory row, where it publishes the document it runs. A
chunk goes back to the parent as soon as its last document ends. A ``solo`` chunk (a document
suspected of killing a worker) runs with nothing else beside it.

Lanes rather than a task per document: the hand-off from one document to the next costs no task,
no done-callback and no extra pass of the loop (``benchmarks/bench_strategies.py latency``).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from docmill.executors.pool.throttle import CpuThrottle
from docmill.executors.pool.wire import Item
from docmill.executors.pool.worker import IDLE, Task, WorkerLimits, encode_done, now, receive, retire_reason


class _Chunk:
    """One chunk's progress: results so far, items handed back unstarted, items still open."""

    __slots__ = ("id", "results", "leftover", "open", "cpu")

    def __init__(self, chunk_id: int, size: int) -> None:
        self.id, self.open = chunk_id, size
        self.cpu: float | None = None  # thread lanes: CPU seconds its documents took, summed
        self.results: list[tuple[int, Any]] = []
        self.leftover: list[Item] = []


class WideLoop:
    """Serves the parent's chunks with ``limits.width`` lanes (threads or coroutines inside)."""

    def __init__(self, task: Task, conn: Connection, slots: Any, base: int, limits: WorkerLimits) -> None:
        self.task, self.conn, self.slots, self.base, self.limits = task, conn, slots, base, limits
        self.backlog: collections.deque[tuple[_Chunk, Item]] = collections.deque()
        self.lanes: dict[int, asyncio.Task[None]] = {}
        self.done = 0
        self.retiring: str | None = None
        self.lock = threading.Lock()  # chunk bookkeeping and the pipe, shared by thread lanes
        self.threads = ThreadPoolExecutor(limits.width) if limits.inner == "threads" else None
        # Coroutine lanes cost nothing while they wait; thread lanes fight over the GIL when busy.
        self.throttle = CpuThrottle(limits.width) if self.threads is not None else None

    async def serve(self) -> None:
        from docmill.executors.aio import StepThreads

        loop = self.loop = asyncio.get_running_loop()
        loop.set_default_executor(StepThreads(8, thread_name_prefix="docmill-steps"))
        inbox: asyncio.Queue[tuple[int, list[Item], bool] | None] = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: inbox.put_nowait(receive(self.conn)))
        try:
            while self.retiring is None and (message := await inbox.get()) is not None:
                chunk_id, items, solo = message
                if solo:
                    await self._quiet()
                self._enqueue(_Chunk(chunk_id, len(items)), items)
                if solo:
                    await self._quiet()
            await self._quiet()
            self._hand_back()
        finally:
            loop.remove_reader(self.conn.fileno())
            if self.threads is not None:
                self.threads.shutdown(wait=False, cancel_futures=True)

    def _enqueue(self, chunk: _Chunk, items: list[Item]) -> None:
        if not items:
            with self.lock:
                self._send(chunk)
            return
        self.backlog.extend((chunk, item) for item in items)
        self._open_lanes()

    def _open_lanes(self) -> None:
        """Start lanes for the backlog, up to the current lane limit."""
        allowed = self._allowed()
        idle = (k for k in range(allowed) if k not in self.lanes)
        wanted = min(allowed - len(self.lanes), len(self.backlog))
        for k in list(itertools.islice(idle, max(0, wanted))):
            self.lanes[k] = asyncio.create_task(self._lane(k))

    def _allowed(self) -> int:
        return self.limits.width if self.throttle is None else self.throttle.limit

    async def _quiet(self) -> None:
        """Until every lane has ended (the backlog is empty or the worker retires)."""
        while self.lanes:
            await asyncio.gather(*self.lanes.values())

    async def _lane(self, k: int) -> None:
        try:
            if self.threads is None:
                await self._coroutine_lane(k)
            else:
                await asyncio.get_running_loop().run_in_executor(self.threads, self._thread_lane, k)
        finally:
            del self.lanes[k]
            if self.retiring is None and self.backlog:
                self._open_lanes()  # items that came while this lane was ending
            elif self.retiring is not None and not self.lanes:
                self._hand_back()  # now: the parent learns of the retirement from these chunks

    async def _coroutine_lane(self, k: int) -> None:
        at = self.base + 2 * k
        while (work := self._take(k)) is not None:
            chunk, (seq, ref) = work
            self._publish(at, seq)
            try:
                result = await self.task.arun(ref)  # type: ignore[attr-defined]
            finally:
                self.slots[at] = IDLE
            with self.lock:
                self._finish(chunk, seq, result)

    def _thread_lane(self, k: int) -> None:
        """A lane in its own thread: documents one after another, no trip through the loop."""
        assert self.throttle is not None
        at = self.base + 2 * k
        while (work := self._take(k)) is not None:
            chunk, (seq, ref) = work
            self._publish(at, seq)
            cpu = time.thread_time()
            try:
                result = self.task.run(ref)
            finally:
                self.slots[at] = IDLE
            with self.lock:
                chunk.cpu = (chunk.cpu or 0.0) + time.thread_time() - cpu
                self._finish(chunk, seq, result)
                grew = self.throttle.tick()
            if grew:
                self.loop.call_soon_threadsafe(self._open_lanes)

    def _take(self, k: int) -> tuple[_Chunk, Item] | None:
        if self.retiring is not None or k >= self._allowed():
            return None
        try:
            return self.backlog.popleft()
        except IndexError:  # another lane took the last one
            return None

    def _publish(self, at: int, seq: int) -> None:
        self.slots[at + 1] = now()
        self.slots[at] = seq

    def _finish(self, chunk: _Chunk, seq: int, result: Any) -> None:
        self.done += 1
        self.retiring = retire_reason(self.limits, self.done)  # before the chunk may go
        chunk.results.append((seq, result))
        self._close_one(chunk)

    def _close_one(self, chunk: _Chunk) -> None:
        chunk.open -= 1
        if chunk.open == 0:
            self._send(chunk)

    def _hand_back(self) -> None:
        """Retiring: what no lane started goes back to the parent with its chunk."""
        with self.lock:
            while self.backlog:
                chunk, item = self.backlog.popleft()
                chunk.leftover.append(item)
                self._close_one(chunk)

    def _send(self, chunk: _Chunk) -> None:
        self.conn.send_bytes(encode_done(chunk.id, chunk.results, chunk.leftover, self.retiring, chunk.cpu))
