"""What the process strategies cost their parent, in figures a busy machine does not move.

    python benchmarks/bench_parent.py [n]

For each strategy, best of interleaved rounds:

* the parent's own CPU per document (``getrusage(RUSAGE_SELF)``; the parent CPU of a 20-document
  run is subtracted: pool start and stop);
* the workers' time on a CPU, runnable but waiting for a core, and asleep, from every worker
  thread's ``/proc/<pid>/task/<tid>/schedstat`` sampled every 10 ms. Asleep is 2 × wall minus the
  other two: time a worker waited for the parent. Waiting for a core is the machine's load.

Workloads: ``n`` documents of ~5 ms CPU (processes, queue, batches, hybrid), and 3 × ``n`` of
~2 ms CPU then a 50 ms await (staged, hybrid). Linux only (schedstat).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil
from bench_strategies import REPEAT, WORKERS, _cpu_rounds, run_docmill

from docmill.job import Job
from docmill.pipeline import Pipeline
from docmill.testing import AsyncSleepProcessor, CpuProcessor, MemorySource


@dataclass(frozen=True)
class Sample:
    wall: float
    parent_cpu: float  # seconds, this process only
    on_cpu: float  # seconds, all worker threads
    queued: float  # seconds runnable but not running, all worker threads


def _schedstat(pid: int) -> tuple[int, int]:
    run = wait = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
            fields = fh.read().split()
        run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait


def _watch(last: dict[int, tuple[int, int]], stop: threading.Event, own: list[float]) -> None:
    """Sample the workers until ``stop``; ``own`` gets this thread's CPU, which is not the pool's."""
    started, me = time.thread_time(), psutil.Process()
    while not stop.wait(0.01):
        for child in me.children():
            try:
                last[child.pid] = _schedstat(child.pid)
            except OSError:
                continue  # it just exited; its last sample stands
    own.append(time.thread_time() - started)


def _rusage() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(name: str, job: Job, n: int, options: dict[str, Any]) -> Sample:
    last: dict[int, tuple[int, int]] = {}
    own: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(last, stop, own), daemon=True)
    cpu, started = _rusage(), time.perf_counter()
    watcher.start()
    count = run_docmill(name, job, n, **options)
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    cpu = _rusage() - cpu - own[0]
    assert count == n, (name, count, n)
    on_cpu = sum(run for run, _ in last.values()) / 1e9
    return Sample(wall, cpu, on_cpu, sum(wait for _, wait in last.values()) / 1e9)


def rows(job: Job, n: int, cases: dict[str, tuple[str, dict[str, Any]]], small: int = 20) -> None:
    samples: dict[str, list[tuple[Sample, float]]] = {label: [] for label in cases}
    for _ in range(REPEAT):
        for label, (name, options) in cases.items():
            fixed = measure(name, job, small, options).parent_cpu
            sample = measure(name, job, n, options)
            samples[label].append((sample, max(0.0, sample.parent_cpu - fixed) / (n - small)))
    for label, runs in samples.items():
        per_doc = statistics.median(p for _, p in runs)
        best = min((s for s, _ in runs), key=lambda s: s.wall)
        # asleep only means "waiting for the parent" for workers running one document at a time
        serial = cases[label][0] != "hybrid"
        asleep = f"{WORKERS * best.wall - best.on_cpu - best.queued:5.2f} s" if serial else "—"
        print(
            f"  {label:<10} parent {per_doc * 1e6:6.1f} µs/doc (median) | best wall {best.wall:5.2f} s: "
            f"workers on CPU {best.on_cpu:5.2f} s, queued {best.queued:5.2f} s, asleep {asleep}"
        )


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 400
    rounds = _cpu_rounds(0.005)
    print(f"bench_parent: {os.cpu_count()} CPUs, {WORKERS} workers, load {os.getloadavg()[0]:.1f}")
    print(f"{n} documents of ~5 ms CPU")
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        name: (name, {"workers": WORKERS}) for name in ("processes", "queue", "batches")
    }
    cases["hybrid"] = ("hybrid", {"max_processes": WORKERS})
    rows(Job(MemorySource(), CpuProcessor(rounds=rounds)), n, cases)
    mixed = Job(MemorySource(), Pipeline(CpuProcessor(rounds=rounds * 2 // 5), AsyncSleepProcessor(0.05)))
    print(f"{3 * n} documents of ~2 ms CPU then a 50 ms await")
    rows(
        mixed,
        3 * n,
        {"staged": ("staged", {"workers": WORKERS}), "hybrid": ("hybrid", {"max_processes": WORKERS})},
    )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
