"""Resume lookups read as one key range when the listing is sorted: the same answers as per-path lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.document import DocumentRef
from docmill.journal.base import RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import Outcome, Status

SRC = "/records.jsonl"


def ref(i: int, size: int = 10) -> DocumentRef:
    return DocumentRef(f"r{i:05d}", f"{SRC}#L{i}", size, None, i * 10)


def record(journal: SqliteJournal, fingerprint: str, refs: list[DocumentRef], status: Status) -> None:
    run = journal.begin_run(RunInfo(SRC, fingerprint, "sequential", 1))
    outcomes = [Outcome(r, status, f"sha-{r.id}-{fingerprint}", {}) for r in refs]
    journal.record(outcomes, run_id=run, source=SRC, fingerprint=fingerprint)


def pending(journal: SqliteJournal, refs: list[DocumentRef], fingerprint: str = "fp") -> list[str]:
    return [r.id for r in journal.pending(refs, source=SRC, fingerprint=fingerprint)]


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    return SqliteJournal(tmp_path / "j.db")


def test_a_sorted_listing_skips_what_is_recorded_under_its_own_fingerprint(journal: SqliteJournal) -> None:
    listed = [ref(i) for i in range(1200)]
    record(journal, "fp", listed[::2], Status.OK)
    record(journal, "other", listed[1::2], Status.OK)  # rows of another pipeline, in between
    assert pending(journal, listed) == [r.id for r in listed[1::2]]
    assert pending(journal, listed, "other") == [r.id for r in listed[::2]]


def test_changed_and_failed_records_stay_pending_in_a_span(journal: SqliteJournal) -> None:
    listed = [ref(i) for i in range(600)]
    record(journal, "fp", listed[:300], Status.OK)
    record(journal, "fp", listed[300:], Status.CRASHED)
    now = [ref(i, size=11) if i == 7 else r for i, r in enumerate(listed)]  # line 7 was edited
    assert pending(journal, now) == ["r00007", *(r.id for r in listed[300:])]


def test_a_sparse_listing_falls_back_to_lookups(journal: SqliteJournal) -> None:
    everything = [ref(i) for i in range(5000)]
    record(journal, "fp", everything, Status.OK)
    listed = [*everything[::10], ref(99999)]  # ten recorded rows per listed path: over the cap
    assert pending(journal, listed) == ["r99999"]


def test_an_unsorted_listing_gets_the_same_answer(journal: SqliteJournal) -> None:
    listed = [ref(i) for i in range(1000)]
    record(journal, "fp", listed[:500], Status.OK)
    shuffled = listed[::-1]
    assert pending(journal, shuffled) == [r.id for r in shuffled if int(r.id[1:]) >= 500]
