"""``run()``: drive a source through a pipeline under one strategy, recording every outcome.

::

  Source ─refs─▶ Journal.pending ─refs─▶ Executor.map_unordered(job, refs) ─outcomes─▶ [parent: 1 writer]
                 (drops what is          │  threads / processes / asyncio / …       ├─ Journal.record(batch)
                  already recorded)      └─ Job.run(ref): load → Pipeline → Outcome  ├─ RunStats, heartbeat
                                               retry policy, per-document timeout    └─ Reporter.update()

The parent is the only writer: outcomes are buffered and recorded in one transaction per batch, when
``commit_every`` outcomes are waiting or ``commit_seconds`` have passed, whichever comes first; a ticker
thread flushes and heartbeats the run's live stats into the journal about once a second, so a slow
document never holds finished ones back. A document's failure never ends the run; only ConfigError,
JournalError and BrokenExecutorError do. Before the first document, ``pipeline.check()`` lets each
step refuse a run that cannot succeed (an LLM endpoint that does not answer: exit 2, nothing
recorded). Stopping (Ctrl-C, SIGTERM, ``max_cost``, or an outcome whose error is
``RunStoppedError``: a processor's circuit breaker opened) ends the refs iterator early: the
strategy finishes what is in flight, the journal is flushed, and the next run resumes where this
one stopped. Outcomes that carry ``RunStoppedError`` are not recorded: their documents are redone.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from docmill._signals import StopFlag, graceful_stop
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.config import RunConfig
from docmill.document import DocumentRef
from docmill.errors import RunStoppedError
from docmill.executors import get_executor
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.journal.base import Journal, RunInfo
from docmill.metrics import RunStats
from docmill.outcome import Outcome
from docmill.page_split import PageSplit
from docmill.processors.base import Processor
from docmill.progress import NullReporter, Reporter
from docmill.retry import RetryPolicy
from docmill.sources.base import Source

if TYPE_CHECKING:
    from docmill.reader import JournalReader

HEARTBEAT_SECONDS = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class RunResult:
    """What ``run`` returns: the stats, the journal's run id, and why it stopped early (if it did)."""

    stats: RunStats
    run_id: int
    stopped: str | None = None  # None | "interrupted" | "max-cost" | "endpoint"
    strategy: str = ""  # the strategy as it ran, e.g. "auto(processes(workers=2))"
    explanation: str | None = None  # why the strategy chose what it did (auto), when it says
    db: str | None = dataclasses.field(default=None, repr=False)  # its journal; None: in memory
    reason: str | None = None  # why it stopped, when a processor asked ("endpoint")

    def rows(self) -> list[dict[str, Any]]:
        """One dict per document of this run's source and pipeline: the columns of ``docmill export``."""
        with self._reader() as journal:
            return journal.rows(self.run_id)

    def to_pandas(self) -> Any:
        """``rows()`` as a ``pandas.DataFrame`` (needs ``docmill[pandas]``)."""
        with self._reader() as journal:
            return journal.to_pandas(self.run_id)

    def to_arrow(self) -> Any:
        """``rows()`` as a ``pyarrow.Table`` typed like the Parquet export (needs ``docmill[parquet]``)."""
        with self._reader() as journal:
            return journal.to_arrow(self.run_id)

    def _reader(self) -> JournalReader:
        from docmill.errors import ConfigError
        from docmill.reader import open_journal

        if self.db is None:
            raise ConfigError("this run's journal was in memory: give db= to read its documents back")
        return open_journal(self.db)


