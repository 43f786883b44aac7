"""SharedTokenBucket: one budget for every process on this host.

The bucket's state is 80 bytes (10 doubles, the limit learned from the provider included) in a small
file (under /dev/shm when there is one, so it lives in memory) and every operation holds ``flock``
on that file while it reads, updates and writes the state. The handle is just a path: it pickles
anywhere (fork, spawn, forkserver, through a queue) and two unrelated ``docmill`` processes can even
share one budget by naming the same path. A ``multiprocessing`` Lock + shared array is faster but
only survives being inherited at process start. ``benchmarks/bench_llm.py --limiter`` measured, on a
busy 2-core machine, ~50 k operations/s for this file form (~70 k in all from 2 processes) against
~570 k for a Lock + RawArray: both thousands of times above a provider's request rate (600 RPM is 10
requests/s), so we keep the form that pickles anywhere.

``time.monotonic`` is one system-wide clock on Linux and macOS, so processes agree on "now".
"""

from __future__ import annotations

import fcntl
import os
import struct
import tempfile
import uuid
import weakref
from pathlib import Path

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.limits.token_bucket import BucketLimiter, BucketState, Operation, T

_FORMAT = struct.Struct("10d")


def _default_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class SharedTokenBucket(BucketLimiter):
    """A token bucket whose state is shared by every process that holds (a copy of) it.

    Constructing does no I/O; the file is created on first use. The process that constructed the
    bucket removes the file when the bucket is garbage-collected or the interpreter exits.
    """

    def __init__(
        self,
        rate: float,
        per: float = 60.0,
        *,
        burst: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(rate, per, burst=burst, clock=clock)
        self.path = Path(path) if path is not None else _default_dir() / f"docmill-bucket-{uuid.uuid4().hex}"
        self._fd: int | None = None
        self._pid = 0
        if path is None:  # we made the name up, so it is ours to remove
            weakref.finalize(self, _unlink, self.path, os.getpid())

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # descriptors are per process
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _apply(self, op: Operation[T]) -> T:
        fd = self._descriptor()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            now = self.clock.monotonic()
            raw = os.pread(fd, _FORMAT.size, 0)
            state = (
                BucketState(*_FORMAT.unpack(raw))
                if len(raw) == _FORMAT.size
                else BucketState(self.capacity, now)
            )
            result = op(state, now)
            os.pwrite(fd, _FORMAT.pack(*_fields(state)), 0)
            return result
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's descriptor (the budget stays usable by the others)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.update(_fd=None, _pid=0)
        return state

    def __repr__(self) -> str:
        return f"SharedTokenBucket(rate={self.rate:g}/s, capacity={self.capacity:g}, path={str(self.path)!r})"


def _fields(state: BucketState) -> tuple[float, ...]:
    return (
        state.level,
        state.stamp,
        state.paused_until,
        state.acquired,
        state.refunded,
        state.waits,
        state.waited,
        state.pauses,
        state.learned_rate,
        state.learned_capacity,
    )


def _unlink(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child collecting its copy must not remove the parent's file
        path.unlink(missing_ok=True)
