"""The journal's batches (schema 3) on SQLite and PostgreSQL: intent before submission, the provider's
id after, collection with each line's fate, open batches, line counts; readers list them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.document import DocumentRef
from docmill.journal import open_journal
from docmill.journal.base import RunInfo
from docmill.journal.batch_store import BatchJournal, BatchMember

PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "j.db")
        return
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_batch_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    yield f"{PG_URL}?schema={schema}"
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def member(i: int) -> BatchMember:
    ref = DocumentRef(id=f"d{i}.txt", uri=f"/c/d{i}.txt", size=10 + i, mtime_ns=7)
    return BatchMember(f"doc-{i}", ref, f"sha{i}", {"chars": 5 * i})


def test_a_batch_is_recorded_before_submission_then_collected(target: str) -> None:
    journal = open_journal(target)
    assert isinstance(journal, BatchJournal)
    run = journal.begin_run(RunInfo("/c", "fp", "sequential", 1))
    batch = journal.batch_intent(
        run_id=run, source="/c", fingerprint="fp", input_file_id="file-1",
        members=[member(0), member(1), member(2)], info={"requests": 3},
    )  # fmt: skip
    [record] = journal.batch_records(source="/c", fingerprint="fp", open_only=True)
    assert (record.id, record.state, record.provider_id, record.input_file_id) == (
        batch,
        "packed",
        None,
        "file-1",
    )
    journal.batch_update(batch, state="in_progress", info={"requests": 3}, provider_id="batch_x")
    journal.batch_update(batch, state="finalizing", info={"requests": 3})  # the id stays
    assert journal.batch_records()[0].provider_id == "batch_x"
    members = journal.batch_members(batch)
    assert [(m.custom_id, m.ref, m.sha256, m.result) for m in members] == [
        (m.custom_id, m.ref, m.sha256, m.result) for m in (member(0), member(1), member(2))
    ]
    lines = {
        "doc-0": ("ok", None),
        "doc-1": ("failed", "500: oops"),
        "doc-2": ("unfinished", "batch_expired"),
    }
    journal.batch_collected(batch, state="expired", info={"requests": 3, "cost": 0.5}, lines=lines)
    assert journal.batch_records(open_only=True) == []
    done = journal.batch_records(source="/c")[0]
    assert (done.state, done.info["cost"], done.collected is not None) == ("expired", 0.5, True)
    assert {m.custom_id: (m.state, m.error) for m in journal.batch_members(batch)} == lines
    assert journal.batch_line_counts(source="/c", fingerprint="fp") == {
        "d1.txt": {"failed": 1},
        "d2.txt": {"unfinished": 1},
    }
    assert journal.batch_records(source="/elsewhere") == []
    journal.close()
    reader = open_journal(target, read_only=True)
    assert isinstance(reader, BatchJournal) and [b.id for b in reader.batch_records()] == [batch]
    reader.close()
