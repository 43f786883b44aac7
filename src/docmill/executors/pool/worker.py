"""The one worker loop of the process-based strategies (processes, queue, batches, hybrid, staged).

A worker process calls ``task.setup()`` once, then serves chunks sent by the parent over its own
pipe until it receives ``None``::

    parent ── (chunk id, [(seq, ref), …], solo) ──▶ worker: for each ref: publish seq → task.run(ref)
    parent ◀── ("done", chunk id, [(seq, result), …], leftover, note, cpu) ── worker

``cpu`` is the CPU seconds the worker's thread spent on the chunk (``time.thread_time``; None from
a wide worker, whose chunks overlap): ``queue`` sizes chunks from it, since wall time on a busy
machine also counts the time the worker waited for a core.

Before each document the worker writes its sequence number and start time into its slot of a
shared ``RawArray`` (two stores, no IPC), so that when it dies the parent knows which document
killed it and when a document overruns its time limit. Results travel once per chunk. A result
that cannot be pickled becomes a FAILED outcome for its document alone. Between documents the worker
retires itself when it reached ``max_tasks`` or its resident memory passed ``max_rss``; what it
did not start goes back to the parent as ``leftover``.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from docmill.document import DocumentRef
from docmill.errors import ResourceLimitExceeded
from docmill.executors.pool.outcomes import failed
from docmill.executors.pool.wire import Item, pack_result, unpack_items

IDLE = -1.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
now = time.monotonic  # CLOCK_MONOTONIC is system-wide: the parent compares it with its own


class Task(Protocol):
    """What a worker runs: a Job, or a stage of one."""

    def setup(self) -> None: ...
    def teardown(self) -> None: ...
    def run(self, ref: DocumentRef) -> Any: ...


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """When a worker retires between documents, and how many documents it runs at once."""

    max_tasks: int | None = None  # documents per worker process, then a fresh one (leaky libraries)
    max_rss: int | None = None  # bytes of resident memory
    width: int = 1  # documents at once inside one worker (hybrid); 1 = a plain loop
    inner: str = "threads"  # how a wide worker runs them: "threads" or "asyncio"


def rss_bytes() -> int:
    """Resident memory of this process (one read of /proc/self/statm on Linux)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        import psutil

        return int(psutil.Process().memory_info().rss)


def receive(conn: Connection) -> tuple[int, list[Item], bool] | None:
    try:
        message = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return None  # the parent is gone
    if message is None:
        return None
    chunk_id, packed, solo = message
    return chunk_id, unpack_items(packed), solo


def _pump(conn: Connection, inbox: queue.SimpleQueue[tuple[int, list[Item], bool] | None]) -> None:
    """Read the parent's messages as they come, so its sends never wait on a busy worker.

    Without this, a worker blocked writing a large result while the parent is blocked writing the
    next chunk to the same worker would deadlock on two full pipe buffers.
    """
    while True:
        message = receive(conn)
        inbox.put(message)
        if message is None:
            return


def serve_serial(task: Task, conn: Connection, slots: Any, base: int, limits: WorkerLimits) -> None:
    inbox: queue.SimpleQueue[tuple[int, list[Item], bool] | None] = queue.SimpleQueue()
    threading.Thread(target=_pump, args=(conn, inbox), name="docmill-pump", daemon=True).start()
    done = 0
    while (message := inbox.get()) is not None:
        chunk_id, items, _solo = message
        results: list[tuple[int, Any]] = []
        cpu = time.thread_time()
        leftover, note = _run_items(task, items, slots, base, limits, done, results)
        cpu = time.thread_time() - cpu
        done += len(results)
        try:
            conn.send_bytes(encode_done(chunk_id, results, leftover, note, cpu))
        except OSError:
            return  # the parent is gone
        if note:
            return


def _run_items(
    task: Task,
    items: list[Item],
    slots: Any,
    base: int,
    limits: WorkerLimits,
    done: int,
    results: list[tuple[int, Any]],
) -> tuple[list[Item], str | None]:
    """Run ``items`` in order into ``results``; (what was not started, why the worker retires)."""
    for i, (seq, ref) in enumerate(items):
        slots[base + 1] = now()
        slots[base] = seq
        results.append((seq, task.run(ref)))
        slots[base] = IDLE
        note = retire_reason(limits, done + i + 1)
        if note and note.startswith("memory"):
            results[-1] = (seq, failed(ref, ResourceLimitExceeded(note + " after this document")))
        if note:
            return items[i + 1 :], note
    return [], None


def retire_reason(limits: WorkerLimits, done: int) -> str | None:
    if limits.max_tasks is not None and done >= limits.max_tasks:
        return f"max_tasks_per_child={limits.max_tasks} reached"
    if limits.max_rss is not None:
        rss = rss_bytes()
        if rss > limits.max_rss:
            return f"memory: worker RSS {rss >> 20} MiB passed the {limits.max_rss >> 20} MiB limit"
    return None


def encode_done(
    chunk_id: int,
    results: list[tuple[int, Any]],
    leftover: Sequence[Item],
    note: str | None,
    cpu: float | None = None,
) -> bytes:
    """Pickle a chunk's results; a result that will not pickle becomes a FAILED outcome."""
    unstarted = [seq for seq, _ in leftover]
    packed = [(seq, pack_result(result)) for seq, result in results]
    try:
        return pickle.dumps(("done", chunk_id, packed, unstarted, note, cpu), pickle.HIGHEST_PROTOCOL)
    except Exception:
        clean = [(seq, pack_result(_picklable(result))) for seq, result in results]
        return pickle.dumps(("done", chunk_id, clean, unstarted, note, cpu), pickle.HIGHEST_PROTOCOL)


def _picklable(result: Any) -> Any:
    try:
        pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        carrier = result[0] if isinstance(result, tuple) else result  # (Outcome, timings…)
        ref: DocumentRef = carrier.ref  # an Outcome, or a Document between stages
        wrapped = TypeError(f"result cannot be sent back from the worker: {exc}")
        return failed(ref, wrapped)
    return result
