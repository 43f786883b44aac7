"""Resource use of the whole process tree (this process and every descendant) during one measurement.

Totals (CPU seconds, context switches) come from ``getrusage`` for this process and its reaped
children, plus psutil for descendants still alive at the end (a reusable pool keeps its workers):
nothing is lost between samples. Peaks (RSS, threads, busy cores) come from a background thread
sampling the tree with psutil every ``interval`` seconds (0.1). Per-core utilisation is system-wide
(``psutil.cpu_percent(percpu=True)``): on a shared machine it includes other people's work.
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass, field

import psutil

from docmill.clock import SYSTEM_CLOCK, Clock

_CORES = float(os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What one measurement used."""

    wall_seconds: float
    cpu_seconds: float
    cpu_cores_peak: float
    rss_peak_bytes: int
    threads_peak: int
    processes_peak: int
    ctx_voluntary: int
    ctx_involuntary: int
    per_core_percent: tuple[float, ...] = field(default_factory=tuple)

    @property
    def cpu_cores_mean(self) -> float:
        """Average number of cores kept busy by the tree."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


EMPTY_USAGE = ResourceUsage(0.0, 0.0, 0.0, 0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class _Totals:
    cpu: float
    voluntary: int
    involuntary: int


def _rusage_totals() -> _Totals:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _Totals(
        own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        own.ru_nvcsw + kids.ru_nvcsw,
        own.ru_nivcsw + kids.ru_nivcsw,
    )


def _descendant_totals(root: psutil.Process) -> dict[int, _Totals]:
    found: dict[int, _Totals] = {}
    for proc in root.children(recursive=True):
        try:
            cpu = proc.cpu_times()
            ctx = proc.num_ctx_switches()
        except psutil.Error:
            continue
        found[proc.pid] = _Totals(cpu.user + cpu.system, ctx.voluntary, ctx.involuntary)
    return found


class TreeSampler:
    """Measure the process tree between ``start()`` and ``stop()`` (or as a context manager)."""

    def __init__(self, *, interval: float = 0.1, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = interval
        self.clock = clock
        self._root = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rss_peak = 0
        self._threads_peak = 0
        self._procs_peak = 0
        self._cores_peak = 0.0
        self._started = 0.0
        self._before = _Totals(0.0, 0, 0)
        self._live_before: dict[int, _Totals] = {}

    def start(self) -> TreeSampler:
        psutil.cpu_percent(percpu=True)  # sets the system-wide baseline
        self._before = _rusage_totals()
        self._live_before = _descendant_totals(self._root)
        self._started = self.clock.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="docmill-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> ResourceUsage:
        wall = self.clock.monotonic() - self._started
        per_core = tuple(psutil.cpu_percent(percpu=True))
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        totals = self._totals_since_start()
        return ResourceUsage(
            wall_seconds=wall,
            cpu_seconds=totals.cpu,
            cpu_cores_peak=self._cores_peak,
            rss_peak_bytes=self._rss_peak,
            threads_peak=self._threads_peak,
            processes_peak=self._procs_peak,
            ctx_voluntary=totals.voluntary,
            ctx_involuntary=totals.involuntary,
            per_core_percent=per_core,
        )

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread is not None:
                self._thread.join()

    def _totals_since_start(self) -> _Totals:
        after = _rusage_totals()
        cpu = after.cpu - self._before.cpu
        vol = after.voluntary - self._before.voluntary
        invol = after.involuntary - self._before.involuntary
        for pid, now in _descendant_totals(self._root).items():
            then = self._live_before.get(pid, _Totals(0.0, 0, 0))
            cpu += now.cpu - then.cpu
            vol += now.voluntary - then.voluntary
            invol += now.involuntary - then.involuntary
        return _Totals(max(0.0, cpu), max(0, vol), max(0, invol))

    def _loop(self) -> None:
        last_time, last_cpu = self.clock.monotonic(), self.sample()
        while not self._stop.wait(self.interval):
            now, cpu = self.clock.monotonic(), self.sample()
            if now > last_time:
                busy = min(_CORES, max(0.0, cpu - last_cpu) / (now - last_time))  # reaping can jump
                self._cores_peak = max(self._cores_peak, busy)
            last_time, last_cpu = now, cpu

    def sample(self) -> float:
        """One pass over the tree: record RSS, threads and processes; return its CPU seconds so far.

        One ``/proc`` scan per sample: this thread shares the GIL with in-process strategies, so
        its cost is kept small. Reaped children's CPU comes from ``getrusage`` (none is lost).
        """
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss, threads, procs, cpu = 0, 0, 0, kids.ru_utime + kids.ru_stime
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    times = proc.cpu_times()
            except psutil.Error:
                continue
            cpu += times.user + times.system
            procs += 1
        self._rss_peak = max(self._rss_peak, rss)
        self._threads_peak = max(self._threads_peak, threads)
        self._procs_peak = max(self._procs_peak, procs)
        return float(cpu)
