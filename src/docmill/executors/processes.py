"""ProcessExecutor: a pool of worker processes fed fixed-size chunks of refs.

``job.setup()`` runs once per worker process; documents are read in the workers, so only refs go
out and outcomes come back. A worker that dies takes only the document it was on with it (CRASHED,
with the signal or exit code); a worker stuck past the time limit is killed (FAILED, timeout); both
are replaced. See ``_pool.py`` for the machinery and ``work_queue.py`` for adaptive chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.executors.pool.dispatch import PooledExecutor
from docmill.executors.pool.parent import WorkerHandle
from docmill.settings import check


class ProcessExecutor(PooledExecutor):
    """``workers`` processes (default: usable cores); ``chunksize`` refs per message (default 1).

    Chunks of 1 balance best when documents take milliseconds or more; raise ``chunksize`` (or
    use ``queue``, which sizes chunks itself) when they take microseconds.
    """

    name = "processes"

    @dataclass(frozen=True, kw_only=True)
    class Options(PooledExecutor.Options):
        """The pool's options and ``chunksize``: refs per message."""

        chunksize: int = 1

        def __post_init__(self) -> None:
            PooledExecutor.Options.__post_init__(self)
            check(self.chunksize >= 1, "chunksize", self.chunksize, "must be >= 1")

    options: ProcessExecutor.Options

    @property
    def chunksize(self) -> int:
        return self.options.chunksize

    def default_in_flight(self) -> int:
        return max(64, 4 * self.depth * self.workers * self.chunksize)

    def chunk_size(self, worker: WorkerHandle) -> int:
        return self.chunksize

    def describe(self) -> str:
        return f"processes(workers={self.workers}, chunksize={self.chunksize})"
