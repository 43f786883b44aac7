"""AutoExecutor: run a sample of the real documents, measure them, pick a strategy, say why.

The probe runs the first documents in worker processes, one document at a time per worker so
each is timed alone (and not in the parent, so a sample document that segfaults costs a worker,
not the run) — until ``sample`` documents, ``probe_seconds``, or two documents in a row that
mostly waited, and times each with
``time.thread_time`` (CPU) against the wall clock. The probe's outcomes are real and are yielded
like any other; the rest of the refs go to the chosen strategy. The choice, from the CPU share of
a document's life (``cpu / wall``) and the shape of the pipeline:

=====================  ======================================================================
CPU share ≥ 60 %       ``queue`` over every core (self-sizing chunks: tiny or heavy documents)
under 2 ms a document  ``queue`` too: what looks like waiting is a busy machine's preemption
CPU share ≤ 15 %       waiting dominates: ``asyncio`` for async pipelines, ``threads`` otherwise —
                       if one process can keep 32 documents awaiting (1 / CPU-per-document
                       ≥ 32 / wall-per-document); if not, as below
in between             ``staged`` when sync CPU steps precede async ones (extract ‖ LLM),
                       else ``hybrid`` (processes × threads/asyncio)
=====================  ======================================================================

``explain()`` returns the measurements and the reasons; ``docmill run --explain`` prints them.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docmill.document import DocumentRef
from docmill.executors.base import Executor, ExecutorStats, default_workers
from docmill.executors.pool.dispatch import PooledExecutor, limits_from
from docmill.executors.pool.parent import Pool
from docmill.executors.pool.wire import Item
from docmill.executors.sizing import cap_processes
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.settings import check, field_names

CPU_BOUND = 0.60  # CPU share above which more processes is the only lever
TINY = 0.002  # seconds: below this a document's wait is noise (a busy machine's preemption)
WAIT_BOUND = 0.15  # CPU share below which one process can keep hundreds of documents waiting
LOOP_CONCURRENCY = 32  # documents awaiting at once one process must sustain, or we add processes


class _Timed:
    """The probe's task: the job, each document timed (CPU of this thread, wall)."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def setup(self) -> None:
        self.job.setup()

    def teardown(self) -> None:
        self.job.teardown()

    def run(self, ref: DocumentRef) -> tuple[Outcome, float, float]:
        """(outcome, CPU seconds, wall seconds less the time spent runnable but without a core)."""
        queued, cpu, wall = _queued(), time.thread_time(), time.perf_counter()
        outcome = self.job.run(ref)
        cpu = time.thread_time() - cpu
        wall = time.perf_counter() - wall - (_queued() - queued)
        return outcome, cpu, max(wall, cpu, 1e-9)  # the two clocks tick apart by a few µs


