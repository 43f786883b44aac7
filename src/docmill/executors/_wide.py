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
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from docmill.document import DocumentRef
from docmill.executors._wire import Item
from docmill.executors._worker import IDLE, Task, WorkerLimits, encode_done, now, receive, retire_reason


class _Chunk:
    """One chunk's progress: results so far, items handed back unstarted, items still open."""

    __slots__ = ("id", "results", "leftover", "open")

    def __init__(self, chunk_id: int, size: int) -> None:
        self.id, self.open = chunk_id, size
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
        self.threads = ThreadPoolExecutor(limits.width) if limits.inner == "threads" else None

    async def serve(self) -> None:
        from docmill.executors.aio import StepThreads

        loop = asyncio.get_running_loop()
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
            self._send(chunk)
            return
        self.backlog.extend((chunk, item) for item in items)
        idle = (k for k in range(self.limits.width) if k not in self.lanes)
        wanted = min(self.limits.width - len(self.lanes), len(self.backlog))
        for k in list(itertools.islice(idle, wanted)):
            self.lanes[k] = asyncio.create_task(self._lane(k))

    async def _quiet(self) -> None:
        """Until every lane has ended (the backlog is empty or the worker retires)."""
        while self.lanes:
            await asyncio.gather(*self.lanes.values())

    async def _lane(self, k: int) -> None:
        slots, at = self.slots, self.base + 2 * k
        try:
            while self.backlog and self.retiring is None:
                chunk, (seq, ref) = self.backlog.popleft()
                slots[at + 1] = now()
                slots[at] = seq
                try:
                    result = await self._run(ref)
                finally:
                    slots[at] = IDLE
                self.done += 1
                self.retiring = retire_reason(self.limits, self.done)  # before the chunk may go
                chunk.results.append((seq, result))
                self._close_one(chunk)
        finally:
            del self.lanes[k]

    async def _run(self, ref: DocumentRef) -> Any:
        if self.threads is None:
            return await self.task.arun(ref)  # type: ignore[attr-defined]
        return await asyncio.get_running_loop().run_in_executor(self.threads, self.task.run, ref)

    def _close_one(self, chunk: _Chunk) -> None:
        chunk.open -= 1
        if chunk.open == 0:
            self._send(chunk)

    def _hand_back(self) -> None:
        """Retiring: what no lane started goes back to the parent with its chunk."""
        while self.backlog:
            chunk, item = self.backlog.popleft()
            chunk.leftover.append(item)
            self._close_one(chunk)

    def _send(self, chunk: _Chunk) -> None:
        self.conn.send_bytes(encode_done(chunk.id, chunk.results, chunk.leftover, self.retiring))