def run(
    source: Source,
    pipeline: Processor,
    *,
    executor: Executor | str = "sequential",
    workers: int | None = None,
    journal: Journal | None = None,
    reporter: Reporter | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    commit_every: int = 2000,
    commit_seconds: float = 1.0,
    retry_failed: bool = False,
    fresh: bool = False,
    max_cost: float | None = None,
    settings: Mapping[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> RunResult:
    """Process every pending document of ``source``; returns when all are recorded or the run stops.

    ``executor`` is a strategy name (see ``docmill.executors.EXECUTORS``) or an Executor; ``journal``
    defaults to an in-memory SQLite journal. ``settings`` is stored with the run record.
    """
    pipeline.check_requirements()
    pipeline.check()  # in the parent, before any worker: a dead endpoint is one line, not a run
    job = Job(source, pipeline, retry=retry, timeout=timeout, clock=clock)
    from docmill.processors.tasks import declared

    settings = {**(settings or {}), **declared(pipeline)}  # the tasks it answers, for export and eval
    if journal is None:
        from docmill.journal.sqlite import SqliteJournal

        journal = SqliteJournal(":memory:")
    strategy = get_executor(executor, workers=workers) if isinstance(executor, str) else executor
    session = _Session(source, job, journal, reporter or NullReporter(), clock, commit_every, commit_seconds)
    session.max_cost = max_cost
    session.split = PageSplit.of(job, strategy)  # extract.split_pages: long PDFs over several workers
    with graceful_stop(session.stop, session.reporter.message), strategy:  # signals: see docmill._signals
        return session.run(strategy, fresh=fresh, retry_failed=retry_failed, settings=settings or {})


class _Session:
    """One run's moving parts: the writer buffer, the stats, the stop flag and the ticker."""

    def __init__(
        self,
        source: Source,
        job: Job,
        journal: Journal,
        reporter: Reporter,
        clock: Clock,
        commit_every: int,
        commit_seconds: float,
    ) -> None:
        self.source, self.job, self.journal, self.reporter, self.clock = source, job, journal, reporter, clock
        self.commit_every, self.commit_seconds = commit_every, commit_seconds
        self.fingerprint = job.fingerprint()
        self.stats = RunStats()
        self.stop = StopFlag()
        self.max_cost: float | None = None
        self.split: PageSplit | None = None
        self.total: int | None = None
        self.run_id = 0
        self._buffer: list[Outcome] = []
        self._lock = threading.Lock()  # guards the buffer, stats and journal writes (main + ticker)
        self._listed: collections.deque[str] = collections.deque()  # ids listed, not yet passed on
        self._skipped = 0
        self._ended = threading.Event()
        self._error: Exception | None = None  # raised by the ticker thread, re-raised in the main one
        self._spent = 0.0
        self._started = clock.monotonic()
        self._flushed = self._beat = self._started
        self._strategy: Executor | None = None
        self.reason: str | None = None  # a processor's reason to stop the run (RunStoppedError)

    def run(
        self, strategy: Executor, *, fresh: bool, retry_failed: bool, settings: Mapping[str, Any]
    ) -> RunResult:
        self._strategy = strategy
        if fresh:
            self.journal.forget(source=self.source.root, fingerprint=self.fingerprint)
        _close_dead_runs(self.journal)
        settings = {**settings, "pid": os.getpid(), "host": socket.gethostname()}
        info = RunInfo(self.source.root, self.fingerprint, strategy.name, strategy.workers, None, settings)
        self.run_id = self.journal.begin_run(info)
        self.reporter.start(None)
        threading.Thread(target=self._count, name="docmill-count", daemon=True).start()
        ticker = threading.Thread(target=self._tick, name="docmill-ticker", daemon=True)
        ticker.start()
        state = "failed"
        try:
            self._consume(strategy, retry_failed)
            if self._error is not None:
                raise self._error
            state = "interrupted" if self.stop.reason else "done"  # stopped early: Ctrl-C or max-cost
        except KeyboardInterrupt:
            self.stop.set("interrupted")
            state = "interrupted"
            raise
        finally:
            self._finish(state, ticker)
        explain = getattr(strategy, "explain", None)
        explanation = explain() if callable(explain) else None
        described = strategy.describe()
        return RunResult(
            self.stats, self.run_id, self.stop.reason, described, explanation, reason=self.reason
        )

    def _consume(self, strategy: Executor, retry_failed: bool) -> None:
        pending = self.journal.pending(
            self._counted(self.source),
            source=self.source.root,
            fingerprint=self.fingerprint,
            retry_failed=retry_failed,
        )
        outcomes = PageSplit.stream(self.split, strategy, self.job, self._until_stopped(pending))
        try:
            for outcome in outcomes:
                self._add(outcome)
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()

    def _counted(self, refs: Iterable[DocumentRef]) -> Iterator[DocumentRef]:
        for ref in refs:
            self._listed.append(ref.id)
            yield ref

    def _until_stopped(self, refs: Iterable[DocumentRef]) -> Iterator[DocumentRef]:
        """Pass pending refs on until asked to stop; count those pending() dropped as skipped.

        pending() keeps the source's order, so every listed ref ahead of the one it yields was dropped.
        """
        for ref in refs:
            if self.stop.is_set():
                return
            while self._listed and self._listed.popleft() != ref.id:
                self._skipped += 1
            yield ref
        self._skipped += len(self._listed)
        self._listed.clear()

    def _add(self, outcome: Outcome) -> None:
        if self._error is not None:
            raise self._error
        if outcome.error is not None and outcome.error.type == RunStoppedError.__name__:
            self._stopped_by(outcome.error.message)
            return  # not recorded: the next run redoes the document
        self.reporter.update(outcome)
        self._spent += float((outcome.result or {}).get("cost") or 0.0)
        if self.max_cost is not None and self._spent >= self.max_cost and self.stop.set("max-cost"):
            self.reporter.message(
                f"spending limit ${self.max_cost:g} reached: finishing the documents in flight"
            )
        with self._lock:
            self._buffer.append(outcome)
            if len(self._buffer) >= self.commit_every:
                self._flush()

    def _stopped_by(self, reason: str) -> None:
        """A processor asked the run to stop (its endpoint is gone): stop feeding documents."""
        if self.stop.set("endpoint"):
            self.reason = reason
            self.reporter.message(f"stopping: {reason}; the documents in flight are left for the next run")

    def _flush(self) -> None:
        """Record the buffer in one transaction (caller holds the lock)."""
        batch, self._buffer = self._buffer, []
        self._flushed = self.clock.monotonic()
        self._note_skips()
        if not batch:
            return
        recorded = self.journal.record(
            batch, run_id=self.run_id, source=self.source.root, fingerprint=self.fingerprint
        )
        for outcome in recorded:
            self.stats.add(outcome)
        for demotion in recorded.demoted:
            if demotion.run_id == self.run_id:  # an earlier run's row is not this run's to count
                self.stats.demote()

    def _note_skips(self) -> None:
        skipped = self._skipped
        if skipped > self.stats.skipped:
            self.reporter.skipped(skipped - self.stats.skipped)
            self.stats.skipped = skipped

    def _tick(self) -> None:
        """Flush by time and heartbeat, until the run ends."""
        period = min(self.commit_seconds, HEARTBEAT_SECONDS) / 4
        while not self._ended.wait(period):
            try:
                self._tick_once()
            except Exception as exc:  # a journal error: hand it to the main thread, which ends the run
                self._error = exc
                self.stop.set("error")
                return

    def _tick_once(self) -> None:
        now = self.clock.monotonic()
        with self._lock:
            if now - self._flushed >= self.commit_seconds:
                self._flush()
            if now - self._beat >= HEARTBEAT_SECONDS:
                self._beat = now
                self.journal.heartbeat(self.run_id, self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The live stats written with each heartbeat and at the end."""
        self.stats.wall_seconds = self.clock.monotonic() - self._started
        data = self.stats.as_dict()
        data["total"] = self.total
        data["stopping"] = self.stop.reason
        if self._strategy is not None:
            data["executor"] = {
                **dataclasses.asdict(self._strategy.statistics()),
                "name": self._strategy.name,
                "describe": self._strategy.describe(),
            }
        return data

    def _count(self) -> None:
        try:
            total = self.source.count()
        except Exception:  # a count is only for the ETA: never let it end the run
            return
        if total is not None:
            self.total = total
            self.reporter.set_total(total)

    def _finish(self, state: str, ticker: threading.Thread) -> None:
        """Record the last batch and the run's end; no signal interrupts this (``StopFlag.shield``)."""
        with self.stop.shield():
            self._ended.set()
            ticker.join()
            with self._lock:
                self._flush()
                if self.total is None and state == "done":  # the walk ended before the count did
                    self.total = self.stats.done + self.stats.skipped
                snapshot = self.snapshot()
                self.journal.end_run(self.run_id, state, snapshot)
            self.reporter.finish(self.stats)


def _close_dead_runs(journal: Journal) -> None:
    """Mark ``interrupted`` the runs still ``running`` whose process on this host is gone (kill -9)."""
    host = socket.gethostname()
    for record in journal.runs():
        pid = record.config.get("pid")
        if record.state == "running" and record.config.get("host") == host and not _alive(pid):
            journal.end_run(
                record.id, "interrupted", {**record.stats, "note": "the run's process was killed"}
            )


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_config(
    config: RunConfig, *, reporter: Reporter | None = None, clock: Clock = SYSTEM_CLOCK
) -> RunResult:
    """Run what ``config`` describes (what ``docmill run`` does): source, pipeline, strategy, journal."""
    from docmill import _build

    config = _build.default_labels(config)
    launch: Callable[..., RunResult] = run
    if config.llm.mode == "batch":  # the provider's Batch API (docmill.batch.session)
        from docmill.batch.run import launcher

        launch = launcher(config)
    source = _build.build_source(config)
    pipeline = _build.build_pipeline(config)
    executor = _build.build_executor(config)
    journal = _build.build_journal(config)
    from docmill.processors.tasks import declared  # the tasks the pipeline answers, in every launcher

    try:
        result = launch(
            source,
            pipeline,
            executor=executor,
            journal=journal,
            reporter=reporter,
            retry=config.retry,
            timeout=config.timeout,
            commit_every=config.commit_every,
            commit_seconds=config.commit_seconds,
            retry_failed=config.retry_failed,
            fresh=config.fresh,
            max_cost=config.cost_limit,
            settings={**config.public(), **declared(pipeline)},
            clock=clock,
        )
    finally:
        journal.close()
    return dataclasses.replace(result, db=config.db)