def _queued() -> float:
    """Seconds this thread has been runnable but waiting for a core (Linux; elsewhere 0).

    On a busy machine that wait stretches every document's wall time; it is not the document
    waiting for I/O, and counting it as such made CPU-bound documents look like waiting ones
    (5 ms documents read a CPU share of 33 % at load average 12 with two probe workers).
    """
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Probe:
    """What the sample showed."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    untimed: int = 0  # ended by the pool (crash, overrun, unpicklable)

    @property
    def cpu_share(self) -> float:
        """CPU seconds over wall seconds, leaving out the first document (imports, warm caches)."""
        total = sum(self._warm(self.wall))
        return sum(self._warm(self.cpu)) / total if total > 0 else 1.0

    def median_cpu(self) -> float:
        return statistics.median(self._warm(self.cpu))

    def median_wall(self) -> float:
        return statistics.median(self._warm(self.wall))

    @staticmethod
    def _warm(values: list[float]) -> list[float]:
        """Without the first document (imports, warm caches) when there is more than one."""
        return values[1:] if len(values) >= 2 else values

    def settled(self) -> bool:
        """True once two documents in a row mostly waited: each further one costs a whole wait.

        (A warm-up adds CPU to the first documents, so a low share is not an artefact of it.)
        """
        last = list(zip(self.cpu[-2:], self.wall[-2:], strict=True))
        return len(last) == 2 and all(c <= WAIT_BOUND * w for c, w in last)

    def describe(self) -> str:
        if not self.wall:
            return f"probe: no document finished normally ({self.untimed} crashed or overran)"
        wall, cpu = self.median_wall(), self.median_cpu()
        return (
            f"probe: {len(self.wall)} documents, median {wall * 1e3:.2f} ms wall and "
            f"{cpu * 1e3:.2f} ms CPU each; CPU share {self.cpu_share:.0%}"
        )


@dataclass(frozen=True)
class Choice:
    strategy: str
    options: dict[str, Any]
    reason: str


class AutoExecutor(Executor):
    """Probe ``sample`` documents (or ``probe_seconds`` of them), then delegate.

    ``max_processes`` / ``max_threads_per_process`` (the ``parallelization:`` section) size a
    ``queue``, ``staged`` or ``hybrid`` choice; ``asyncio`` gets 256 documents in flight and
    ``threads`` 32, since ``max_threads_per_process`` is about threads beside processes.
    """

    name = "auto"
    needs_processes = True
    nested = True
    overlaps_io = True
    io_slots = "in_flight"
    delegates = True

    @dataclass(frozen=True, kw_only=True)
    class Options(PooledExecutor.Options):
        """The probe (``sample`` documents, ``probe_seconds``), the shape of a nested choice
        (``parallelization:``) and the pool options handed to a process-based choice."""

        sample: int = 16
        probe_seconds: float = 0.15
        max_processes: int | None = None
        max_threads_per_process: int | None = None

        def __post_init__(self) -> None:
            PooledExecutor.Options.__post_init__(self)
            check(self.sample >= 1, "sample", self.sample, "must be >= 1")
            check(self.probe_seconds > 0, "probe_seconds", self.probe_seconds, "must be > 0")
            for key in ("max_processes", "max_threads_per_process"):
                value = getattr(self, key)
                check(value is None or value >= 1, key, value, "must be >= 1")

    options: AutoExecutor.Options

    def __init__(self, workers: int | None = None, **settings: Any) -> None:
        super().__init__(workers, **settings)
        self.sample, self.probe_seconds = self.options.sample, self.options.probe_seconds
        wanted = self.options.max_processes or workers
        self.processes = cap_processes(wanted or default_workers(), explicit=wanted is not None)
        self.per_process = self.options.max_threads_per_process
        self.probe = Probe()
        self.choice: Choice | None = None
        self._inner: Executor | None = None
        self._explicit_in_flight = self.options.max_in_flight

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        remaining = iter(refs)
        self.probe = Probe()
        handed_back = yield from self._run_probe(job, remaining)
        remaining = itertools.chain(handed_back, remaining)
        self.choice = choose(self.probe, job, self.processes, self.per_process)
        options = dict(self.choice.options)
        if self._explicit_in_flight:
            options["max_in_flight"] = self._explicit_in_flight
        from docmill.executors import executor_class, get_executor  # the registry imports us lazily

        if executor_class(self.choice.strategy).needs_processes:
            options.update(self._pool_options())  # worker limits (max_memory_mb, start_method, …)
        inner = self._inner = get_executor(self.choice.strategy, **options)
        try:
            yield from inner.map_unordered(job, remaining)
        finally:
            inner.close()

    def _pool_options(self) -> dict[str, Any]:
        """The pool options given to this strategy, for a process-based choice."""
        keys = set(field_names(PooledExecutor.Options)) - {"max_in_flight"}
        return {key: getattr(self.options, key) for key in keys}

    def _run_probe(
        self, job: Job, refs: Iterator[DocumentRef]
    ) -> Generator[Outcome, None, list[DocumentRef]]:
        """One document at a time per worker, ``processes`` workers: each is timed alone. Returns
        the documents a retiring worker handed back after the probe had ended: the choice runs them."""
        limits = limits_from(self.options.max_tasks_per_child, self.options.max_memory_mb)
        size = min(self.processes, self.sample)
        start = self.options.start_method
        pool = Pool(_Timed(job), size, limits=limits, timeout=job.timeout, start_method=start)
        pool.start()
        try:
            handed_back = yield from self._probe_loop(pool, refs, time.monotonic() + self.probe_seconds)
            pool.shutdown(drain=True)
        finally:
            pool.shutdown(drain=False)
        return handed_back

    def _probe_loop(
        self, pool: Pool, refs: Iterator[DocumentRef], deadline: float
    ) -> Generator[Outcome, None, list[DocumentRef]]:
        again: list[Item] = []  # handed back by a worker that retired
        seqs, sent = itertools.count(), 0
        while True:
            # in rounds, one document per worker: stopping never waits on a straggler
            done = pool.holding or sent >= self.sample or time.monotonic() > deadline or self.probe.settled()
            for worker in [] if done else list(pool.idle_capacity(1)):
                item = again.pop() if again else next(((next(seqs), r) for r in refs), None)
                if item is None:
                    break
                pool.send(worker, [item])
                sent += 1
            if not pool.holding:
                return [ref for _, ref in again]  # a worker over its limits retired after the end
            report = pool.wait()
            again.extend(report.requeue)
            sent -= len(report.requeue)
            yield from (self._timed(result) for _, result in report.finished)

    def _timed(self, result: Outcome | tuple[Outcome, float, float]) -> Outcome:
        if isinstance(result, Outcome):  # the worker died or overran: no timing
            self.probe.untimed += 1
            return result
        outcome, cpu, wall = result
        self.probe.cpu.append(cpu)
        self.probe.wall.append(wall)
        return outcome

    def explain(self) -> str:
        """The measurements and the reasons for the choice (empty before the probe ran)."""
        if self.choice is None:
            return "auto: not run yet; the probe runs on the first documents"
        choice = self.choice
        return f"{self.probe.describe()}\n→ {choice.strategy} {choice.options}: {choice.reason}"

    def describe(self) -> str:
        inner = self._inner.describe() if self._inner is not None else "undecided"
        return f"auto({inner})"

    def statistics(self) -> ExecutorStats:
        if self._inner is not None:
            return self._inner.statistics()
        return ExecutorStats(workers=1, detail="probing")

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        super().close()


def choose(probe: Probe, job: Job, processes: int, per_process: int | None) -> Choice:
    """The strategy for what the probe measured (a pure function: tested with made-up probes)."""
    share = probe.cpu_share
    cpu_steps, _ = job.pipeline.split()
    if not probe.wall or share >= CPU_BOUND:
        why = f"CPU share {share:.0%} ≥ {CPU_BOUND:.0%}: documents are CPU-bound, use every core"
        return Choice("queue", {"workers": processes}, why)
    if probe.median_wall() < TINY:
        why = f"documents take under {TINY * 1e3:g} ms: chunked over every core, overhead amortised"
        return Choice("queue", {"workers": processes}, why)
    one_loop = 1 / max(probe.median_cpu(), 1e-9)  # docs/s one process can push through
    wanted = LOOP_CONCURRENCY / probe.median_wall()  # docs/s that many awaiting would give
    if share <= WAIT_BOUND and wanted <= one_loop:
        if job.pipeline.is_async:
            width = 256
            why = f"CPU share {share:.0%} ≤ {WAIT_BOUND:.0%}: documents mostly await; one event loop"
            return Choice("asyncio", {"workers": width}, why)
        why = f"CPU share {share:.0%} ≤ {WAIT_BOUND:.0%}: documents mostly block on I/O; threads"
        return Choice("threads", {"workers": 32}, why)
    busy = f"CPU share {share:.0%}, one process tops out at {one_loop:.0f} docs/s"
    if job.pipeline.is_async and cpu_steps.steps:
        why = f"{busy}: CPU steps then async steps; extract in processes ‖ await in the parent"
        return Choice("staged", {"workers": processes}, why)
    options = {"max_processes": processes, "max_threads_per_process": per_process}
    why = f"{busy}: both CPU and waiting; processes × concurrent documents"
    return Choice("hybrid", options, why)
