"""``open_journal(db, read_only=True)``: readers never write, create or migrate a journal.

SQLite journals here are made by a real ``docmill run`` over a small corpus; PostgreSQL tests are
marked ``postgres`` and skip with one line when the server is not reachable.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.errors import ConfigError, JournalError
from docmill.journal import _readonly, open_journal
from docmill.journal.base import Query, RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.testing import write_corpus

DOCS = {
    "a.txt": "INVOICE 2024-001. Amount due: 300 EUR. Payment terms: 30 days.",
    "soup.txt": "Ingredients: two onions. Simmer for an hour, add a tablespoon of salt.",
    "broken.pdf": "this is not a PDF at all",
}
PG_SERVER = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def make_corpus(root: Path) -> Path:
    """Three documents (an invoice, a recipe, a broken PDF) and their labels."""
    return write_corpus(root, DOCS)


def run_into(corpus: Path, db: str) -> None:
    """One real, sequential ``docmill run`` writing the journal ``db``."""
    assert main(["run", str(corpus), "--db", db, "--strategy", "sequential", "--progress", "log"]) == 0


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` with the sha256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A journal written by a real run, alone in its folder."""
    folder = tmp_path / "journal"
    folder.mkdir()
    run_into(make_corpus(tmp_path / "corpus"), str(folder / "docmill.db"))
    return folder / "docmill.db"


def test_reader_reads_the_run_and_leaves_the_folder_as_it_was(journal: Path) -> None:
    before = snapshot(journal.parent)
    reader = open_journal(str(journal), read_only=True)
    try:
        assert [r.state for r in reader.runs()] == ["done"]
        summary = reader.summary()
        assert summary.total == 3 and summary.by_label == {"invoice": 1, "recipe": 1}
        assert {d.path for d in reader.iter_documents(Query())} == set(DOCS)
    finally:
        reader.close()
    assert snapshot(journal.parent) == before  # no -wal, no -shm, the same bytes


def test_missing_journal_is_a_config_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no journal at"):
        open_journal(str(tmp_path / "absent.db"), read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_reader_cannot_write(journal: Path) -> None:
    before = snapshot(journal.parent)
    reader = open_journal(str(journal), read_only=True)
    assert isinstance(reader, SqliteJournal)
    try:
        with pytest.raises(JournalError, match="read-only"):
            reader.begin_run(RunInfo("s", "f", "sequential", 1))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM documents")  # query_only, below the journal's own guard
    finally:
        reader.close()
    assert snapshot(journal.parent) == before


def test_a_file_that_is_not_a_journal_is_refused_unchanged(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = snapshot(tmp_path)
    with pytest.raises(JournalError, match="not a docmill journal"):
        open_journal(str(other), read_only=True)
    assert snapshot(tmp_path) == before


def test_odd_file_names_survive_the_uri(tmp_path: Path) -> None:
    folder = tmp_path / "a dir?#%"
    folder.mkdir()
    db = folder / "j #1?.db"
    run_into(make_corpus(tmp_path / "corpus"), str(db))
    reader = open_journal(str(db), read_only=True)
    try:
        assert reader.summary().total == 3
    finally:
        reader.close()
    assert sorted(p.name for p in folder.iterdir()) == [db.name]


def test_reader_keeps_a_writers_files(journal: Path) -> None:
    writer = open_journal(str(journal))
    try:
        writer.begin_run(RunInfo("s", "f", "sequential", 1))
        reader = open_journal(str(journal), read_only=True)
        assert [r.state for r in reader.runs()] == ["running", "done"]  # reads the writer's WAL
        reader.close()
        assert Path(f"{journal}-wal").exists() and Path(f"{journal}-shm").exists()
        writer.begin_run(RunInfo("s", "f", "sequential", 1))  # the writer still works
    finally:
        writer.close()


def test_an_immutable_reader_reopens_when_the_file_changes(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_readonly, "folder_writable", lambda path: False)  # as if the folder were 555
    reader = open_journal(str(journal), read_only=True)
    assert isinstance(reader, SqliteJournal) and reader._reader and reader._reader.immutable
    try:
        assert len(reader.runs()) == 1
        with SqliteJournal(journal) as writer:
            run_id = writer.begin_run(RunInfo("s", "f", "sequential", 1))
            assert [r.id for r in reader.runs()] == [run_id, 1]  # a -wal appeared: reopened without it
            writer.end_run(run_id, "done", {})
        assert [r.state for r in reader.runs()] == ["done", "done"]  # checkpointed into the file
    finally:
        reader.close()


def test_reader_uri_is_read_only_and_percent_encoded() -> None:
    uri = _readonly.reader_uri("/x/a b?#.db", immutable=False)
    assert uri == "file:///x/a%20b%3F%23.db?mode=ro"
    assert _readonly.reader_uri("/x/j.db", immutable=True).endswith("?mode=ro&immutable=1")


# -- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture
def pg_journal(tmp_path: Path) -> Iterator[str]:
    """A journal in a fresh PostgreSQL schema, written by a real run; dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_SERVER, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {str(exc).splitlines()[0]}")
    schema = f"ro_{uuid.uuid4().hex[:12]}"
    target = f"{PG_SERVER}{'&' if '?' in PG_SERVER else '?'}schema={schema}"
    try:
        run_into(make_corpus(tmp_path / "corpus"), target)
        yield target
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.mark.postgres
def test_postgres_reader_session_is_read_only(pg_journal: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    reader = open_journal(pg_journal, read_only=True)
    try:
        assert reader.summary().total == 3
        conn = reader._conn  # type: ignore[attr-defined]
        with conn.transaction():
            assert conn.execute("SHOW transaction_read_only").fetchone()["transaction_read_only"] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.transaction():
            conn.execute("DELETE FROM docmill_documents")
        with pytest.raises(JournalError):
            reader.end_run(1, "failed", {})
        assert [r.state for r in reader.runs()] == ["done"]
    finally:
        reader.close()


@pytest.mark.postgres
def test_postgres_reader_creates_no_schema(pg_journal: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f"ro_absent_{uuid.uuid4().hex[:8]}"
    with pytest.raises(JournalError, match="no docmill journal"):
        open_journal(f"{PG_SERVER}{'&' if '?' in PG_SERVER else '?'}schema={schema}", read_only=True)
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,))
        assert found.fetchone() is None
