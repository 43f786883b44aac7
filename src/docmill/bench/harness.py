"""The bench matrix: strategy × workers × size × complexity × workload, repeated, measured.

Each cell runs a real :class:`~docmill.job.Job` over real files through a real strategy from
``docmill.executors`` (or a peer library, ``peer:*``), timed from pool start to the last outcome,
with the whole process tree measured by :class:`~docmill.bench.sampler.TreeSampler`. Repetitions
are interleaved (rep 1 of every strategy, then rep 2 …) so that slow drifts in machine load spread
over all strategies instead of biasing one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.bench.emulated import Emulators
from docmill.bench.isolation import in_child
from docmill.bench.measured import MeasuredCases
from docmill.bench.peers import PEERS
from docmill.bench.sampler import EMPTY_USAGE, ResourceUsage, TreeSampler
from docmill.bench.tiny import TINY_DOCS, TINY_WORKLOAD, run_tiny, tiny_job, write_records
from docmill.bench.workloads import (
    COMPLEXITY_PASSES,
    DEFAULT_WORKLOADS,
    LLM_WORKLOADS,
    REAL_COMPLEXITY,
    REAL_WORKLOAD,
    WORKLOADS,
    build_job,
    write_corpus,
)
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import DocumentRef
from docmill.errors import ConfigError, DocmillError
from docmill.executors import EXECUTORS, capability, executor_class, get_executor
from docmill.job import Job
from docmill.outcome import Outcome


def overlaps_io(name: str) -> bool:
    """Whether the strategy's I/O concurrency is not bounded by its workers (async stages, threads
    inside processes): on I/O-bound work its speedup per worker can exceed 1, legitimately."""
    return name not in PEERS and capability(name, "overlaps_io") is True


def needs_services(name: str) -> bool:
    """Whether the strategy needs a broker and remote workers: benchmarked only when named."""
    return name not in PEERS and capability(name, "distributed") is True


@dataclass(frozen=True, slots=True)
class BenchCase:
    """One measurement: a strategy at a worker count on one workload cell, repetition ``repeat``."""

    strategy: str
    workers: int
    workload: str
    size_kb: int
    complexity: str
    n_docs: int
    repeat: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.n_docs < 1 or self.size_kb < 1:
            raise ConfigError(f"workers, n_docs and size_kb must be >= 1 in {self}")
        if self.workload not in (*WORKLOADS, REAL_WORKLOAD):
            raise ConfigError(f"unknown workload {self.workload!r}; choose one of: {', '.join(WORKLOADS)}")
        if self.complexity not in (*COMPLEXITY_PASSES, REAL_COMPLEXITY):
            raise ConfigError(f"unknown complexity {self.complexity!r}")

    @property
    def cell(self) -> tuple[str, int, str]:
        """(workload, size_kb, complexity): cases sharing it compare against the same baseline."""
        return (self.workload, self.size_kb, self.complexity)


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One row of raw.csv: the case and what it measured."""

    strategy: str
    workers: int
    workload: str
    size_kb: int
    complexity: str
    n_docs: int
    repeat: int
    wall_s: float
    ok: int
    failed: int
    docs_per_s: float
    mb_per_s: float
    cpu_s: float
    cpu_cores_mean: float
    cpu_cores_peak: float
    per_core_pct: str
    rss_peak_mb: float
    threads_peak: int
    processes_peak: int
    ctx_voluntary: int
    ctx_involuntary: int
    other_cores: float = 0.0  # cores other processes on the machine kept busy meanwhile
    error: str = ""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def available_strategies(names: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(importable strategies, {name: why not}) among ``names`` (default: every strategy of the
    registry that imports here and runs without services)."""
    wanted = list(names) if names else [n for n in EXECUTORS if capability(n, "distributed") is False]
    ready, missing = [], {}
    for name in wanted:
        if name in PEERS:
            ready.append(name)
            continue
        try:
            executor_class(name)
        except ImportError as exc:
            missing[name] = f"not importable ({exc})"
            continue
        ready.append(name)
    return ready, missing


def _execute(case: BenchCase, job: Job, refs: Sequence[DocumentRef]) -> tuple[int, int]:
    """(successes, outcomes): ``tiny`` runs whole (journal included), the others the strategy alone."""
    if case.workload == TINY_WORKLOAD:
        return run_tiny(case.strategy, case.workers, job, refs)
    peer = PEERS.get(case.strategy)
    if peer is not None:
        return _tally(peer(job, refs, case.workers))
    with get_executor(case.strategy, workers=case.workers) as executor:
        return _tally(list(executor.map_unordered(job, refs)))


def _tally(outcomes: Sequence[Outcome]) -> tuple[int, int]:
    return sum(1 for o in outcomes if o.status.is_success), len(outcomes)


def measure_case(
    case: BenchCase,
    job: Job,
    *,
    clock: Clock = SYSTEM_CLOCK,
    warmup: bool = False,
    prepare: Callable[[], None] | None = None,
) -> BenchRow:
    """Run ``job`` on the first ``case.n_docs`` refs of its source in this process and measure it.

    ``warmup`` first runs a few documents unmeasured (imports, pool start paths, page cache);
    ``prepare`` runs just before the measurement (resetting the emulator's random stream, so every
    case draws the same latencies). A strategy that breaks gives a row with ``error`` set.
    """
    refs = list(itertools.islice(job.source, case.n_docs))
    if warmup:
        _execute(case, job, refs[: 2 * case.workers])
    if prepare is not None:
        prepare()
    with TreeSampler(clock=clock) as sampler:
        try:
            tally, error = _execute(case, job, refs), ""
        except Exception as exc:  # the strategy itself failed: record why, keep benchmarking
            tally, error = (0, 0), f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        usage = sampler.stop()
    return _row(case, refs, tally, usage, error)


def _measure_positional(
    case: BenchCase, job: Job, clock: Clock, warmup: bool, prepare: Callable[[], None] | None
) -> BenchRow:
    return measure_case(case, job, clock=clock, warmup=warmup, prepare=prepare)


def run_case(
    case: BenchCase,
    job: Job,
    *,
    clock: Clock = SYSTEM_CLOCK,
    warmup: bool = False,
    timeout: float | None = None,
    prepare: Callable[[], None] | None = None,
) -> BenchRow:
    """``measure_case`` in a fresh forked child; a crash or hang becomes a row with ``error`` set."""
    try:
        return in_child(_measure_positional, case, job, clock, warmup, prepare, timeout=timeout)
    except DocmillError as exc:
        return _row(case, [], (0, 0), EMPTY_USAGE, f"{type(exc).__name__}: {exc}")


def _row(
    case: BenchCase, refs: Sequence[DocumentRef], tally: tuple[int, int], usage: ResourceUsage, error: str
) -> BenchRow:
    ok, count = tally
    nbytes = sum(ref.size or 0 for ref in refs)
    wall = usage.wall_seconds
    done = bool(count) and not error and wall > 0
    return BenchRow(
        **{
            f: getattr(case, f)
            for f in ("strategy", "workers", "workload", "size_kb", "complexity", "n_docs")
        },
        repeat=case.repeat,
        wall_s=round(wall, 6),
        ok=ok,
        failed=len(refs) - ok,
        docs_per_s=count / wall if done else math.nan,
        mb_per_s=nbytes / 1e6 / wall if done else math.nan,
        cpu_s=round(usage.cpu_seconds, 4),
        cpu_cores_mean=round(usage.cpu_cores_mean, 3),
        cpu_cores_peak=round(usage.cpu_cores_peak, 3),
        per_core_pct=" ".join(f"{p:.0f}" for p in usage.per_core_percent),
        rss_peak_mb=round(usage.rss_peak_bytes / 2**20, 1),
        threads_peak=usage.threads_peak,
        processes_peak=usage.processes_peak,
        ctx_voluntary=usage.ctx_voluntary,
        ctx_involuntary=usage.ctx_involuntary,
        other_cores=round(max(0.0, sum(usage.per_core_percent) / 100 - usage.cpu_cores_mean), 3),
        error=error,
    )


@dataclass(frozen=True, slots=True)
class MatrixSpec:
    """What to measure. ``docs`` None = calibrate so a sequential run takes ``cell_seconds``.

    With ``corpus`` set, the matrix has one cell: that real folder through ExtractText (and
    ``classifier`` with ``settings``, if named); sizes, complexities and workloads do not apply.
    """

    strategies: tuple[str, ...]
    workers: tuple[int, ...] = (1, 2, 4, 8)
    sizes_kb: tuple[int, ...] = (10, 100, 500)
    complexities: tuple[str, ...] = ("light", "medium", "heavy")
    workloads: tuple[str, ...] = DEFAULT_WORKLOADS
    repeat: int = 3
    docs: int | None = None
    cell_seconds: float = 2.0
    max_docs: int = 2000
    seed: int = 0
    warmup: bool = True
    case_timeout: float = 900.0
    corpus: str | None = None
    classifier: str | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ConfigError("no strategy to benchmark")
        if self.repeat < 1 or self.cell_seconds <= 0 or any(w < 1 for w in self.workers):
            raise ConfigError("repeat, cell_seconds and workers must be positive")
        for workload in self.workloads:
            if workload not in WORKLOADS:
                raise ConfigError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
        for level in self.complexities:
            if level not in COMPLEXITY_PASSES:
                raise ConfigError(
                    f"unknown complexity {level!r}; choose one of: {', '.join(COMPLEXITY_PASSES)}"
                )

    def cells(self) -> Iterator[tuple[str, int, str]]:
        if self.corpus is not None:
            yield REAL_WORKLOAD, _mean_kb(Path(self.corpus)), REAL_COMPLEXITY
            return
        for workload in self.workloads:
            if workload == TINY_WORKLOAD:  # records of ~100 bytes, no work to grade: one cell
                yield workload, 1, self.complexities[0]
                continue
            for size in self.sizes_kb:
                for level in self.complexities:
                    yield workload, size, level

    def cases(self, cell: tuple[str, int, str], n_docs: int) -> list[BenchCase]:
        """The cell's cases, repetitions interleaved.

        ``sequential`` runs at 1 worker only, at the start *and* end of every repetition: every
        speedup divides by its median, so a baseline caught by a burst of someone else's work
        would skew the whole cell.
        """
        workload, size, level = cell
        others = [(s, w) for s in self.strategies if s != "sequential" for w in self.workers]
        plan = [("sequential", 1), *others, ("sequential", 1)] if others else [("sequential", 1)]
        return [
            BenchCase(s, w, workload, size, level, n_docs, rep) for rep in range(self.repeat) for s, w in plan
        ]

    def n_cases(self) -> int:
        return sum(len(self.cases(cell, 1)) for cell in self.cells())


ProgressHook = Callable[[BenchCase, BenchRow], None]


class Bench:
    """Runs a MatrixSpec: generates corpora, calibrates document counts, warms up, measures."""

    def __init__(self, spec: MatrixSpec, workdir: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.spec = spec
        self.workdir = workdir
        self.clock = clock
        self.emulators = Emulators(workdir, seed=spec.seed)

    def corpus(self, size_kb: int, n_docs: int) -> Path:
        folder = self.workdir / f"corpus-{size_kb}k"
        have = len(list(folder.glob("doc-*.txt"))) if folder.is_dir() else 0
        if have < n_docs:
            write_corpus(folder, size_kb=size_kb, n_docs=n_docs, seed=self.spec.seed)
        return folder

    def job_for(self, cell: tuple[str, int, str], n_docs: int) -> Job:
        workload, size, level = cell
        if self.spec.corpus is not None:
            return build_job(
                Path(self.spec.corpus),
                workload,
                level,
                classifier=self.spec.classifier,
                settings=self.spec.settings,
            )
        if workload == TINY_WORKLOAD:
            return tiny_job(write_records(self.workdir / "records", n_docs))
        llm = self.emulators.settings(level) if workload in LLM_WORKLOADS else None
        return build_job(self.corpus(size, n_docs), workload, level, settings=llm)

    def calibrate(self, cell: tuple[str, int, str]) -> int:
        """Documents per case: fixed, the whole real corpus, or ``cell_seconds`` of sequential work."""
        if self.spec.docs is not None:
            return self.spec.docs
        if self.spec.corpus is not None:
            return self.job_for(cell, 0).source.count() or 1
        if cell[0] == TINY_WORKLOAD:
            return TINY_DOCS  # per-record cost is the point: enough records to swamp start-up
        probe = 4
        job = self.job_for(cell, probe)
        job.setup()
        started = self.clock.monotonic()
        for ref in itertools.islice(job.source, probe):
            job.run(ref)
        per_doc = max(1e-6, (self.clock.monotonic() - started) / probe)
        job.teardown()
        floor = max(8, 2 * max(self.spec.workers))
        return min(self.spec.max_docs, max(floor, math.ceil(self.spec.cell_seconds / per_doc)))

    def run(
        self,
        on_row: ProgressHook | None = None,
        *,
        deadline: float | None = None,
        measured: MeasuredCases | None = None,
    ) -> list[BenchRow]:
        """Every case not already ``measured`` (by an earlier, stopped run of the same matrix), or
        those of them that start before ``deadline`` (a ``clock.monotonic()`` time)."""
        with self.emulators:
            return self._run(on_row, deadline, measured or MeasuredCases())

    def _run(
        self, on_row: ProgressHook | None, deadline: float | None, measured: MeasuredCases
    ) -> list[BenchRow]:
        rows: list[BenchRow] = []
        for cell in self.spec.cells():
            if deadline is not None and self.clock.monotonic() >= deadline:
                break
            n_docs = measured.n_docs(cell) or self.calibrate(cell)
            cases = measured.remaining(self.spec.cases(cell, n_docs))
            if not cases:
                continue
            job = self.job_for(cell, n_docs)
            for case in cases:
                if deadline is not None and self.clock.monotonic() >= deadline:
                    break
                prepare = self.emulators.reset if cell[0] in LLM_WORKLOADS else None
                row = run_case(
                    case,
                    job,
                    clock=self.clock,
                    warmup=self.spec.warmup,
                    timeout=self.spec.case_timeout,
                    prepare=prepare,
                )
                rows.append(row)
                if on_row is not None:
                    on_row(case, row)
        return rows


def _mean_kb(root: Path) -> int:
    sizes = [p.stat().st_size for p in root.rglob("*") if p.is_file()]
    return max(1, round(sum(sizes) / len(sizes) / 1024)) if sizes else 1
