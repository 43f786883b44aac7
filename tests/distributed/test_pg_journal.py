"""PostgresJournal against a real server: resume, de-duplication, quarantine, idempotent upserts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docmill.document import DocumentRef
from docmill.errors import JournalError
from docmill.journal.base import Query, RunInfo
from docmill.journal.postgres import PostgresJournal, split_target
from docmill.outcome import ErrorInfo, Outcome, Status, Timings

pytestmark = pytest.mark.postgres

FP = "fp1"


def ref(name: str, size: int = 10) -> DocumentRef:
    return DocumentRef(id=name, uri=f"/data/{name}", size=size, mtime_ns=1)


def ok(name: str, sha: str, label: str = "a", finished: float = 2.0) -> Outcome:
    return Outcome(
        ref(name), Status.OK, sha, {"label": label, "score": 0.5}, None, 1, Timings(1.0, finished, "w")
    )


def failed(name: str, retryable: bool) -> Outcome:
    error = ErrorInfo("UpstreamError" if retryable else "CorruptDocument", "boom", "tb", retryable)
    return Outcome(ref(name), Status.FAILED, "s", None, error, 2, Timings(1.0, 2.0, "w"))


@pytest.fixture
def journal(pg_target: str) -> Iterator[PostgresJournal]:
    j = PostgresJournal(pg_target)
    yield j
    j.close()


def start(journal: PostgresJournal) -> int:
    return journal.begin_run(RunInfo(source="/data", fingerprint=FP, strategy="celery", workers=2, total=3))


def test_record_is_an_idempotent_upsert(journal: PostgresJournal) -> None:
    run = start(journal)
    for _ in range(3):
        journal.record([ok("a.txt", "h1"), ok("b.txt", "h2")], run_id=run, source="/data", fingerprint=FP)
    assert journal.count(Query()) == 2
    doc = journal.document("a.txt")
    assert doc is not None and doc.status == "ok" and doc.label == "a" and doc.result["score"] == 0.5


def test_pending_skips_done_and_retries_retryable_failures(journal: PostgresJournal) -> None:
    run = start(journal)
    outcomes = [ok("a", "h1"), failed("b", retryable=True), failed("c", retryable=False)]
    journal.record(outcomes, run_id=run, source="/data", fingerprint=FP)
    refs = [ref("a"), ref("b"), ref("c"), ref("d")]

    def pending(**kw: bool) -> list[str]:
        return [r.id for r in journal.pending(refs, source="/data", fingerprint=FP, **kw)]

    assert pending() == ["b", "d"]  # a permanent failure is quarantined at once
    assert pending(retry_failed=True) == ["b", "c", "d"]
    changed = [ref("a", size=99)]
    assert [r.id for r in journal.pending(changed, source="/data", fingerprint=FP)] == ["a"]
    assert [r.id for r in journal.pending(refs, source="/data", fingerprint="other")] == ["a", "b", "c", "d"]


def test_same_content_is_recorded_duplicate_with_the_first_result(journal: PostgresJournal) -> None:
    run = start(journal)
    journal.record([ok("first", "same", "x")], run_id=run, source="/data", fingerprint=FP)
    recorded = journal.record(
        [ok("second", "same", "y"), ok("other-1", "other", "z"), ok("other-2", "other", "w")],
        run_id=run,
        source="/data",
        fingerprint=FP,
    )
    assert [o.status for o in recorded] == [Status.DUPLICATE, Status.OK, Status.DUPLICATE]
    assert recorded[0].label == "x" and recorded[2].label == "z"
    assert recorded[0].result is not None and recorded[0].result["duplicate_of"] == "first"
    second = journal.document("second")
    assert second is not None and second.duplicate_of == "first" and second.label == "x"
    again = journal.record([ok("first", "same", "x")], run_id=run, source="/data", fingerprint=FP)
    assert again[0].status is Status.OK  # re-recording the first copy never makes it its own duplicate
    earlier = journal.record([ok("a-first", "same", "q")], run_id=run, source="/data", fingerprint=FP)
    assert earlier[0].status is Status.OK  # the smallest path keeps the result, whatever the order
    demoted = journal.document("first")
    assert demoted is not None and demoted.status == "duplicate" and demoted.duplicate_of == "a-first"
    assert demoted.result["duplicate_of"] == "a-first"
    second_again = journal.document("second")
    assert second_again is not None and second_again.duplicate_of == "a-first"


def test_nul_characters_are_stored_visibly(journal: PostgresJournal) -> None:
    run = start(journal)
    bad = Outcome(ref("nul"), Status.FAILED, None, {"note": "a\x00b"}, ErrorInfo("E", "x\x00y", "", False))
    journal.record([bad], run_id=run, source="/data", fingerprint=FP)
    doc = journal.document("nul")
    assert doc is not None and doc.error_message == "x\\x00y" and doc.result["note"] == "a\\x00b"


def test_failures_count_up_to_quarantine(journal: PostgresJournal) -> None:
    run = start(journal)
    statuses = []
    for _ in range(3):
        rec = journal.record([failed("bad", retryable=True)], run_id=run, source="/data", fingerprint=FP)
        statuses.append(rec[0].status)
    assert statuses == [Status.FAILED, Status.FAILED, Status.QUARANTINED]
    assert list(journal.pending([ref("bad")], source="/data", fingerprint=FP)) == []
    assert journal.summary().by_status == {"quarantined": 1}


def test_runs_heartbeat_summary_and_throughput(journal: PostgresJournal) -> None:
    run = start(journal)
    journal.heartbeat(run, {"ok": 1})
    journal.record(
        [ok("a", "1", finished=10.0), ok("b", "2", "b", finished=20.0)],
        run_id=run,
        source="/data",
        fingerprint=FP,
    )
    record = journal.run(run)
    assert record is not None and record.state == "running" and record.stats == {"ok": 1}
    journal.end_run(run, "done", {"ok": 2})
    other = journal.begin_run(RunInfo(source="/other", fingerprint=FP, strategy="celery", workers=1))
    assert [r.state for r in journal.runs()] == ["running", "done"]
    assert journal.summary().total == 0  # scoped to the latest run's source, as in SQLite
    journal.end_run(other, "done", {})
    summary = journal.summary(run)
    assert summary.total == 2 and summary.by_label == {"a": 1, "b": 1}
    buckets = journal.throughput(run, buckets=4)
    assert len(buckets) == 4 and buckets[0][0] == record.started
    docs = journal.documents(Query(run_id=run, status=("ok",), path_contains="b"))
    assert [d.path for d in docs] == ["b"]
    assert [d.path for d in journal.iter_documents(Query(run_id=run))] == ["a", "b"]
    assert journal.forget(source="/data", fingerprint=FP) == 2


def test_bad_targets_are_one_line_errors() -> None:
    with pytest.raises(JournalError, match="cannot connect"):
        PostgresJournal("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    assert split_target("postgresql://h/db?schema=s1&sslmode=disable") == (
        "postgresql://h/db?sslmode=disable",
        "s1",
    )
