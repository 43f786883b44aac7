"""The tree sampler sees work done by child processes, not only by this one."""

from __future__ import annotations

import multiprocessing
import time

from docmill.bench.sampler import TreeSampler


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_counts_cpu_and_memory_of_children() -> None:
    context = multiprocessing.get_context("fork")
    with TreeSampler(interval=0.02) as sampler:
        workers = [context.Process(target=_burn, args=(0.3,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        usage = sampler.stop()
    assert usage.cpu_seconds >= 0.5  # two children × 0.3 s, reaped before stop()
    assert usage.processes_peak >= 2
    assert usage.rss_peak_bytes > 10 * 2**20
    assert usage.threads_peak >= 2  # this thread and the sampler's
    assert usage.ctx_voluntary + usage.ctx_involuntary > 0
    assert usage.per_core_percent and all(0 <= p <= 100 for p in usage.per_core_percent)
    assert 0 < usage.cpu_cores_mean <= multiprocessing.cpu_count() + 0.5


def test_idle_wait_uses_little_cpu() -> None:
    with TreeSampler(interval=0.02) as sampler:
        time.sleep(0.3)
        usage = sampler.stop()
    assert usage.wall_seconds >= 0.3
    assert usage.cpu_cores_mean < 0.5
