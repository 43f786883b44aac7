"""SequentialExecutor: one document at a time in this thread. The oracle of the contract suite."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from docmill.document import DocumentRef
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.outcome import Outcome


class SequentialExecutor(Executor):
    """``job.setup(); for ref in refs: yield job.run(ref)`` — nothing else."""

    name = "sequential"
    parallel = False

    def default_workers(self) -> int:
        return 1

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        job.setup()
        try:
            for ref in refs:
                yield job.run(ref)
        finally:
            job.teardown()
