"""Bounded resources: no strategy starts more processes, threads or pulls more refs than can be used.

A worker process costs a fork, tens of MiB and a share of the cores; past a few per core it only
adds load. ``cap_processes`` bounds a requested count by a ceiling derived from the usable cores
(``PROCESSES_PER_CORE`` each, room for workers that wait on I/O) and the memory available
(``WORKER_MEMORY`` each), and a pool is never bigger than the documents it has to run
(``cap_to_pending``). Threads, awaiting documents and refs in flight have fixed ceilings. Each cap
that changes what the user asked for says so in one warning line.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("docmill.executors")

PROCESSES_PER_CORE = 4  # worker processes per usable core, at most
WORKER_MEMORY = 64 << 20  # bytes a worker process is counted for (~36 MiB measured, plus headroom)
MAX_THREADS = 512  # threads of one pool
MAX_AWAITING = 16_384  # documents awaiting at once on one event loop
MAX_IN_FLIGHT = 1 << 17  # refs pulled ahead (~200 bytes each: ~26 MiB)


def usable_cores() -> int:
    """Usable CPU cores (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return None


def process_ceiling() -> tuple[int, str]:
    """(the most worker processes worth starting here, why): cores and memory decide."""
    cores = usable_cores()
    ceiling, why = PROCESSES_PER_CORE * cores, f"{PROCESSES_PER_CORE} per core on {cores} cores"
    memory = available_memory()
    if memory is not None and memory // WORKER_MEMORY < ceiling:
        ceiling = max(1, memory // WORKER_MEMORY)
        why = f"{memory / (1 << 30):.1f} GiB of memory available, ~{WORKER_MEMORY >> 20} MiB a worker"
    return ceiling, why


def cap_processes(workers: int, *, explicit: bool) -> int:
    """``workers`` bounded by :func:`process_ceiling`; warns when a requested count is cut."""
    ceiling, why = process_ceiling()
    if workers <= ceiling:
        return workers
    _say(explicit, f"workers {workers} capped at {ceiling} worker processes ({why})")
    return ceiling


def cap_to_pending(workers: int, pending: int | None, requested: int | None) -> int:
    """No more workers than documents ``pending`` (when known; at least one); warns when that
    cuts a count the user ``requested`` (None: nothing to tell). With nothing pending no worker
    starts, so the count stays as asked (auto's probe may have run every document)."""
    if not pending or pending >= workers:
        return workers
    fitted = pending
    _say(
        requested is not None and requested > fitted,
        f"workers {requested} capped at {fitted}: {pending} documents to run",
    )
    return fitted


def cap_count(value: int, ceiling: int, what: str) -> int:
    """``value`` bounded by ``ceiling``, with a warning naming ``what`` when cut."""
    if value <= ceiling:
        return value
    log.warning("%s %d capped at %d", what, value, ceiling)
    return ceiling


def _say(explicit: bool, message: str) -> None:
    """A warning for a count the user asked for; a debug note for a default one."""
    log.log(logging.WARNING if explicit else logging.DEBUG, message)
