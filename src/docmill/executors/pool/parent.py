"""The parent side of the process-based strategies: a small pool of worker processes.

Unlike ``ProcessPoolExecutor``, which breaks entirely when one worker dies, the parent here sends
each chunk to one specific worker, so it always knows what each worker holds. When a worker dies
(its ``sentinel`` fires) the document it was on ends CRASHED with the reason (signal or exit code),
the rest of what it held is handed back for re-dispatch, and a fresh worker takes its place. A
watchdog kills a worker whose current document overran the per-document timeout (plus a grace):
that document ends FAILED(ProcessingTimeout). A wide worker (hybrid) that dies with several
documents running cannot tell which one killed it; those become *suspects*, re-run one at a time.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from docmill.document import DocumentRef
from docmill.errors import BrokenExecutorError
from docmill.executors.pool.entry import serve
from docmill.executors.pool.outcomes import crashed, timed_out
from docmill.executors.pool.wire import Item, pack_items, unpack_result
from docmill.executors.pool.worker import IDLE, Task, WorkerLimits
from docmill.outcome import Outcome

_now = time.monotonic
_BARREN_DEATHS = 3  # workers dying in a row with no document running: setup itself is broken


@dataclass(eq=False)
class WorkerHandle:
    """One worker process and what it holds (chunks sent and not yet reported)."""

    index: int
    process: BaseProcess
    conn: Connection
    held: dict[int, list[Item]] = field(default_factory=dict)
    sent_at: dict[int, float] = field(default_factory=dict)
    killed_for: tuple[int, float] | None = None  # (seq, started) when the watchdog killed it
    retiring: bool = False

    @property
    def name(self) -> str:
        return f"worker-{self.index}:{self.process.pid}"


@dataclass
class Report:
    """What one wait produced: finished documents, work to re-dispatch, chunk timings.

    A timing is (worker, docs, wall seconds from send to report, worker CPU seconds or None).
    """

    finished: list[tuple[int, Any]] = field(default_factory=list)
    requeue: list[Item] = field(default_factory=list)
    suspects: list[Item] = field(default_factory=list)
    timings: list[tuple[int, int, float, float | None]] = field(default_factory=list)


class Pool:
    """``size`` worker processes running ``task``; see the module docstring."""

    def __init__(
        self,
        task: Task,
        size: int,
        *,
        limits: WorkerLimits | None = None,
        timeout: float | None = None,
        grace: float = 1.0,
        start_method: str | None = None,
    ) -> None:
        self.task, self.size, self.limits = task, size, limits or WorkerLimits()
        self.timeout, self.grace = timeout, grace
        self.ctx: Any = multiprocessing.get_context(start_method or _default_start_method())
        self.slots: Any = self.ctx.RawArray("d", [IDLE, 0.0] * size * self.limits.width)
        self.workers: list[WorkerHandle] = []
        self.chunk_ids = itertools.count()
        self.crashed = self.replaced = self.recycled = 0
        self._barren = 0
        self._closed = False

    # -------------------------------------------------------------------------------- life cycle

    def start(self) -> None:
        for i in range(self.size):
            self.workers.append(self._spawn(i))

    def _spawn(self, index: int) -> WorkerHandle:
        base = 2 * index * self.limits.width
        for k in range(base, base + 2 * self.limits.width, 2):
            self.slots[k] = IDLE
        parent_end, child_end = self.ctx.Pipe()
        args = (self.task, child_end, self.slots, base, self.limits, self._inherited(parent_end))
        process = self.ctx.Process(target=serve, args=args, name=f"docmill-worker-{index}", daemon=True)
        process.start()
        child_end.close()
        return WorkerHandle(index, process, parent_end)

    def _inherited(self, own: Connection) -> tuple[int, ...]:
        """The parent's pipe ends (this worker's and its siblings'), which a forked worker must close.

        Otherwise a worker holds both ends of its own pipe and its siblings' parent ends, and sees no
        end-of-file when the parent is killed: it would outlive it.
        """
        if self.ctx.get_start_method() != "fork":
            return ()
        return (own.fileno(), *(w.conn.fileno() for w in self.workers if not w.conn.closed))

    def shutdown(self, *, drain: bool) -> None:
        """Stop every worker: politely when ``drain`` (all work is done), at once otherwise."""
        if self._closed:
            return
        self._closed = True
        for worker in self.workers:
            self._say(worker, None)
        deadline = _now() + (5.0 if drain else 0.3)
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - _now()))
        for worker in self.workers:
            _stop_process(worker.process)
            worker.conn.close()
        self.workers = []

    # ------------------------------------------------------------------------------- scheduling

    def idle_capacity(self, depth: int) -> Iterator[WorkerHandle]:
        """Workers holding fewer than ``depth`` chunks, least loaded first."""
        return (w for w in sorted(self.workers, key=lambda w: len(w.held)) if len(w.held) < depth)

    def send(self, worker: WorkerHandle, items: list[Item], *, solo: bool = False) -> None:
        chunk_id = next(self.chunk_ids)
        worker.held[chunk_id] = items
        worker.sent_at[chunk_id] = _now()
        self._say(worker, (chunk_id, pack_items(items), solo))

    def _say(self, worker: WorkerHandle, message: object) -> None:
        try:
            worker.conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # it died; its sentinel will tell

    @property
    def holding(self) -> bool:
        return any(w.held for w in self.workers)

    def wait(self, timeout: float | None = None, extra: list[Any] | None = None) -> Report:
        """Block until some worker reports or dies, ``extra`` is ready, or ``timeout``; collect."""
        report = Report()
        tick = self._tick(timeout)
        by_object: dict[Any, WorkerHandle] = {w.conn: w for w in self.workers}
        by_object.update({w.process.sentinel: w for w in self.workers})
        ready = wait([*by_object, *(extra or ())], tick)
        for worker in {by_object[obj] for obj in ready if obj in by_object}:
            if worker.process.sentinel in ready or not self._drain(worker, report):
                self._bury(worker, report)
        self._watch()
        return report

    def _tick(self, timeout: float | None) -> float | None:
        if self.timeout is None:
            return timeout
        return min(timeout or 0.1, 0.1)

    def _drain(self, worker: WorkerHandle, report: Report) -> bool:
        """Read every message waiting from ``worker``; False when its pipe is closed."""
        try:
            while worker.conn.poll():
                self._accept(worker, pickle.loads(worker.conn.recv_bytes()), report)
        except (EOFError, OSError):
            return False
        return True

    def _accept(self, worker: WorkerHandle, message: tuple[Any, ...], report: Report) -> None:
        if message[0] == "setup-failed":
            raise BrokenExecutorError(f"a worker could not start: job setup failed: {message[1]}")
        _, chunk_id, results, unstarted, note, cpu = message
        refs = dict(worker.held.pop(chunk_id))
        sent = worker.sent_at.pop(chunk_id, _now())
        report.finished.extend((seq, unpack_result(packed, refs[seq])) for seq, packed in results)
        report.requeue.extend((seq, refs[seq]) for seq in unstarted)
        report.timings.append((worker.index, len(results), _now() - sent, cpu))
        self._barren = 0
        if note and not worker.retiring:
            worker.retiring = True
            self.recycled += 1
            self._say(worker, None)

    # ------------------------------------------------------------------------------ dead workers

    def _bury(self, worker: WorkerHandle, report: Report) -> None:
        """Account for a worker that exited: attribute its documents, then replace it."""
        self._drain(worker, report)
        worker.process.join(1.0)
        _stop_process(worker.process)
        worker.conn.close()
        running = self._running(worker)
        held = [item for chunk in worker.held.values() for item in chunk]
        culprits = self._judge(worker, held, running, report)
        report.requeue.extend(item for item in held if item[0] not in culprits)
        if culprits or worker.killed_for or worker.process.exitcode != 0:
            self.crashed += 1
        if not self._closed:
            self.workers[self.workers.index(worker)] = self._spawn(worker.index)
            self.replaced += 1

    def _judge(
        self, worker: WorkerHandle, held: list[Item], running: dict[int, float], report: Report
    ) -> set[int]:
        """Outcomes for the documents that (may have) killed ``worker``; returns their seqs."""
        refs = dict(held)
        if worker.killed_for is not None and worker.killed_for[0] in refs:
            seq, started = worker.killed_for
            report.finished.append((seq, self._timed_out(worker, refs[seq], started)))
            return {seq}
        live = {seq: started for seq, started in running.items() if seq in refs}
        if worker.process.exitcode == 0 or not live:
            self._count_barren(worker, held)
            return set()
        if len(live) == 1:
            ((seq, started),) = live.items()
            code = worker.process.exitcode
            outcome = crashed(refs[seq], code, started=started, now=_now(), worker=worker.name)
            report.finished.append((seq, outcome))
            return {seq}
        report.suspects.extend((seq, refs[seq]) for seq in live)
        return set(live)

    def _timed_out(self, worker: WorkerHandle, ref: DocumentRef, started: float) -> Outcome:
        return timed_out(ref, self.timeout or 0.0, started=started, now=_now(), worker=worker.name)

    def _count_barren(self, worker: WorkerHandle, held: list[Item]) -> None:
        if worker.process.exitcode == 0 and (worker.retiring or not held):
            return  # a clean retirement
        self._barren += 1
        if self._barren >= _BARREN_DEATHS:
            code = worker.process.exitcode
            raise BrokenExecutorError(f"workers keep dying before any document runs (last exit code {code})")

    def _running(self, worker: WorkerHandle) -> dict[int, float]:
        base = 2 * worker.index * self.limits.width
        pairs = ((self.slots[k], self.slots[k + 1]) for k in range(base, base + 2 * self.limits.width, 2))
        return {int(seq): started for seq, started in pairs if seq != IDLE}

    def _watch(self) -> None:
        """Kill workers whose document overran the time limit (the sentinel reports it next wait)."""
        if self.timeout is None:
            return
        limit = self.timeout + self.grace
        now = _now()
        for worker in self.workers:
            if worker.killed_for is not None:
                continue
            for seq, started in self._running(worker).items():
                if now - started > limit:
                    worker.killed_for = (seq, started)
                    worker.process.kill()
                    break


def _stop_process(process: BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join()


def _default_start_method() -> str:
    """fork where available: 5–8 ms per worker against 79 ms for spawn (DESIGN.md §8)."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
