"""Distributed-run figures: broker overhead per document, and throughput with 1 vs 2 worker processes.

    python benchmarks/bench_distributed.py [--docs 5000] [--cpu-docs 600] [--broker redis://…]

Starts ``docmill worker`` subprocesses on a private queue (Redis must run), then:

* overhead: no-op documents (``testing.NoopProcessor`` over ``MemorySource``) through the Celery
  strategy at several chunk sizes, against the sequential strategy in this process. The
  difference per document is what the broker, Redis and JSON cost: the goal is <= 1 ms/doc.
* scaling: CPU-bound documents (``testing.CpuProcessor``, ``--cpu-rounds``) on 1 and on 2 worker
  processes.

Figures are medians of ``--repeat`` runs, printed as a table. On a shared 2-core machine the parent,
Redis and the workers compete for the same cores: read ratios, not absolute rates.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "distributed"))

from distributed_helpers import Workers

from docmill.executors.base import Executor
from docmill.executors.distributed import CeleryExecutor
from docmill.executors.sequential import SequentialExecutor
from docmill.job import Job
from docmill.processors.base import Processor
from docmill.testing import CpuProcessor, MemorySource, NoopProcessor


def timed(executor: Executor, processor: Processor, n: int, repeat: int) -> float:
    """Median seconds to get all ``n`` outcomes back."""
    return measure(executor, processor, n, repeat)[0]


def measure(executor: Executor, processor: Processor, n: int, repeat: int) -> tuple[float, float]:
    """(median wall seconds, median ms a document took inside its worker) over ``repeat`` runs."""
    source = MemorySource(n)
    job = Job(source, processor)
    walls, inside = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        outcomes = list(executor.map_unordered(job, source))
        walls.append(time.perf_counter() - start)
        assert len(outcomes) == n, (len(outcomes), n)
        inside.append(sum(o.timings.seconds for o in outcomes) / n * 1000)
    return statistics.median(walls), statistics.median(inside)


def overhead(broker: str, n: int, repeat: int) -> None:
    pool = Workers(broker, count=1, concurrency=2)
    try:
        probe = CeleryExecutor(2, broker=broker, queue=pool.queue)
        pool.wait_ready(probe.app, 1)
        timed(probe, NoopProcessor(), 200, 1)  # warm-up: job load, connections
        local = timed(SequentialExecutor(), NoopProcessor(), n, repeat) / n * 1000
        print(f"\nno-op documents: {n}, 1 worker x 2 processes, median of {repeat}")
        print(f"{'strategy':<24}{'ms/doc':>10}{'overhead ms/doc':>18}{'docs/s':>10}")
        print(f"{'sequential (in process)':<24}{local:>10.4f}{'-':>18}{1000 / local:>10.0f}")
        for chunk in (1, 10, 50, 200):
            ex = CeleryExecutor(2, broker=broker, queue=pool.queue, chunk_size=chunk)
            docs = n if chunk > 1 else min(n, 1000)
            per_doc = timed(ex, NoopProcessor(), docs, repeat) / docs * 1000
            name = f"celery chunk={chunk}"
            print(f"{name:<24}{per_doc:>10.4f}{per_doc - local:>18.4f}{1000 / per_doc:>10.0f}")
    finally:
        pool.stop()


def scaling(broker: str, n: int, repeat: int, rounds: int) -> None:
    processor = CpuProcessor(rounds=rounds)
    local, local_doc = measure(SequentialExecutor(), processor, n, repeat)
    print(f"\nCPU documents: {n}, median of {repeat}; 'ms/doc inside' grows when processes share a core")
    print(f"{'setup':<30}{'seconds':>10}{'docs/s':>10}{'ms/doc inside':>15}{'speed-up':>10}")
    print(f"{'sequential (in process)':<30}{local:>10.2f}{n / local:>10.0f}{local_doc:>15.2f}{1.0:>10.2f}")
    base = None
    for processes in (1, 2):
        pool = Workers(broker, count=processes, concurrency=1)
        try:
            ex = CeleryExecutor(processes, broker=broker, queue=pool.queue, chunk_size=10)
            pool.wait_ready(ex.app, processes)
            timed(ex, processor, 40, 1)
            wall, inside = measure(ex, processor, n, repeat)
        finally:
            pool.stop()
        base = base or wall
        label = f"celery, {processes} worker process{'es' if processes > 1 else ''}"
        ratio = f"(x{base / wall:.2f} vs 1 process)"
        print(f"{label:<30}{wall:>10.2f}{n / wall:>10.0f}{inside:>15.2f}{local / wall:>10.2f}  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--cpu-docs", type=int, default=600)
    parser.add_argument("--cpu-rounds", type=int, default=20_000, help="sha256 rounds per CPU document")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    overhead(args.broker, args.docs, args.repeat)
    scaling(args.broker, args.cpu_docs, args.repeat, args.cpu_rounds)


if __name__ == "__main__":
    main()
