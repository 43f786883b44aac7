"""ProcessExecutor: a pool of worker processes fed fixed-size chunks of refs.

``job.setup()`` runs once per worker process; documents are read in the workers, so only refs go
out and outcomes come back. A worker that dies takes only the document it was on with it (CRASHED,
with the signal or exit code); a worker stuck past the time limit is killed (FAILED, timeout); both
are replaced. See ``_pool.py`` for the machinery and ``work_queue.py`` for adaptive chunking.
"""

from __future__ import annotations

from typing import Any

from docmill.errors import ConfigError
from docmill.executors.pool.dispatch import PooledExecutor
from docmill.executors.pool.parent import WorkerHandle


class ProcessExecutor(PooledExecutor):
    """``workers`` processes (default: usable cores); ``chunksize`` refs per message (default 1).

    Chunks of 1 balance best when documents take milliseconds or more; raise ``chunksize`` (or
    use ``queue``, which sizes chunks itself) when they take microseconds.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, *, chunksize: int = 1, **options: Any) -> None:
        if chunksize < 1:
            raise ConfigError(f"chunksize must be >= 1, got {chunksize}")
        self.chunksize = chunksize
        super().__init__(workers, **options)

    def default_in_flight(self) -> int:
        return max(64, 4 * self.depth * self.workers * self.chunksize)

    def chunk_size(self, worker: WorkerHandle) -> int:
        return self.chunksize

    def describe(self) -> str:
        return f"processes(workers={self.workers}, chunksize={self.chunksize})"
