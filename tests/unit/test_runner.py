"""The runner: every document recorded once, batching, resume, stops (signal, budget), failures."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from docmill import runner
from docmill.document import Document, DocumentRef
from docmill.errors import BrokenExecutorError, JournalError
from docmill.executors.base import Executor
from docmill.job import Job
from docmill.journal.base import Query, RecordedBatch
from docmill.journal.sqlite import SqliteJournal
from docmill.metrics import RunStats
from docmill.outcome import Outcome
from docmill.processors.base import Processor
from docmill.progress import NullReporter
from docmill.runner import run
from docmill.testing import MemorySource, NoopProcessor, RaisingProcessor, SleepProcessor


class CountingJournal(SqliteJournal):
    """A real SQLite journal that remembers the size of every batch it was given."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def record(self, outcomes: Sequence[Outcome], **kw: Any) -> RecordedBatch:
        self.batches.append(len(outcomes))
        return super().record(outcomes, **kw)


class Paid(Processor):
    """Charges one dollar per document, as an LLM classifier reports spend."""

    name = "paid"

    def process(self, doc: Document) -> Document:
        return doc.evolve(text="x").with_metadata(label="l", cost=1.0, tokens_in=10, requests=1)


class InterruptAfter(Processor):
    """Sends SIGINT to this process ``times`` times on its n-th document (Ctrl-C mid-run)."""

    name = "interrupt"

    def __init__(self, n: int, times: int = 1) -> None:
        self.n, self.times, self.seen = n, times, 0

    def process(self, doc: Document) -> Document:
        self.seen += 1
        if self.seen == self.n:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        return doc.evolve(text="x").with_metadata(label="l")


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.updates = 0
        self.total: int | None = None
        self.finished: RunStats | None = None
        self.messages: list[str] = []

    def set_total(self, total: int) -> None:
        self.total = total

    def update(self, outcome: Outcome) -> None:
        self.updates += 1

    def message(self, text: str) -> None:
        self.messages.append(text)

    def finish(self, stats: RunStats) -> None:
        self.finished = stats


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[CountingJournal]:
    j = CountingJournal(tmp_path / "j.db")
    yield j
    j.close()


def test_every_document_is_recorded_in_batches(journal: CountingJournal) -> None:
    reporter = Recorder()
    result = run(MemorySource(1000), NoopProcessor(), journal=journal, reporter=reporter, commit_every=128)
    assert result.stats.done == 1000 and result.stopped is None
    assert journal.summary().total == 1000
    assert sum(journal.batches) == 1000 and max(journal.batches) <= 128
    assert reporter.updates == 1000 and reporter.finished is result.stats
    record = journal.run(result.run_id)
    assert record is not None and record.state == "done" and record.stats["done"] == 1000


def test_a_second_run_resumes_and_skips_what_is_done(journal: CountingJournal) -> None:
    run(MemorySource(300), NoopProcessor(), journal=journal)
    again = run(MemorySource(400), NoopProcessor(), journal=journal)
    assert again.stats.done == 100 and again.stats.skipped == 300
    assert journal.count(Query()) == 400


def test_fresh_forgets_earlier_results(journal: CountingJournal) -> None:
    run(MemorySource(50), NoopProcessor(), journal=journal)
    again = run(MemorySource(50), NoopProcessor(), journal=journal, fresh=True)
    assert again.stats.done == 50


def test_failures_are_recorded_and_the_run_goes_on(journal: CountingJournal) -> None:
    source = MemorySource(20, unreadable=["doc-000003"])
    result = run(source, RaisingProcessor(["doc-000007"]), journal=journal)
    assert result.stats.done == 20
    assert result.stats.by_status == {"ok": 18, "quarantined": 2}
    bad = {d.path: d.error_type for d in journal.documents(Query(status=("quarantined",)))}
    assert bad == {"doc-000003": "SourceError", "doc-000007": "UnsupportedDocument"}


def test_max_cost_stops_cleanly_and_the_next_run_finishes(journal: CountingJournal) -> None:
    reporter = Recorder()
    result = run(MemorySource(50), Paid(), journal=journal, max_cost=5.0, reporter=reporter)
    assert result.stopped == "max-cost"
    assert journal.runs()[0].state == "interrupted" and journal.runs()[0].stats["stopping"] == "max-cost"
    assert 5 <= result.stats.done < 50 and result.stats.cost == result.stats.done
    assert result.stats.llm == {"tokens_in": 10 * result.stats.done, "requests": result.stats.done}
    assert any("spending limit" in m for m in reporter.messages)
    rest = run(MemorySource(50), Paid(), journal=journal)
    assert rest.stats.done == 50 - result.stats.done


