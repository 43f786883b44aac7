"""A document that kills its worker: recorded crashed, retried by the next runs, then quarantined,
while every other document ends ok (real worker processes)."""

from __future__ import annotations

from pathlib import Path

from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.runner import run
from docmill.testing import KillingProcessor, MemorySource

POISON = "doc-000007"


def test_a_poison_document_is_quarantined_after_three_crashes(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db", quarantine_after=3)
    statuses = []
    for _ in range(4):
        run(MemorySource(30), KillingProcessor([POISON]), executor="processes", workers=2, journal=journal)
        record = journal.document(POISON)
        assert record is not None
        statuses.append(record.status)
    assert statuses == ["crashed", "crashed", "quarantined", "quarantined"]
    record = journal.document(POISON)
    assert record is not None and record.failures == 3 and record.error_message
    others = journal.documents(Query(limit=100))
    assert sum(1 for d in others if d.status == "ok") == 29
    journal.close()
