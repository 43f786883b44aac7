"""Per-document costs for ``docmill plan``: measured on a sample folder, or read from a bench run.

On a sample, the real pipeline (DirectorySource → ExtractText → optional local classifier) runs
once unmeasured in this process (its excess over the steady state is the one-off start cost:
imports, first reads), then sequentially and once per strategy at one worker per core, each in a
child forked warm; a sample shorter than ``min_seconds`` is run over several rounds, since a
fraction of a second cannot be timed reliably on a busy machine. Outcome arrival times are fitted
with a straight line: the slope is the steady-state seconds per document, the intercept the fixed
start-up (pool start, imports), so a small sample does not mistake start-up for per-document cost.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from docmill.bench.harness import available_strategies, needs_services
from docmill.bench.isolation import in_child
from docmill.bench.pages import page_costs
from docmill.bench.plan import Profile, Scaling, llm_stage
from docmill.bench.report import read_raw
from docmill.bench.sampler import ResourceUsage, TreeSampler
from docmill.bench.summary import Summary, fit_serial_fraction, summarise
from docmill.bench.workloads import REAL_COMPLEXITY, REAL_WORKLOAD, build_job
from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import DocumentRef
from docmill.errors import ConfigError, DocmillError
from docmill.executors import EXECUTORS, capability, get_executor
from docmill.job import Job
from docmill.outcome import Outcome

MAX_ROUNDS = 20


def repeated(refs: Sequence[DocumentRef], rounds: int) -> list[DocumentRef]:
    """``refs`` ``rounds`` times over, with distinct ids (executors may key by id)."""
    if rounds == 1:
        return list(refs)
    return [dataclasses.replace(r, id=f"{r.id}#{k}") for k in range(rounds) for r in refs]


def plan_strategies() -> list[str]:
    """The strategies a plan measures by default: every parallel one that runs here by itself
    (not the sequential baseline, not ``auto``, which picks one of them, not a distributed one)."""
    return [
        name
        for name in EXECUTORS
        if capability(name, "parallel")
        and capability(name, "delegates") is False
        and capability(name, "distributed") is False
    ]


@dataclass(frozen=True, slots=True)
class TimedRun:
    """One strategy over the sample: outcomes, their arrival times (s from start) and resources."""

    strategy: str
    workers: int
    outcomes: list[Outcome]
    arrivals: list[float]
    usage: ResourceUsage

    def line(self) -> tuple[float, float]:
        """(seconds per document, start-up seconds): least-squares line through the arrivals."""
        n = len(self.arrivals)
        if n < 2:
            return (self.usage.wall_seconds / max(1, n), 0.0)
        xs = range(1, n + 1)
        slope, intercept = statistics.linear_regression(xs, self.arrivals)
        slope = slope if slope > 0 else self.usage.wall_seconds / n
        return slope, max(0.0, intercept)


def timed_run(strategy: str, workers: int, job: Job, refs: Sequence[DocumentRef], clock: Clock) -> TimedRun:
    arrivals: list[float] = []
    outcomes: list[Outcome] = []
    with TreeSampler(clock=clock) as sampler:
        started = clock.monotonic()
        with get_executor(strategy, workers=workers) as executor:
            for outcome in executor.map_unordered(job, refs):
                outcomes.append(outcome)
                arrivals.append(clock.monotonic() - started)
        usage = sampler.stop()
    return TimedRun(strategy, workers, outcomes, arrivals, usage)


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _cold_run(job: Job, refs: Sequence[DocumentRef], clock: Clock) -> float:
    """Seconds of one unmeasured pass in this process.

    Its cost beyond the steady state is the one-off a real run pays (lazy imports of parsers,
    first reads from disk); paying it here also means every measured child forks warm, so that
    an import in the middle of a sample does not tilt the fitted per-document cost.
    """
    started = clock.monotonic()
    job.setup()
    for ref in refs:
        job.run(ref)
    job.teardown()
    return clock.monotonic() - started


def _scaling(run: TimedRun, base_per_doc: float, parent_rss_mb: float, cores: int, one_off: float) -> Scaling:
    per_doc, startup = run.line()
    n = min(run.workers, cores)
    speedup = base_per_doc / per_doc
    serial = 1.0 if n <= 1 else (1.0 / speedup - 1.0 / n) / (1.0 - 1.0 / n)
    extra_mb = max(0.0, run.usage.rss_peak_bytes / 2**20 - parent_rss_mb)
    per_worker = extra_mb / (run.usage.processes_peak - 1) if run.usage.processes_peak > 1 else 0.0
    return Scaling(run.strategy, min(1.0, max(0.0, serial)), startup + one_off, per_worker)


def measure_profile(
    sample: Path,
    *,
    strategies: Sequence[str] | None = None,
    classifier: str | None = None,
    settings: Mapping[str, Any] | None = None,
    cores: int | None = None,
    min_seconds: float = 2.0,
    clock: Clock = SYSTEM_CLOCK,
) -> Profile:
    """Run the real pipeline over ``sample`` sequentially and with each strategy; fit the costs.

    A sample taking less than ``min_seconds`` sequentially is measured over several rounds. An
    LLM classifier is not run (it would spend the quota): plan models its stage instead.
    """
    if llm_stage(classifier):
        classifier = None
    job = build_job(sample, REAL_WORKLOAD, REAL_COMPLEXITY, classifier=classifier, settings=settings)
    refs = list(job.source)
    if not refs:
        raise ConfigError(f"no documents found in {sample}")
    here = len(os.sched_getaffinity(0))
    cold = _cold_run(job, refs, clock)
    rounds = max(1, min(MAX_ROUNDS, math.ceil(min_seconds / max(cold, 1e-3))))
    measured = repeated(refs, rounds)  # a small sample is too short to time on a busy machine
    try:
        base = in_child(timed_run, "sequential", 1, job, measured, clock, timeout=3600)
    except DocmillError as exc:
        raise ConfigError(f"the pipeline cannot run on {sample}: {exc}") from exc
    per_doc, startup = base.line()
    per_doc = max(per_doc, 1e-6)  # a sample of empty files still costs something per document
    one_off = max(0.0, cold - startup - per_doc * len(refs))  # lazy imports, first reads
    parent_rss = base.usage.rss_peak_bytes / 2**20
    wanted = [s for s in (strategies or plan_strategies()) if not needs_services(s)]
    ready, _ = available_strategies(wanted)
    scaling = {"sequential": Scaling("sequential", 1.0, startup + one_off, 0.0)}
    skipped = {name: "not importable" for name in wanted if name not in ready}
    limit = _timeout(per_doc, len(measured))
    for name in (s for s in ready if s != "sequential"):
        try:  # in a child: a strategy that crashes on this sample is reported, not fatal
            run = in_child(timed_run, name, here, job, measured, clock, timeout=limit)
        except DocmillError as exc:
            skipped[name] = str(exc)
            continue
        scaling[name] = _scaling(run, per_doc, parent_rss, here, one_off)
    ok = [o for o in base.outcomes if o.result is not None]
    return Profile(
        origin=f"measured on {sample} ({len(refs)} documents)",
        sample_docs=len(refs),
        seconds_per_doc=per_doc,
        cpu_s_per_doc=base.usage.cpu_seconds / len(measured),
        bytes_per_doc=_mean([r.size or 0 for r in refs]),
        chars_per_doc=_mean([float(o.result.get("chars", 0)) for o in ok if o.result is not None]),
        parent_rss_mb=parent_rss,
        scaling=scaling,
        cores=cores or here,
        memory_gb=psutil.virtual_memory().total / 2**30,
        skipped=skipped,
        pages=page_costs(base.outcomes, per_doc),
    )


def _timeout(per_doc: float, n_docs: int) -> float:
    """Generous: a strategy 20× slower than sequential, plus a minute for pool start-up."""
    return 60.0 + 20.0 * per_doc * n_docs


def _pick_cell(summaries: list[Summary], cell: str | None) -> tuple[str, int, str]:
    cells = sorted({s.cell for s in summaries})
    if not cells:
        raise ConfigError("the bench run has no usable rows")
    if cell is not None:
        workload, size, level = (cell.split(":") + ["", "", ""])[:3]
        chosen = (workload, int(size or 0), level)
        if chosen not in cells:
            raise ConfigError(
                f"no cell {cell!r} in the run; have: {', '.join(':'.join(map(str, c)) for c in cells)}"
            )
        return chosen
    preferred = [c for c in cells if c[0] == REAL_WORKLOAD] or [c for c in cells if c[0] == "cpu"] or cells
    return preferred[0]


def profile_from_run(folder: Path, *, cell: str | None = None) -> Profile:
    """A Profile from results/<run-id>: its real-corpus cell, else the first cpu cell (or ``cell``)."""
    if not (folder / "raw.csv").is_file():
        raise ConfigError(f"no raw.csv in {folder}: give a folder written by docmill bench")
    facts = json.loads((folder / "run.json").read_text(encoding="utf-8")).get("machine", {})
    cores = int(facts.get("cores", 1))
    summaries = summarise(read_raw(folder / "raw.csv"), cores=cores)
    chosen = _pick_cell(summaries, cell)
    rows = [s for s in summaries if s.cell == chosen]
    base = next((s for s in rows if s.strategy == "sequential" and s.workers == 1), None)
    if base is None:
        raise ConfigError(f"the run has no sequential baseline for {chosen}")
    return Profile(
        origin=f"bench run {folder.name}, cell {':'.join(map(str, chosen))}",
        sample_docs=base.n_docs,
        seconds_per_doc=base.seconds_per_doc,
        cpu_s_per_doc=base.cpu_s_per_doc,
        bytes_per_doc=chosen[1] * 1024,
        chars_per_doc=chosen[1] * 1024,
        parent_rss_mb=base.rss_peak_mb,
        scaling=_scalings(rows, base, cores),
        cores=cores,
        memory_gb=float(facts.get("memory_gb", 1.0)),
    )


def _scalings(rows: list[Summary], base: Summary, cores: int) -> dict[str, Scaling]:
    result = {"sequential": Scaling("sequential", 1.0)}
    for name in sorted({s.strategy for s in rows} - {"sequential"}):
        mine = [s for s in rows if s.strategy == name]
        points = [(min(s.workers, cores), s.speedup) for s in mine]
        serial = fit_serial_fraction([(float(n), sp) for n, sp in points]) if len(points) > 1 else None
        if serial is None:
            top = max(mine, key=lambda s: s.speedup)
            n = min(top.workers, cores)
            serial = 1.0 if n <= 1 else (1 / top.speedup - 1 / n) / (1 - 1 / n)
        per_worker = max(((s.rss_peak_mb - base.rss_peak_mb) / s.workers for s in mine), default=0.0)
        result[name] = Scaling(name, min(1.0, max(0.0, serial)), 0.0, max(0.0, per_worker))
    return result