def test_sigint_finishes_in_flight_work_and_resume_completes(journal: CountingJournal) -> None:
    result = run(MemorySource(200), InterruptAfter(30), journal=journal)
    assert result.stopped == "interrupted"
    assert result.stats.done == 30  # sequential: nothing else was in flight
    record = journal.run(result.run_id)
    assert record is not None and record.state == "interrupted"
    rest = run(MemorySource(200), InterruptAfter(10_000), journal=journal)
    assert rest.stats.done == 170 and journal.count(Query()) == 200


def test_the_reporter_learns_the_total(journal: CountingJournal) -> None:
    reporter = Recorder()
    run(MemorySource(10), NoopProcessor(), journal=journal, reporter=reporter)
    assert reporter.total == 10


class Breaking(Executor):
    name = "breaking"

    def map_unordered(self, job: Job, refs: Iterable[DocumentRef]) -> Iterator[Outcome]:
        for i, ref in enumerate(refs):
            if i == 5:
                raise BrokenExecutorError("pool gone")
            yield job.run(ref)


def test_a_broken_strategy_ends_the_run_with_what_was_done_recorded(journal: CountingJournal) -> None:
    with pytest.raises(BrokenExecutorError):
        run(MemorySource(20), NoopProcessor(), executor=Breaking(1), journal=journal)
    assert journal.count(Query()) == 5
    assert journal.runs()[0].state == "failed"


class FailingHeartbeat(CountingJournal):
    def heartbeat(self, run_id: int, stats: Any) -> None:
        raise JournalError("disk I/O error")


def test_a_journal_error_in_the_background_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.05)
    journal = FailingHeartbeat(tmp_path / "j.db")
    with pytest.raises(JournalError, match="disk I/O"):
        run(MemorySource(200), SleepProcessor(0.005), journal=journal)
    assert journal.runs()[0].state == "failed"
    assert 0 < journal.count(Query()) < 200


def test_a_second_ctrl_c_aborts_at_once_keeping_the_journal_consistent(journal: CountingJournal) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(MemorySource(100), InterruptAfter(5, times=2), journal=journal)
    assert journal.count(Query()) == 4  # the four finished documents were flushed
    assert journal.runs()[0].state == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_appending_to_a_jsonl_source_processes_only_the_new_lines(
    journal: CountingJournal, tmp_path: Path
) -> None:
    from docmill.sources.jsonl import JsonlSource

    path = tmp_path / "docs.jsonl"
    path.write_text("".join(f'{{"id": "d{i}", "text": "text {i}"}}\n' for i in range(10)))
    assert run(JsonlSource(path), NoopProcessor(), journal=journal).stats.done == 10
    with path.open("a") as handle:
        handle.write("".join(f'{{"id": "d{i}", "text": "text {i}"}}\n' for i in range(10, 15)))
    again = run(JsonlSource(path), NoopProcessor(), journal=journal)
    assert again.stats.done == 5 and again.stats.skipped == 10


class SameText(MemorySource):
    """Documents ``z-copy``, …, ``a-copy`` (listed largest path first) that all hold the same text."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(len(names))
        self.names = list(names)

    def __iter__(self) -> Iterator[DocumentRef]:
        return iter(DocumentRef(id=name, uri=f"memory/{name}", size=4) for name in self.names)

    def load(self, ref: DocumentRef) -> Document:
        return Document(ref=ref, sha256="0" * 64, content=b"same")


def test_stats_follow_the_journal_when_a_later_copy_demotes_an_earlier_one(
    journal: CountingJournal,
) -> None:
    reporter = Recorder()
    names = ["z-copy", "other", "m-copy", "a-copy"]  # each copy sorts before the ones recorded earlier
    source = SameText(names)
    result = run(source, NoopProcessor(), journal=journal, reporter=reporter, commit_every=1)
    by_status = dict(journal.summary().by_status)
    assert by_status == {"ok": 1, "duplicate": 3}  # "other" holds the same bytes as the copies
    assert {k: v for k, v in result.stats.by_status.items() if v} == by_status
    assert reporter.finished is result.stats and result.stats.ok == 4 and result.stats.done == 4
    record = journal.run(result.run_id)
    assert record is not None and record.stats["by_status"] == result.stats.by_status
    assert journal.document("a-copy") is not None and journal.document("a-copy").status == "ok"  # type: ignore[union-attr]


def test_a_copy_recorded_by_an_earlier_run_is_not_this_runs_to_recount(journal: CountingJournal) -> None:
    run(SameText(["m-copy"]), NoopProcessor(), journal=journal)
    later = run(SameText(["m-copy", "a-copy"]), NoopProcessor(), journal=journal)
    assert later.stats.by_status == {"ok": 1} and later.stats.skipped == 1
    assert journal.summary().by_status == {"duplicate": 1, "ok": 1}
