"""The crash matrix: each way a document can misbehave × every strategy.

The last assertion of every row: the run goes on and every other document ends ``ok``. The
in-process strategies (sequential, threads, asyncio) cannot outlive a hard crash of their own
process; for those rows the test runs them in a forked child and checks that the crash did take
the run down, so the documentation's warning stays true.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from contract_kit import IN_PROCESS, live_children, make_job

from docmill.document import Document
from docmill.executors import get_executor
from docmill.executors.pool.worker import rss_bytes
from docmill.outcome import Outcome, Status
from docmill.processors.base import Processor
from docmill.testing import (
    ExitingProcessor,
    HangingProcessor,
    HardExitProcessor,
    KillingProcessor,
    LeakingProcessor,
    MemorySource,
    RaisingProcessor,
    SegfaultProcessor,
    TargetedProcessor,
    UnpicklableResultProcessor,
    forget_leaks,
)

pytestmark = pytest.mark.timeout(60)

N = 40
TARGETS = {"doc-000003", "doc-000025"}  # one inside auto's probe sample, one after it
TIMEOUT = 0.5
LEAK_MB = 300


class StubbornHangProcessor(TargetedProcessor):
    """Hangs with SIGALRM blocked: only a watchdog that kills the worker can end it."""

    name = "crash-stubborn-hang"

    def misbehave(self, doc: Document) -> Document:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(5)
        return doc


@dataclass(frozen=True)
class Row:
    name: str
    make: Callable[[], Processor]
    status: Status  # for the process-based strategies
    error: str  # substring of "Type: message"
    fatal_in_process: bool = False  # kills sequential / threads / asyncio outright
    in_process: Status | None = None  # their outcome when it differs (None: same as above)
    options: tuple[tuple[str, object], ...] = ()


ROWS = [
    Row("raises", lambda: RaisingProcessor(TARGETS), Status.FAILED, "UnsupportedDocument: refusing"),
    Row("sys.exit", lambda: ExitingProcessor(TARGETS), Status.FAILED, "SystemExit: 3"),
    Row("os._exit", lambda: HardExitProcessor(TARGETS), Status.CRASHED, "exited with code 7", True),
    Row("SIGKILL", lambda: KillingProcessor(TARGETS), Status.CRASHED, "killed by SIGKILL", True),
    Row("segfault", lambda: SegfaultProcessor(TARGETS), Status.CRASHED, "killed by SIGSEGV", True),
    Row(
        "unpicklable",
        lambda: UnpicklableResultProcessor(TARGETS),
        Status.FAILED,
        "cannot be sent back",
        in_process=Status.OK,  # nothing is pickled in-process
    ),
    Row("hang", lambda: HangingProcessor(TARGETS, seconds=3), Status.FAILED, "ProcessingTimeout"),
]


def _run(
    name: str, row: Row, timeout: float | None = TIMEOUT, **options: object
) -> tuple[list[Outcome], object]:
    source = MemorySource(N)
    job = make_job(source, row.make(), timeout=timeout)
    with get_executor(name, workers=2, **options) as executor:
        outcomes = list(executor.map_unordered(job, source))
        return outcomes, executor.statistics()


def _check(outcomes: list[Outcome], status: Status, error: str | None) -> None:
    assert len(outcomes) == N and len({o.ref.id for o in outcomes}) == N
    bad = [o for o in outcomes if o.ref.id in TARGETS]
    assert {o.status for o in bad} == {status}, [str(o.error) for o in bad]
    if error:
        assert all(o.error is not None and error in str(o.error) for o in bad), [str(o.error) for o in bad]
    rest = Counter(o.status for o in outcomes if o.ref.id not in TARGETS)
    assert rest == Counter({Status.OK: N - len(TARGETS)})


def _run_in_child(name: str, row: Row) -> None:
    _run(name, row)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_crash_matrix(executor_name: str, row: Row) -> None:
    if executor_name in IN_PROCESS and row.fatal_in_process:
        child = multiprocessing.get_context("fork").Process(target=_run_in_child, args=(executor_name, row))
        child.start()
        child.join(30)
        assert child.exitcode not in (0, None), "an in-process strategy survived a hard crash"
        return
    outcomes, stats = _run(executor_name, row)
    in_process = executor_name in IN_PROCESS
    status = row.in_process if in_process and row.in_process else row.status
    _check(outcomes, status, None if status is Status.OK else row.error)
    if status is Status.CRASHED:
        assert stats.replaced_workers >= 1  # type: ignore[attr-defined]
    assert not live_children()


POOLED = ["processes", "queue", "batches", "hybrid", "staged", "auto"]


@pytest.mark.parametrize("name", POOLED)
def test_watchdog_kills_a_worker_stuck_where_no_signal_reaches(name: str) -> None:
    row = Row("stubborn", lambda: StubbornHangProcessor(TARGETS), Status.FAILED, "ProcessingTimeout")
    started = time.monotonic()
    outcomes, stats = _run(name, row, timeout_grace=0.3)
    _check(outcomes, Status.FAILED, "ProcessingTimeout")
    assert time.monotonic() - started < 4  # killed, not waited for (each hang would last 5 s)
    assert stats.replaced_workers >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", POOLED)
def test_a_worker_over_its_memory_limit_is_replaced(name: str) -> None:
    # The leak alone passes the limit, whatever a worker's own size (a forked worker starts near
    # the parent's RSS, a spawned one far below it: a leak sized on the parent missed the limit)
    parent_mb = rss_bytes() >> 20
    limit_mb, leak_mb = parent_mb + LEAK_MB // 2, parent_mb + LEAK_MB
    row = Row("leak", lambda: LeakingProcessor(TARGETS, megabytes=leak_mb), Status.FAILED, "")
    outcomes, stats = _run(name, row, timeout=None, max_memory_mb=limit_mb)  # no time limit on a loaded box
    if name == "hybrid":  # several documents share a worker: it is recycled, nobody blamed
        _check(outcomes, Status.OK, None)
    else:
        _check(outcomes, Status.FAILED, "ResourceLimitExceeded: memory: worker RSS")
    assert "recycled=0" not in stats.detail  # type: ignore[attr-defined]


def test_in_process_strategies_do_not_police_memory() -> None:
    row = Row("leak", lambda: LeakingProcessor({"doc-000003"}, megabytes=8), Status.OK, "")
    try:
        outcomes, _ = _run("threads", row)
    finally:
        forget_leaks()
    assert Counter(o.status for o in outcomes) == Counter({Status.OK: N})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["processes", "queue", "hybrid", "staged"])
@pytest.mark.parametrize("row", [r for r in ROWS if r.name != "sys.exit"], ids=lambda r: r.name)
def test_crash_matrix_under_spawn(name: str, row: Row) -> None:
    outcomes, stats = _run(name, row, start_method="spawn")
    _check(outcomes, row.status, row.error)
    assert not live_children()
