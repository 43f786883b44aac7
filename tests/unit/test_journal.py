"""SqliteJournal: resume, retry, quarantine, de-duplication, schema check, concurrent readers."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.document import DocumentRef
from docmill.errors import ConfigError, JournalError
from docmill.journal import open_journal
from docmill.journal.base import Query, RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import ErrorInfo, Outcome, Status, Timings

SRC, FP = "/corpus", "fp1"


def ref(path: str, size: int = 10, mtime: int = 1) -> DocumentRef:
    return DocumentRef(id=path, uri=f"{SRC}/{path}", size=size, mtime_ns=mtime)


def ok(path: str, sha: str, label: str = "a", **kw: int) -> Outcome:
    return Outcome(
        ref(path, **kw), Status.OK, sha, {"label": label, "score": 0.5}, timings=Timings(1.0, 2.0, "w")
    )


def failed(path: str, *, retryable: bool, status: Status = Status.FAILED) -> Outcome:
    error = ErrorInfo(
        "UpstreamError" if retryable else "CorruptDocument", "boom\nsecond line", "tb", retryable
    )
    return Outcome(ref(path), status, "s-" + path, None, error)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(tmp_path / "j.db", quarantine_after=3) as j:
        yield j


def begin(journal: SqliteJournal, source: str = SRC, fingerprint: str = FP) -> int:
    return journal.begin_run(RunInfo(source, fingerprint, "sequential", 1))


def record(journal: SqliteJournal, run: int, *outcomes: Outcome) -> list[Outcome]:
    return journal.record(list(outcomes), run_id=run, source=SRC, fingerprint=FP)


def pending(journal: SqliteJournal, refs: list[DocumentRef], **kw: bool) -> list[str]:
    return [r.id for r in journal.pending(refs, source=SRC, fingerprint=FP, **kw)]


def test_recorded_documents_are_not_pending_again(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, ok("a.txt", "s1"), ok("b.txt", "s2"))
    assert pending(journal, [ref("a.txt"), ref("b.txt"), ref("c.txt")]) == ["c.txt"]
    # another pipeline (fingerprint) or source sees nothing recorded
    assert [r.id for r in journal.pending([ref("a.txt")], source=SRC, fingerprint="fp2")] == ["a.txt"]


def test_a_changed_file_is_pending_again(journal: SqliteJournal) -> None:
    record(journal, begin(journal), ok("a.txt", "s1"))
    assert pending(journal, [ref("a.txt", size=11)]) == ["a.txt"]
    assert pending(journal, [ref("a.txt", mtime=2)]) == ["a.txt"]


def test_pending_streams_in_chunks(journal: SqliteJournal) -> None:
    pulled = 0

    def refs() -> Iterator[DocumentRef]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield ref(f"d{i:05d}")

    first = next(iter(journal.pending(refs(), source=SRC, fingerprint=FP)))
    assert first.id == "d00000"
    assert pulled <= 1000  # one chunk looked up, not the whole source


def test_retryable_failures_are_retried_then_quarantined(journal: SqliteJournal) -> None:
    run = begin(journal)
    for attempt in (1, 2):
        (out,) = record(journal, run, failed("x.pdf", retryable=True))
        assert out.status is Status.FAILED, attempt
        assert pending(journal, [ref("x.pdf")]) == ["x.pdf"]
    (out,) = record(journal, run, failed("x.pdf", retryable=True))
    assert out.status is Status.QUARANTINED  # third failure with quarantine_after=3
    assert pending(journal, [ref("x.pdf")]) == []
    assert pending(journal, [ref("x.pdf")], retry_failed=True) == ["x.pdf"]
    doc = journal.document("x.pdf")
    assert doc is not None and doc.failures == 3 and doc.error_type == "UpstreamError"


def test_crashes_count_towards_quarantine(journal: SqliteJournal) -> None:
    run = begin(journal)
    statuses = [
        record(journal, run, failed("c", retryable=False, status=Status.CRASHED))[0].status for _ in range(3)
    ]
    assert statuses == [Status.CRASHED, Status.CRASHED, Status.QUARANTINED]


def test_permanent_errors_are_quarantined_at_once(journal: SqliteJournal) -> None:
    (out,) = record(journal, begin(journal), failed("bad.pdf", retryable=False))
    assert out.status is Status.QUARANTINED
    assert pending(journal, [ref("bad.pdf")]) == []
    assert pending(journal, [ref("bad.pdf")], retry_failed=True) == ["bad.pdf"]


def test_success_after_failure_clears_the_failure(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, failed("a", retryable=True))
    record(journal, run, ok("a", "s1"))
    doc = journal.document("a")
    assert doc is not None and doc.status == "ok" and doc.failures == 0 and doc.error_type is None


def test_duplicates_copy_the_first_result(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, ok("a.txt", "same", label="x"))
    (dup,) = record(journal, run, ok("b.txt", "same", label="y"))
    assert dup.status is Status.DUPLICATE and dup.label == "x"
    doc = journal.document("b.txt")
    assert doc is not None and doc.duplicate_of == "a.txt" and doc.label == "x"


@pytest.mark.parametrize("order", [("a", "b", "c"), ("c", "b", "a"), ("b", "c", "a")])
@pytest.mark.parametrize("batched", [True, False])
def test_the_smallest_path_stays_ok_whatever_the_order(
    journal: SqliteJournal, order: tuple[str, ...], batched: bool
) -> None:
    run = begin(journal)
    outcomes = [ok(p, "same") for p in order]
    if batched:
        record(journal, run, *outcomes)
    else:
        for o in outcomes:
            record(journal, run, o)
    rows = {d.path: (d.status, d.duplicate_of) for d in journal.documents(Query())}
    assert rows == {"a": ("ok", None), "b": ("duplicate", "a"), "c": ("duplicate", "a")}


def test_one_row_per_path_however_often_recorded(journal: SqliteJournal) -> None:
    run = begin(journal)
    for _ in range(3):
        record(journal, run, ok("a", "s1"), ok("b", "s2"))
    assert journal.count(Query()) == 2


def test_forget_drops_only_that_source_and_pipeline(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, ok("a", "s1"))
    journal.record([ok("a", "s1")], run_id=run, source=SRC, fingerprint="other")
    assert journal.forget(source=SRC, fingerprint=FP) == 1
    assert pending(journal, [ref("a")]) == ["a"]
    assert journal.count(Query(fingerprint="other")) == 1


def test_summary_and_queries_follow_the_latest_run(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, ok("a", "s1", label="x"), ok("b", "s2", label="y"), failed("c", retryable=True))
    summary = journal.summary()
    assert summary.total == 3
    assert summary.by_status == {"ok": 2, "failed": 1}
    assert summary.by_label == {"x": 1, "y": 1}
    assert [d.path for d in journal.documents(Query(status=("failed",)))] == ["c"]
    assert [d.path for d in journal.documents(Query(label="y"))] == ["b"]
    assert journal.count(Query(path_contains="b")) == 1
    # a run over another source changes the default scope
    other = begin(journal, source="/elsewhere")
    assert journal.summary().total == 0
    assert journal.summary(run).total == 3 and other != run


def test_runs_heartbeat_and_end(journal: SqliteJournal) -> None:
    run = begin(journal)
    journal.heartbeat(run, {"done": 5, "total": 9})
    record_ = journal.run(run)
    assert record_ is not None and record_.state == "running" and record_.stats["done"] == 5
    assert record_.total == 9 and record_.heartbeat is not None
    journal.end_run(run, "done", {"done": 9})
    assert [r.state for r in journal.runs()] == ["done"]


def test_throughput_buckets_count_finished_documents(journal: SqliteJournal) -> None:
    run = begin(journal)
    started = journal.run(run).started  # type: ignore[union-attr]
    outcomes = [
        Outcome(ref(f"d{i}"), Status.OK, f"s{i}", {}, timings=Timings(started, started + 0.1 * i, "w"))
        for i in range(10)
    ]
    record(journal, run, *outcomes)
    journal.end_run(run, "done", {})
    buckets = journal.throughput(run, buckets=5)
    assert len(buckets) == 5
    assert sum(n for _, n in buckets) == 10


def test_iter_documents_streams_everything_in_path_order(journal: SqliteJournal) -> None:
    run = begin(journal)
    record(journal, run, *(ok(f"d{i:04d}", f"s{i}") for i in range(1234)))
    paths = [d.path for d in journal.iter_documents(Query())]
    assert paths == sorted(paths) and len(paths) == 1234


def test_a_reader_sees_committed_batches_while_a_run_writes(tmp_path: Path) -> None:
    writer = SqliteJournal(tmp_path / "j.db")
    run = begin(writer)
    record(writer, run, ok("a", "s1"))
    reader = open_journal(str(tmp_path / "j.db"))
    assert reader.summary().total == 1
    record(writer, run, ok("b", "s2"))
    assert reader.summary().total == 2
    reader.close()
    writer.close()


def test_schema_version_mismatch_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SqliteJournal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalError, match="schema version 99"):
        SqliteJournal(path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError):
        SqliteJournal(path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(JournalError, match="schema version 0"):
        SqliteJournal(other)


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SqliteJournal(tmp_path / "j.db", synchronous="sometimes")
    with pytest.raises(ConfigError):
        SqliteJournal(tmp_path / "j.db", quarantine_after=0)
    with pytest.raises(ConfigError):
        open_journal("mysql://somewhere/db")


def test_wal_mode_and_synchronous_setting(tmp_path: Path) -> None:
    j = SqliteJournal(tmp_path / "j.db", synchronous="FULL")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    j.close()


def test_odd_file_names_survive(journal: SqliteJournal) -> None:
    name = "name with spaces & ünïcödé — 文書.txt"
    record(journal, begin(journal), ok(name, "s1"))
    assert journal.document(name) is not None
    assert pending(journal, [ref(name)]) == []


def test_undecodable_names_and_messages_are_stored_visibly(journal: SqliteJournal) -> None:
    error = ErrorInfo("SourceError", "/c/bad\udcff.txt: dangling symlink", "tb \ud800", False)
    outcome = Outcome(ref("bad\udcff.txt"), Status.FAILED, None, {"note": "\udcfe"}, error)
    (recorded,) = record(journal, begin(journal), outcome)
    assert recorded.status is Status.QUARANTINED
    doc = journal.document("bad\\xff.txt")
    assert doc is not None and doc.error_message == "/c/bad\\xff.txt: dangling symlink"
    assert doc.result == {"note": "\\xfe"}
    assert pending(journal, [ref("bad\udcff.txt")]) == []


def test_an_unknown_run_has_no_documents(journal: SqliteJournal) -> None:
    record(journal, begin(journal), ok("a", "s1"))
    assert journal.count(Query(run_id=99)) == 0 and journal.summary(99).total == 0
    assert journal.document("a", run_id=99) is None and list(journal.iter_documents(Query(run_id=99))) == []


def test_a_duplicate_keeps_its_own_spend_never_its_originals(journal: SqliteJournal) -> None:
    """Copies in flight together may both have paid; each row says what it cost, so sums are honest."""
    run = journal.begin_run(RunInfo(source=SRC, fingerprint=FP, strategy="threads", workers=2))
    paid = dataclasses.replace(ok("a.txt", "h"), result={"label": "a", "cost": 0.5, "requests": 1})
    copy = dataclasses.replace(ok("b.txt", "h"), result={"label": "a", "cost": 0.25, "requests": 1})
    free = dataclasses.replace(ok("c.txt", "h"), result={"label": "a", "coalesced": "a.txt"})
    recorded = journal.record([paid, copy, free], run_id=run, source=SRC, fingerprint=FP)
    spent = {o.ref.id: (o.status.value, (o.result or {}).get("cost")) for o in recorded}
    assert spent == {"a.txt": ("ok", 0.5), "b.txt": ("duplicate", 0.25), "c.txt": ("duplicate", None)}
