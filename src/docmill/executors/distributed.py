"""CeleryExecutor: documents run on Celery workers anywhere; the parent stays the only writer.

::

    parent (this process)                          Redis / broker                    workers (any host)
    refs ─▶ chunks of ``chunk_size`` ─send_task─▶  queue "docmill"  ─▶ docmill.run_chunk(chunk)
       ▲        (at most ``max_chunks`` out)                               │ Job.run(ref) for each ref
       └──── outcomes ◀──── BLPOP ◀──── docmill:run:<id>:results ◀────────┘ RPUSH one message per chunk

The Job travels once: pickled into Redis under a content hash, loaded and set up once per worker
process. Messages are JSON (refs as dicts). Delivery is at least once (see
``docmill.distributed.app``): the first message of each chunk is used and later ones are counted
as duplicate work; a ref of a redelivered chunk is never yielded twice.

Faults of Redis itself are ridden out (``docmill.distributed.outage``): every call the parent makes
to it is retried for up to ``outage_limit`` seconds. A Redis restarted without persistence loses
the queued chunks, the results not yet read and the run's keys: the parent puts the job and the
liveness key back within one beat, sends every outstanding chunk again at once when it sees the
server's ``run_id`` change, and in any case sends again each chunk that has not reported within
``redeliver_after`` seconds (the visibility timeout). A chunk can also vanish without a restart: a
worker's connection cut while its BRPOP waits (a Redis frozen for longer than the worker's socket
timeout) pops the message into a dead socket. So when no result has come for ``LOST_CHECK``
seconds and a Redis broker holds no message at all (queue empty, nothing unacknowledged), the
chunks no worker has started are lost: seen so at two checks in a row, they are sent again.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

from kombu.utils.url import maybe_sanitize_url

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.distributed.app import DEFAULT_QUEUE, TASK_NAME, make_app
from docmill.distributed.channel import RunChannel, broker_idle
from docmill.distributed.codec import outcome_from_dict, ref_to_dict
from docmill.distributed.outage import Outages
from docmill.document import DocumentRef
from docmill.errors import BrokenExecutorError
from docmill.executors.base import Executor, ExecutorStats
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.settings import check

log = logging.getLogger(__name__)

LOST_CHECK = 10.0  # seconds without a result between two looks for chunks the broker lost

# benchmarks/bench_distributed.py: 50 no-op refs per task keep the broker's share well under 1 ms/doc
DEFAULT_CHUNK = 50


@dataclass(frozen=True, slots=True)
class DistributedStats:
    """What the broker did: chunks sent and completed, and the duplicate work of redelivery."""

    chunks_sent: int = 0
    chunks_done: int = 0
    redelivered_chunks: int = 0  # chunks a worker started more than once
    duplicate_results: int = 0  # chunk results that arrived after the first and were dropped
    duplicate_documents: int = 0  # documents processed again in those results
    resubmitted_refs: int = 0  # refs sent again after a chunk's soft time limit
    resent_chunks: int = 0  # chunks sent again: overdue, or Redis restarted and lost them
    outages: int = 0  # times Redis or the broker stopped answering and the run waited
    outage_seconds: float = 0.0  # how long the run waited in all


class CeleryExecutor(Executor):
    """Chunks of refs as Celery tasks on ``queue``; outcomes come back through Redis.

    ``broker`` and ``queue`` default to ``$DOCMILL_BROKER`` and ``$DOCMILL_QUEUE`` (else
    ``redis://127.0.0.1:6379/0`` and ``docmill``), which is how ``docmill run --strategy celery``
    reaches them.
    ``workers`` is how many worker processes serve the queue (it sizes the chunks kept in
    flight, nothing more: start workers with ``docmill worker``). ``store`` is the Redis that
    carries the job and results (default: the broker). ``stall_timeout``: after that many seconds
    without a result, the parent checks that some worker answers and stops with
    BrokenExecutorError if none does. ``redeliver_after``: a chunk without a result after that
    many seconds is sent again (keep it at the workers' visibility timeout). ``outage_limit``: how
    long the run waits for a Redis or broker that does not answer before it stops.
    """

    name = "celery"
    distributed = True

    @dataclass(frozen=True, kw_only=True)
    class Options(Executor.Options):
        """Where the work goes (``broker``, ``queue``, ``store``) and how it travels (see above)."""

        broker: str | None = None
        store: str | None = None
        queue: str | None = None
        chunk_size: int = DEFAULT_CHUNK
        stall_timeout: float = 60.0
        task_time_limit: float | None = None
        redeliver_after: float | None = None  # default: $DOCMILL_VISIBILITY_TIMEOUT, else 3600
        outage_limit: float = 120.0

        def __post_init__(self) -> None:
            Executor.Options.__post_init__(self)
            check(self.chunk_size >= 1, "chunk_size", self.chunk_size, "must be >= 1")
            check(self.stall_timeout > 0, "stall_timeout", self.stall_timeout, "must be > 0")
            limit = self.task_time_limit
            check(limit is None or limit > 0, "task_time_limit", limit, "must be > 0")
            again = self.redeliver_after
            check(again is None or again > 0, "redeliver_after", again, "must be > 0")
            check(self.outage_limit > 0, "outage_limit", self.outage_limit, "must be > 0")

    options: CeleryExecutor.Options

    def __init__(
        self,
        workers: int | None = None,
        *,
        options: Executor.Options | None = None,
        clock: Clock = SYSTEM_CLOCK,
        **settings: Any,
    ) -> None:
        options = cast(CeleryExecutor.Options, self.resolve_options(options, settings))
        self.chunk_size = options.chunk_size
        super().__init__(workers, options=options)
        self.chunk_size = min(self.chunk_size, self.max_in_flight)  # never pull more than allowed ahead
        queue = options.queue or os.environ.get("DOCMILL_QUEUE", DEFAULT_QUEUE)
        self.app = make_app(options.broker, queue=queue)
        self.broker = str(self.app.conf.broker_url)
        self.store = options.store or self.broker
        self.queue = queue
        self.stall_timeout = options.stall_timeout
        self.task_time_limit = options.task_time_limit
        visibility = float(os.environ.get("DOCMILL_VISIBILITY_TIMEOUT", 3600))
        self.redeliver_after = options.redeliver_after or visibility
        self.outage_limit = options.outage_limit
        self.clock = clock
        self._stats = DistributedStats()
        self._in_flight = 0

    def default_in_flight(self) -> int:
        return 2 * self.workers * self.chunk_size  # one chunk running and one queued per worker

    @property
    def max_chunks(self) -> int:
        return max(1, math.ceil(self.max_in_flight / self.chunk_size))

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        run = _Run(self, job, RunChannel(self.store, uuid.uuid4().hex))
        try:
            yield from run.drive(iter(refs))
        finally:
            self._stats = run.finish()
            self._in_flight = 0

    def distributed_stats(self) -> DistributedStats:
        return self._stats

    def statistics(self) -> ExecutorStats:
        s = self._stats
        detail = (
            f"chunks={s.chunks_done}/{s.chunks_sent} redelivered={s.redelivered_chunks} "
            f"duplicate_results={s.duplicate_results} duplicate_docs={s.duplicate_documents} "
            f"resent={s.resent_chunks} outages={s.outages} outage_s={s.outage_seconds:.1f}"
        )
        return ExecutorStats(
            workers=self.workers, in_flight=self._in_flight, completed=s.chunks_done, detail=detail
        )

    def describe(self) -> str:
        return f"celery(workers={self.workers}, chunk_size={self.chunk_size}, queue={self.queue!r})"

    def close(self) -> None:
        """Release the broker connections (workers keep running). Idempotent."""
        if not self._closed:
            self.app.close()
        super().close()


class _Run:
    """One ``map_unordered`` call: send chunks, drain results, keep the books."""

    def __init__(self, executor: CeleryExecutor, job: Job, channel: RunChannel) -> None:
        self.ex = executor
        self.job = job
        self.channel = channel
        self.pending: dict[str, dict[tuple[str, Any], DocumentRef]] = {}  # chunk → (id, pages) → ref
        self.sent_at: dict[str, float] = {}  # chunk id → when it was last sent
        self.counts = {"sent": 0, "done": 0, "dup_results": 0, "dup_docs": 0, "resubmitted": 0, "resent": 0}
        self.exhausted = False
        self.last_progress = executor.clock.monotonic()
        self.last_beat = -math.inf
        self.last_look = -math.inf
        self.unstarted: set[str] = set()  # chunks seen lost by the last look
        where = f"Redis at {maybe_sanitize_url(executor.store)}"
        self.outages = Outages(where, limit=executor.outage_limit, clock=executor.clock)
        self.job_key = self.outages.ride(lambda: channel.publish_job(job), "storing the job")
        self.server = self.outages.ride(channel.identity, "asking who it is")
        self._beat()  # the liveness key before the first chunk: workers skip chunks of dead runs

    def drive(self, refs: Iterator[DocumentRef]) -> Iterator[Outcome]:
        while True:
            self._fill(refs)
            if not self.pending:
                return
            self._beat()
            self._resend_overdue()
            message = self.outages.ride(lambda: self.channel.pop(timeout=1.0), "waiting for results")
            if message is None:
                self._check_lost()
                self._check_stall()
                continue
            yield from self._accept(message)

    def _fill(self, refs: Iterator[DocumentRef]) -> None:
        while not self.exhausted and len(self.pending) < self.ex.max_chunks:
            chunk = list(islice(refs, self.ex.chunk_size))
            if not chunk:
                self.exhausted = True
                return
            self._send(chunk)

    def _send(self, refs: list[DocumentRef]) -> None:
        chunk = f"{self.counts['sent']:08d}"
        self.counts["sent"] += 1
        self.pending[chunk] = {(ref.id, ref.pages): ref for ref in refs}  # parts of a PDF share an id
        self.ex._in_flight = sum(len(p) for p in self.pending.values())
        self._publish(chunk, refs)

    def _publish(self, chunk: str, refs: list[DocumentRef]) -> None:
        """Send ``chunk`` (again, when it is overdue: the same id, so only one result counts)."""
        kwargs = {
            "run": self.channel.run,
            "job": self.job_key,
            "store": self.ex.store,
            "chunk": chunk,
            "refs": [ref_to_dict(r) for r in refs],
        }
        soft, hard = self._time_limits(len(refs))
        self.outages.ride(
            lambda: self.ex.app.send_task(
                TASK_NAME, kwargs=kwargs, queue=self.ex.queue, soft_time_limit=soft, time_limit=hard
            ),
            "sending a chunk",
        )
        self.sent_at[chunk] = self.ex.clock.monotonic()

    def _resend_overdue(self, everything: bool = False) -> None:
        """Send again the chunks without a result for ``redeliver_after`` seconds (or all of them)."""
        now = self.ex.clock.monotonic()
        overdue = [c for c, at in self.sent_at.items() if everything or now - at >= self.ex.redeliver_after]
        for chunk in overdue:
            self.counts["resent"] += 1
            self._publish(chunk, list(self.pending[chunk].values()))
        if overdue:
            log.warning("sent %d chunks again: no result came back for them", len(overdue))

    def _time_limits(self, n: int) -> tuple[float | None, float | None]:
        """Celery's per-task limits: the given one, or derived from the Job's per-document timeout."""
        if self.ex.task_time_limit is not None:
            return self.ex.task_time_limit, self.ex.task_time_limit + 30
        if self.job.timeout is None:
            return None, None
        soft = n * self.job.timeout * self.job.retry.max_attempts + 30
        return soft, soft + 30

    def _accept(self, message: dict[str, Any]) -> Iterator[Outcome]:
        if "fatal" in message:
            raise BrokenExecutorError(f"the distributed run cannot go on: {message['fatal']}")
        chunk = str(message["chunk"])
        waiting = self.pending.pop(chunk, None)
        if waiting is None:
            self.counts["dup_results"] += 1
            self.counts["dup_docs"] += len(message["outcomes"])
            return
        del self.sent_at[chunk]
        self.counts["done"] += 1
        self.last_progress = self.ex.clock.monotonic()
        for data in message["outcomes"]:
            outcome = outcome_from_dict(data)
            if waiting.pop((outcome.ref.id, outcome.ref.pages), None) is not None:
                yield outcome
        leftover = list(waiting.values())  # refs a soft time limit left unfinished
        if leftover:
            self.counts["resubmitted"] += len(leftover)
            self._send(leftover)
        self.ex._in_flight = sum(len(p) for p in self.pending.values())

    def _beat(self) -> None:
        """Every 5 s: liveness (and the job, if Redis lost it); a restarted Redis lost the chunks too."""
        now = self.ex.clock.monotonic()
        if now - self.last_beat < 5.0:
            return
        self.last_beat = now
        self.outages.ride(self.channel.keep_alive, "refreshing the run's liveness")
        server = self.outages.ride(self.channel.identity, "asking who it is")
        if server != self.server:
            log.warning("Redis restarted during the run: %d chunks are sent again", len(self.pending))
            self.server = server
            self._resend_overdue(everything=True)

    def _check_stall(self) -> None:
        """No result for ``stall_timeout`` seconds: fine if workers serve the queue, fatal if none does."""
        now = self.ex.clock.monotonic()
        if now - self.last_progress < self.ex.stall_timeout:
            return
        serving = self.outages.ride(self._serving, "asking which workers serve the queue")
        if not serving:
            raise BrokenExecutorError(
                f"no Celery worker serves queue {self.ex.queue!r} on {self.ex.broker} and "
                f"{len(self.pending)} chunks are waiting; start one with: "
                f"docmill worker --broker {self.ex.broker} --queue {self.ex.queue}"
            )
        log.info("%d chunks still running on %d workers", len(self.pending), len(serving))
        self.last_progress = now

    def _check_lost(self) -> None:
        """Every ``LOST_CHECK`` s without a result: send again the chunks the broker lost (see above)."""
        now = self.ex.clock.monotonic()
        if now - max(self.last_progress, self.last_look) < LOST_CHECK:
            return
        self.last_look = now
        idle = self.outages.ride(lambda: broker_idle(self.ex.broker, self.ex.queue), "looking at the queue")
        started = self.outages.ride(self.channel.deliveries, "asking which chunks started") if idle else {}
        unstarted = {chunk for chunk in self.sent_at if chunk not in started} if idle else set()
        lost, self.unstarted = sorted(unstarted & self.unstarted), unstarted
        for chunk in lost:
            self.counts["resent"] += 1
            self._publish(chunk, list(self.pending[chunk].values()))
        if lost:
            self.unstarted -= set(lost)
            log.warning("sent %d chunks again: the broker lost them (none queued, none started)", len(lost))

    def _serving(self) -> list[str]:
        """Names of the workers that answer and consume this run's queue."""
        # its own connection, closed at once: a broadcast consumer left in the app's pool would be
        # closed again (and block) in any process forked from this one later
        with self.ex.app.connection_for_write() as conn:
            queues = self.ex.app.control.inspect(timeout=2.0, connection=conn).active_queues() or {}
        return [name for name, qs in queues.items() if any(q.get("name") == self.ex.queue for q in qs)]

    def finish(self) -> DistributedStats:
        """Close the run (queued chunks of it are skipped) and report the duplicate work."""
        try:
            redelivered = sum(1 for n in self.channel.deliveries().values() if n > 1)
            self.channel.close()
        except Exception as exc:  # the books are still worth returning
            log.warning("could not close run %s in Redis: %s", self.channel.run, exc)
            redelivered = 0
        c, o = self.counts, self.outages
        stats = DistributedStats(
            chunks_sent=c["sent"],
            chunks_done=c["done"],
            redelivered_chunks=redelivered,
            duplicate_results=c["dup_results"],
            duplicate_documents=c["dup_docs"],
            resubmitted_refs=c["resubmitted"],
            resent_chunks=c["resent"],
            outages=o.count,
            outage_seconds=o.seconds,
        )
        if redelivered or c["dup_results"]:
            log.warning(
                "%d chunks were delivered more than once (%d duplicate results, %d documents, dropped)",
                redelivered, c["dup_results"], c["dup_docs"],
            )  # fmt: skip
        return stats
