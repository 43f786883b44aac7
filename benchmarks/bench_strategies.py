"""Strategies side by side, with peer pools running the same ``Job.run``, in one run.

    python benchmarks/bench_strategies.py [tiny] [cpu] [latency] [auto] [memory] [startup]

Sections (all by default):

* tiny     per-document overhead: 100,000 no-op documents from a lazy ref stream; docmill's
           strategies against ``Pool.imap_unordered``, ``ProcessPoolExecutor.map`` (chunksize
           1000), joblib (auto batching) and mpire (chunk 1000).
* cpu      ~5 ms of CPU per document, 2 workers: speedup over sequential, peers included.
* latency  an AsyncProcessor awaiting 50 ms: achieved / ideal throughput at 8 … 2,048 in flight.
* auto     auto against the best fixed strategy on CPU-heavy, latency-heavy and mixed work.
* memory   peak RSS of the whole process tree while a 1,000,000-line JSONL source goes through
           each strategy (each in its own forked child).
* startup  pool start-up, fork against spawn.

Figures depend on the machine and on what else runs on it; compare rows of one run. Figures that
the load does not move (the parent's CPU, workers' time asleep): ``benchmarks/bench_parent.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import psutil

from docmill.document import DocumentRef
from docmill.executors import EXECUTORS, get_executor
from docmill.executors.auto import AutoExecutor
from docmill.executors.pool.parent import Pool
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.sources.jsonl import JsonlSource
from docmill.testing import AsyncSleepProcessor, CpuProcessor, MemorySource, NoopProcessor, iter_refs

WORKERS = 2
REPEAT = 3  # best of, interleaved
_JOB: Job | None = None  # set before forking, for peers that take a plain function


def _peer_run(ref: DocumentRef) -> Outcome:
    assert _JOB is not None
    return _JOB.run(ref)


def _peer_init() -> None:
    assert _JOB is not None
    _JOB.setup()


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds, best of the repeats
    cpu: float  # CPU seconds of this process and its reaped children, best of the repeats


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = fn()
    return time.perf_counter() - started, count


def compare(cases: dict[str, Callable[[], int]], n: int, repeat: int = REPEAT) -> dict[str, Timing]:
    """Run every case ``repeat`` times, interleaved (ABC ABC …), and keep the best of each.

    Interleaving spreads a shared machine's changing load over all cases alike.
    """
    walls: dict[str, list[float]] = {label: [] for label in cases}
    cpus: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeat):
        for label, case in cases.items():
            cpu = _cpu()
            seconds, count = timed(case)
            assert count == n, (label, count, n)
            walls[label].append(seconds)
            cpus[label].append(_cpu() - cpu)
    return {label: Timing(min(walls[label]), min(cpus[label])) for label in cases}


def run_docmill(name: str, job: Job, n: int, **options: Any) -> int:
    with get_executor(name, **options) as executor:
        return sum(1 for _ in executor.map_unordered(job, iter_refs(n)))


def run_pool(job: Job, n: int, chunksize: int) -> int:
    with multiprocessing.get_context("fork").Pool(WORKERS, initializer=_peer_init) as pool:
        return sum(1 for _ in pool.imap_unordered(_peer_run, iter_refs(n), chunksize=chunksize))


def run_ppe(job: Job, n: int, chunksize: int) -> int:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_peer_init) as pool:
        return sum(1 for _ in pool.map(_peer_run, iter_refs(n), chunksize=chunksize))


def run_joblib(job: Job, n: int, chunksize: int) -> int:
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    parallel = Parallel(n_jobs=WORKERS, return_as="generator_unordered", batch_size="auto")
    count = sum(1 for _ in parallel(delayed(job.run)(ref) for ref in iter_refs(n)))
    # loky keeps its workers for the next call; like every other contender (whose pool ends with
    # its run), joblib starts and stops its workers inside the timed run
    get_reusable_executor().shutdown(wait=True)
    return count


def run_mpire(job: Job, n: int, chunksize: int) -> int:
    from mpire.pool import WorkerPool

    with WorkerPool(n_jobs=WORKERS, start_method="fork") as pool:
        outcomes = pool.imap_unordered(_peer_run, iter_refs(n), chunk_size=chunksize, worker_init=_peer_init)
        return sum(1 for _ in outcomes)


PEERS = {
    "Pool.imap_unordered": run_pool,
    "ProcessPoolExecutor.map": run_ppe,
    "joblib": run_joblib,
    "mpire": run_mpire,
}


def _row(label: str, t: Timing, n: int, extra: str = "") -> None:
    per_wall, per_cpu = t.wall / n * 1e6, t.cpu / n * 1e6
    print(f"  {label:<34} {t.wall:8.3f} s {per_wall:9.2f} µs/doc wall {per_cpu:9.2f} µs/doc CPU  {extra}")


# --------------------------------------------------------------------------------------------- tiny


def bench_tiny(n: int = 100_000) -> None:
    global _JOB
    print(f"tiny: {n:,} no-op documents, {WORKERS} workers (CPU = parent + reaped workers)")
    job = _JOB = Job(MemorySource(), NoopProcessor())
    cases: dict[str, Callable[[], int]] = {
        "docmill sequential": partial(run_docmill, "sequential", job, n),
        "docmill queue": partial(run_docmill, "queue", job, n, workers=WORKERS),
        "docmill processes chunksize=1000": partial(
            run_docmill, "processes", job, n, workers=WORKERS, chunksize=1000
        ),
        "docmill batches": partial(run_docmill, "batches", job, n, workers=WORKERS),
        "docmill threads": partial(run_docmill, "threads", job, n, workers=WORKERS),
    }
    for peer, runner in PEERS.items():
        cases[f"{peer} (chunk 1000)"] = partial(runner, job, n, 1000)
    results = compare(cases, n)
    for label, t in results.items():
        _row(label, t, n)
    parallel = {k: v.wall for k, v in results.items() if k != "docmill sequential"}
    best_docmill = min(v for k, v in parallel.items() if k.startswith("docmill"))
    best_peer = min(v for k, v in parallel.items() if not k.startswith("docmill"))
    print(
        f"  best docmill / best peer wall-time ratio: {best_docmill / best_peer:.2f} (≤ 1: as fast or faster)"
    )


# ---------------------------------------------------------------------------------------------- cpu


def _cpu_rounds(target_seconds: float) -> int:
    job = Job(MemorySource(), CpuProcessor(rounds=1000))
    started = time.thread_time()
    for ref in iter_refs(50):
        job.run(ref)
    per_round = (time.thread_time() - started) / 50 / 1000
    return max(1, int(target_seconds / per_round))


def bench_cpu(n: int = 600) -> None:
    global _JOB
    rounds = _cpu_rounds(0.005)
    print(f"cpu: {n} documents of ~5 ms CPU ({rounds} sha256 rounds), {WORKERS} workers")
    job = _JOB = Job(MemorySource(), CpuProcessor(rounds=rounds))
    cases: dict[str, Callable[[], int]] = {"docmill sequential": partial(run_docmill, "sequential", job, n)}
    for name in ("processes", "queue", "batches", "hybrid"):
        cases[f"docmill {name}"] = partial(run_docmill, name, job, n, workers=WORKERS)
    cases["mpire (chunk 1)"] = partial(run_mpire, job, n, 1)
    cases["joblib"] = partial(run_joblib, job, n, 1)
    cases["Pool.imap_unordered (chunk 1)"] = partial(run_pool, job, n, 1)
    results = compare(cases, n)
    base = results["docmill sequential"].wall
    for label, t in results.items():
        _row(label, t, n, f"speedup {base / t.wall:.2f}")


# ------------------------------------------------------------------------------------------ latency


def bench_latency(latency: float = 0.05) -> None:
    # WAVES rounds of `concurrency` documents each: start-up and the last partial round weigh
    # ~1/WAVES of the run; DOCMILL_BENCH_WAVES=40 shows the steady state.
    waves = int(os.environ.get("DOCMILL_BENCH_WAVES", "10"))
    print(f"latency: an async step awaiting {latency * 1e3:.0f} ms, {waves} waves per concurrency;")
    print("         efficiency = achieved / ideal docs/s")
    job = Job(MemorySource(), AsyncSleepProcessor(latency))
    for concurrency in (8, 64, 512, 2048):
        n = max(200, concurrency * waves)
        ideal = n * latency / concurrency
        per_proc = max(1, concurrency // WORKERS)
        cases: dict[str, Callable[[], int]] = {
            "asyncio": partial(run_docmill, "asyncio", job, n, workers=concurrency),
            "hybrid": partial(
                run_docmill, "hybrid", job, n, max_processes=WORKERS, max_threads_per_process=per_proc
            ),
            "staged": partial(run_docmill, "staged", job, n, workers=1, io_concurrency=concurrency),
        }
        for name, t in compare(cases, n).items():
            _row(f"{name} × {concurrency}", t, n, f"efficiency {ideal / t.wall:.0%}")


# --------------------------------------------------------------------------------------------- auto


def _run_auto(job: Job, n: int, explained: list[str]) -> int:
    executor = AutoExecutor(workers=WORKERS)
    count = sum(1 for _ in executor.map_unordered(job, iter_refs(n)))
    explained.append(executor.explain().splitlines()[-1])
    executor.close()
    return count


def bench_auto() -> None:
    rounds = _cpu_rounds(0.005)
    cpu = CpuProcessor(rounds=rounds)
    workloads: dict[str, tuple[Job, int, dict[str, dict[str, Any]]]] = {
        "cpu-heavy (5 ms CPU)": (
            Job(MemorySource(), cpu),
            600,
            {
                "queue": {"workers": WORKERS},
                "processes": {"workers": WORKERS},
                "hybrid": {"max_processes": WORKERS},
            },
        ),
        "latency-heavy (50 ms await)": (
            Job(MemorySource(), AsyncSleepProcessor(0.05)),
            6000,
            {
                "asyncio": {"workers": 256},
                "hybrid": {"max_processes": WORKERS, "max_threads_per_process": 128},
                "staged": {"workers": 1},
                "threads": {"workers": 32},
            },  # fmt: skip
        ),
        "mixed (2 ms CPU then 50 ms await)": (
            Job(MemorySource(), Pipeline(CpuProcessor(rounds=rounds * 2 // 5), AsyncSleepProcessor(0.05))),
            1500,
            {
                "staged": {"workers": WORKERS},
                "hybrid": {"max_processes": WORKERS},
                "asyncio": {"workers": 256},
            },
        ),
    }
    print("auto: against the sensible fixed strategies on the same work")
    for label, (job, n, fixed) in workloads.items():
        explained: list[str] = []
        cases: dict[str, Callable[[], int]] = {
            name: partial(run_docmill, name, job, n, **o) for name, o in fixed.items()
        }
        cases["auto"] = partial(_run_auto, job, n, explained)
        results = compare(cases, n)
        best = min((k for k in results if k != "auto"), key=lambda k: results[k].wall)
        ratio = results["auto"].wall / results[best].wall
        auto, fixed_best = results["auto"].wall, results[best].wall
        print(f"  {label}: auto {auto:.2f} s vs best {best} {fixed_best:.2f} s → {ratio:.2f}×")
        print(f"    all: {', '.join(f'{k} {v.wall:.2f}' for k, v in results.items())}")
        print(f"    {explained[-1]}")


# ------------------------------------------------------------------------------------------- memory


def _tree_rss() -> int:
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


MEMORY_STRATEGIES = [name for name in EXECUTORS if name != "celery"]  # celery: bench_distributed.py


def _write_jsonl(path: str, n: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(f'{{"id": "doc-{i:07d}", "text": "the text of document number {i}"}}\n')


def _memory_child(name: str, path: str, conn: Any) -> None:
    """In a forked child: run ``name`` over the JSONL file and report (seconds, count, base, peak)."""
    source = JsonlSource(path)
    job = Job(source, NoopProcessor())
    peak, stop = [_tree_rss()], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak.append(_tree_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    options: dict[str, Any] = {} if name == "sequential" else {"workers": WORKERS}
    started = time.perf_counter()
    with get_executor(name, **options) as executor:
        count = sum(1 for _ in executor.map_unordered(job, source))
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    conn.send((seconds, count, peak[0], max(peak)))


def bench_memory() -> None:
    """Each strategy in its own forked child; ``DOCMILL_BENCH_MEMORY_N`` changes the line count."""
    import tempfile

    n = int(os.environ.get("DOCMILL_BENCH_MEMORY_N", "1000000"))
    print(f"memory: peak RSS of the process tree, a {n:,}-line JSONL source (sampled every 50 ms)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "refs.jsonl")
        _write_jsonl(path, n)
        print(f"  the file: {os.path.getsize(path) / 2**20:.0f} MiB")
        ctx = multiprocessing.get_context("fork")
        for name in MEMORY_STRATEGIES:
            here, there = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_memory_child, args=(name, path, there))
            child.start()
            seconds, count, base, peak = here.recv()
            child.join()
            assert count == n, (name, count)
            print(
                f"  {name:<12} peak {peak / 2**20:5.0f} MiB (start {base / 2**20:3.0f} MiB, "
                f"+{(peak - base) / 2**20:4.0f} MiB)  {seconds:6.1f} s  {n / seconds:8.0f} docs/s"
            )


# ------------------------------------------------------------------------------------------ startup


def bench_startup(repeat: int = 5) -> None:
    print(f"startup: a {WORKERS}-worker pool started and stopped (median of {repeat})")
    job = Job(MemorySource(), NoopProcessor())
    for method in ("fork", "spawn"):
        samples = []
        for _ in range(repeat):
            pool = Pool(job, WORKERS, start_method=method)
            started = time.perf_counter()
            pool.start()
            pool.send(pool.workers[0], [(0, next(iter_refs(1)))])
            while not pool.wait().finished:
                pass
            samples.append(time.perf_counter() - started)
            pool.shutdown(drain=True)
        print(f"  {method:<6} first outcome after {statistics.median(samples) * 1e3:.1f} ms")


SECTIONS: dict[str, Callable[[], None]] = {
    "tiny": bench_tiny,
    "cpu": bench_cpu,
    "latency": bench_latency,
    "auto": bench_auto,
    "memory": bench_memory,
    "startup": bench_startup,
}


def main(argv: list[str]) -> None:
    chosen = argv or list(SECTIONS)
    print(f"bench_strategies: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, sections {chosen}")
    for name in chosen:
        SECTIONS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
