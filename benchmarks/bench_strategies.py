"""Strategies side by side, with peer pools running the same ``Job.run``, in one run.

    python benchmarks/bench_strategies.py [tiny] [cpu] [latency] [auto] [memory] [startup]

Sections (all by default):

* tiny     per-document overhead: 100,000 no-op documents from a lazy ref stream; docmill's
           strategies against ``Pool.imap_unordered``, ``ProcessPoolExecutor.map`` (chunksize
           1000), joblib (auto batching) and mpire (chunk 1000).
* cpu      ~5 ms of CPU per document, 2 workers: speedup over sequential, peers included.
* latency  an AsyncProcessor awaiting 50 ms: achieved / ideal throughput at 8 … 2,048 in flight.
* auto     auto against the best fixed strategy on CPU-heavy, latency-heavy and mixed work.
* memory   peak RSS of the whole process tree while a 1,000,000-ref source goes through ``queue``.
* startup  pool start-up, fork against spawn.

Figures depend on the machine and on what else runs on it; compare rows of one run.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import psutil

from docmill.document import DocumentRef
from docmill.executors import get_executor
from docmill.executors._pool import Pool
from docmill.executors.auto import AutoExecutor
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.pipeline import Pipeline
from docmill.testing import AsyncSleepProcessor, CpuProcessor, MemorySource, NoopProcessor, iter_refs

WORKERS = 2
_JOB: Job | None = None  # set before forking, for peers that take a plain function


def _peer_run(ref: DocumentRef) -> Outcome:
    assert _JOB is not None
    return _JOB.run(ref)


def _peer_init() -> None:
    assert _JOB is not None
    _JOB.setup()


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = fn()
    return time.perf_counter() - started, count


def run_docmill(name: str, job: Job, refs: Iterable[DocumentRef], **options: Any) -> int:
    with get_executor(name, **options) as executor:
        return sum(1 for _ in executor.map_unordered(job, refs))


def run_pool(job: Job, refs: Iterable[DocumentRef], chunksize: int) -> int:
    with multiprocessing.get_context("fork").Pool(WORKERS, initializer=_peer_init) as pool:
        return sum(1 for _ in pool.imap_unordered(_peer_run, refs, chunksize=chunksize))


def run_ppe(job: Job, refs: Iterable[DocumentRef], chunksize: int) -> int:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_peer_init) as pool:
        return sum(1 for _ in pool.map(_peer_run, refs, chunksize=chunksize))


def run_joblib(job: Job, refs: Iterable[DocumentRef], chunksize: int) -> int:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=WORKERS, return_as="generator_unordered", batch_size="auto")
    return sum(1 for _ in parallel(delayed(job.run)(ref) for ref in refs))


def run_mpire(job: Job, refs: Iterable[DocumentRef], chunksize: int) -> int:
    from mpire.pool import WorkerPool

    with WorkerPool(n_jobs=WORKERS, start_method="fork") as pool:
        return sum(
            1 for _ in pool.imap_unordered(_peer_run, refs, chunk_size=chunksize, worker_init=_peer_init)
        )


PEERS = {
    "Pool.imap_unordered": run_pool,
    "ProcessPoolExecutor.map": run_ppe,
    "joblib": run_joblib,
    "mpire": run_mpire,
}


def _row(label: str, seconds: float, n: int, extra: str = "") -> None:
    print(f"  {label:<34} {seconds:8.3f} s  {seconds / n * 1e6:9.2f} µs/doc  {extra}")


# --------------------------------------------------------------------------------------------- tiny


def bench_tiny(n: int = 100_000) -> None:
    global _JOB
    print(f"tiny: {n:,} no-op documents, {WORKERS} workers")
    job = _JOB = Job(MemorySource(), NoopProcessor())
    results: dict[str, float] = {}
    cases: dict[str, Callable[[], int]] = {
        "docmill sequential": lambda: run_docmill("sequential", job, iter_refs(n)),
        "docmill queue": lambda: run_docmill("queue", job, iter_refs(n), workers=WORKERS),
        "docmill processes chunksize=1000": lambda: run_docmill(
            "processes", job, iter_refs(n), workers=WORKERS, chunksize=1000
        ),
        "docmill batches": lambda: run_docmill("batches", job, iter_refs(n), workers=WORKERS),
        "docmill threads": lambda: run_docmill("threads", job, iter_refs(n), workers=WORKERS),
    }
    for peer, runner in PEERS.items():
        cases[peer] = partial(runner, job, iter_refs(n), 1000)
    for label, case in cases.items():
        seconds, count = timed(case)
        assert count == n, (label, count)
        results[label] = seconds
        _row(label, seconds, n)
    best_docmill = min(v for k, v in results.items() if k.startswith("docmill"))
    best_peer = min(v for k, v in results.items() if not k.startswith("docmill"))
    print(f"  best docmill / best peer time ratio: {best_docmill / best_peer:.2f} (≤ 1 is as fast or faster)")


# ---------------------------------------------------------------------------------------------- cpu


def _cpu_rounds(target_seconds: float) -> int:
    job = Job(MemorySource(), CpuProcessor(rounds=1000))
    started = time.perf_counter()
    for ref in iter_refs(50):
        job.run(ref)
    per_round = (time.perf_counter() - started) / 50 / 1000
    return max(1, int(target_seconds / per_round))


def bench_cpu(n: int = 600) -> None:
    global _JOB
    rounds = _cpu_rounds(0.005)
    print(f"cpu: {n} documents of ~5 ms CPU ({rounds} sha256 rounds), {WORKERS} workers")
    job = _JOB = Job(MemorySource(), CpuProcessor(rounds=rounds))
    base, _ = timed(lambda: run_docmill("sequential", job, iter_refs(n)))
    _row("docmill sequential", base, n, "speedup 1.00")
    cases: dict[str, Callable[[], int]] = {
        name: partial(run_docmill, name, job, iter_refs(n), workers=WORKERS)
        for name in ("processes", "queue", "batches", "hybrid")
    }
    cases["mpire (chunk 1)"] = lambda: run_mpire(job, iter_refs(n), 1)
    cases["joblib"] = lambda: run_joblib(job, iter_refs(n), 1)
    cases["Pool.imap_unordered (chunk 1)"] = lambda: run_pool(job, iter_refs(n), 1)
    for label, case in cases.items():
        seconds, count = timed(case)
        assert count == n
        _row(label, seconds, n, f"speedup {base / seconds:.2f}")


# ------------------------------------------------------------------------------------------ latency


def bench_latency(latency: float = 0.05) -> None:
    print(f"latency: an async step awaiting {latency * 1e3:.0f} ms; efficiency = achieved / ideal docs/s")
    job = Job(MemorySource(), AsyncSleepProcessor(latency))
    for concurrency in (8, 64, 512, 2048):
        n = max(200, concurrency * 10)
        ideal = n * latency / concurrency
        per_proc = max(1, concurrency // WORKERS)
        cases: dict[str, dict[str, Any]] = {
            "asyncio": {"workers": concurrency},
            "hybrid": {"max_processes": WORKERS, "max_threads_per_process": per_proc},
            "staged": {"workers": 1, "io_concurrency": concurrency},
        }
        for name, options in cases.items():
            seconds, count = timed(partial(run_docmill, name, job, iter_refs(n), **options))
            assert count == n
            _row(f"{name} × {concurrency}", seconds, n, f"efficiency {ideal / seconds:.0%}")


def _auto_seconds(job: Job, n: int) -> tuple[float, str]:
    executor = AutoExecutor(workers=WORKERS)
    seconds, _ = timed(lambda: sum(1 for _ in executor.map_unordered(job, iter_refs(n))))
    choice = executor.explain().splitlines()[-1]
    executor.close()
    return seconds, choice


def bench_auto() -> None:
    rounds = _cpu_rounds(0.005)
    workloads = {
        "cpu-heavy (5 ms CPU)": (Job(MemorySource(), CpuProcessor(rounds=rounds)), 600),
        "latency-heavy (50 ms await)": (Job(MemorySource(), AsyncSleepProcessor(0.05)), 6000),
        "mixed (2 ms CPU then 50 ms await)": (
            Job(MemorySource(), Pipeline(CpuProcessor(rounds=rounds * 2 // 5), AsyncSleepProcessor(0.05))),
            1500,
        ),
    }
    fixed: dict[str, dict[str, Any]] = {
        "queue": {"workers": WORKERS},
        "asyncio": {"workers": 256},
        "threads": {"workers": 32},
        "hybrid": {"max_processes": WORKERS},
        "staged": {"workers": WORKERS},
    }
    print("auto: against every fixed strategy on the same work")
    for label, (job, n) in workloads.items():
        times = {
            name: timed(partial(run_docmill, name, job, iter_refs(n), **o))[0] for name, o in fixed.items()
        }
        seconds, choice = _auto_seconds(job, n)
        best = min(times, key=times.__getitem__)
        ratio = seconds / times[best]
        print(f"  {label}: auto {seconds:.2f} s vs best {best} {times[best]:.2f} s → {ratio:.2f}×")
        print(f"    all: {', '.join(f'{k} {v:.2f}' for k, v in times.items())}")
        print(f"    {choice}")


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


def bench_memory(n: int = 1_000_000) -> None:
    print(f"memory: peak RSS of the process tree, {n:,} refs through queue (sampled every 50 ms)")
    job = Job(MemorySource(), NoopProcessor())
    peak, stop = [_tree_rss()], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak.append(_tree_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds, count = timed(lambda: run_docmill("queue", job, iter_refs(n), workers=WORKERS))
    stop.set()
    sampler.join()
    assert count == n
    print(f"  before {peak[0] / 2**20:.0f} MiB, peak {max(peak) / 2**20:.0f} MiB, {seconds:.1f} s")
    refs = list(iter_refs(n))
    print(f"  (a materialised list of {n:,} refs, as batches needs: {_tree_rss() / 2**20:.0f} MiB tree RSS)")
    del refs


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
