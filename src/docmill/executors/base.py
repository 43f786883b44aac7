"""The Executor ABC: one abstract method, ``map_unordered``; the rest is derived.

Executors only schedule ``Job.run`` over refs. Retry, time limits and loading live in the Job;
journal, sinks and progress live in the parent (the runner). To add a strategy, subclass
:class:`Executor`, implement ``map_unordered`` and register it in ``docmill.executors.EXECUTORS``;
it is done when ``tests/contract`` passes for it.

A strategy's options are its ``Options``: a frozen, keyword-only dataclass holding only the keys
that strategy reads (a subclass extends its parent's ``Options``), checked in ``__post_init__``
with :func:`docmill.settings.check`. ``strategy_options:`` in docmill.yaml and the keyword
arguments of ``get_executor`` both become one, so an option is spelled in one place. What a
strategy *is* (forks processes, overlaps I/O, is sized by ``parallelization:``, …) is said by its
capability class attributes, which ``_build`` and the benchmark read instead of lists of names.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.executors.sizing import MAX_IN_FLIGHT, cap_count, cap_to_pending, usable_cores
from docmill.job import Job
from docmill.outcome import Outcome
from docmill.settings import check, from_mapping

IoSlots = Literal["workers", "threads", "in_flight"]


@dataclass(frozen=True, slots=True)
class ExecutorStats:
    """A frozen snapshot the progress line and the benchmark read."""

    workers: int
    in_flight: int = 0
    completed: int = 0
    crashed_workers: int = 0
    replaced_workers: int = 0
    detail: str = ""


def default_workers() -> int:
    """Usable CPU cores (respects affinity masks and cgroup pinning)."""
    return usable_cores()


class Executor(abc.ABC):
    """A parallelization strategy.

    ``workers`` is the degree of parallelism (processes, threads or coroutines, by strategy; None =
    the strategy's default). ``max_in_flight`` bounds how many refs have been pulled from the source
    and not yet yielded back, which keeps memory bounded for any source size.
    """

    name: ClassVar[str] = "executor"

    # ---- capabilities: what the strategy is, read by _build, auto and the benchmark
    parallel: ClassVar[bool] = True
    """False for the one-at-a-time oracle (``sequential``), the benchmarks' baseline."""
    needs_processes: ClassVar[bool] = False
    """Forks worker processes: their count is capped by cores and available memory."""
    nested: ClassVar[bool] = False
    """Sized by the ``parallelization:`` section (``max_processes`` × ``max_threads_per_process``)."""
    distributed: ClassVar[bool] = False
    """Runs on remote workers through a broker: takes ``broker:``/``queue:``, needs services."""
    overlaps_io: ClassVar[bool] = False
    """Its I/O concurrency is not its worker count (async stages, threads inside processes)."""
    io_slots: ClassVar[IoSlots] = "workers"
    """How many waits one host overlaps: one per worker, up to a thread count, or all in flight."""
    delegates: ClassVar[bool] = False
    """Picks another strategy at run time (``auto``): not measured on its own."""

    @dataclass(frozen=True, kw_only=True)
    class Options:
        """The options every strategy takes; a strategy's own ``Options`` extends its parent's.

        ``max_in_flight``: refs pulled from the source and not yet yielded back (None = the
        strategy's default).
        """

        max_in_flight: int | None = None

        def __post_init__(self) -> None:
            ok = self.max_in_flight is None or self.max_in_flight >= 1
            check(ok, "max_in_flight", self.max_in_flight, "must be >= 1")

    def __init__(
        self, workers: int | None = None, *, options: Options | None = None, **settings: Any
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.options = self.resolve_options(options, settings)
        self.requested_workers = workers
        self.workers = self.bounded(workers or self.default_workers(), explicit=workers is not None)
        self.sized = self.workers  # a run may use fewer: no more than its documents
        self.max_in_flight = cap_count(
            self.options.max_in_flight or self.default_in_flight(), MAX_IN_FLIGHT, "max_in_flight"
        )
        self._closed = False

    @classmethod
    def resolve_options(cls, options: Options | None, settings: Mapping[str, Any]) -> Options:
        """``options`` (an ``Options``) or the keyword ``settings``, as this strategy's ``Options``."""
        if options is not None and settings:
            raise ConfigError(f"{cls.name}: pass options= or keyword options, not both")
        return cls.options_from(settings if options is None else options)

    @classmethod
    def options_from(cls, data: Mapping[str, Any] | Options, path: str = "") -> Options:
        """This strategy's ``Options`` from plain data; ``SettingError`` names a key it does not take."""
        if isinstance(data, cls.Options):
            return data
        return from_mapping(cls.Options, data, path)

    def default_workers(self) -> int:
        return default_workers()

    def bounded(self, workers: int, *, explicit: bool) -> int:
        """``workers`` within what this strategy can use here (processes, threads: see ``sizing``)."""
        return workers

    def default_in_flight(self) -> int:
        return max(16, 4 * self.workers)

    def fit_to_pending(self, refs: Iterable[DocumentRef]) -> Iterator[DocumentRef]:
        """The refs, unchanged; first, ``workers`` set to no more than there are documents to run.

        Up to ``sized`` refs are pulled ahead (never past ``max_in_flight``): when the source runs
        dry before that, this run's workers are only as many as what it gave. For strategies that
        start their workers up front (processes, threads).
        """
        refs, wanted = iter(refs), min(self.sized, self.max_in_flight)
        head = list(itertools.islice(refs, wanted))
        pending = len(head) if len(head) < wanted else None
        asked = self.requested_workers
        told = asked is not None and self.sized < asked  # the ceiling was already announced
        self.workers = cap_to_pending(self.sized, pending, None if told else asked)
        return itertools.chain(head, refs)

    @abc.abstractmethod
    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        """Yield exactly one Outcome per ref, in completion order.

        Pull refs lazily, at most ``max_in_flight`` ahead. Call ``job.setup()`` at most once per
        worker. A worker that dies holding a document yields ``Status.CRASHED`` for it and is
        replaced. Raise BrokenExecutorError only when the strategy itself cannot continue.
        """

    def map(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        """Outcomes in the order of ``refs`` (buffers out-of-order completions)."""
        order: dict[str, int] = {}

        def numbered() -> Iterator[DocumentRef]:
            for i, ref in enumerate(refs):
                order[ref.id] = i
                yield ref

        pending: dict[int, Outcome] = {}
        next_index = 0
        for outcome in self.map_unordered(job, numbered()):
            pending[order.pop(outcome.ref.id)] = outcome
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1

    def statistics(self) -> ExecutorStats:
        return ExecutorStats(workers=self.workers)

    def describe(self) -> str:
        """One line for logs and run records: strategy and its sizing."""
        return f"{self.name}(workers={self.workers})"

    def close(self) -> None:
        """Release pools and threads. Idempotent."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
