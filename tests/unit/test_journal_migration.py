"""A journal written by an older docmill is upgraded in place when a writer opens it, rows kept."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from docmill.document import DocumentRef
from docmill.errors import JournalError
from docmill.journal import _pg_sql, open_journal
from docmill.journal.base import SCHEMA_VERSION, Journal, Query, RunInfo
from docmill.outcome import Outcome, Status, Timings

PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SRC, FP = "/corpus", "fp1"
OLD_ROW = (SRC, "old.pdf", FP, "s-old", "ok", '{"label":"a","pages":7,"pages_ocr":2}', 1.0, 2.0)


def _outcome(path: str, result: dict[str, Any]) -> Outcome:
    ref = DocumentRef(id=path, uri=f"{SRC}/{path}", size=1, mtime_ns=1)
    return Outcome(ref, Status.OK, f"s-{path}", result, None, 1, Timings(1.0, 2.0, "w"))


def _check_upgraded(journal: Journal) -> None:
    old = journal.document("old.pdf")
    assert old is not None and (old.pages, old.pages_ocr, old.result["label"]) == (7, 2, "a")
    run = journal.begin_run(RunInfo(SRC, FP, "sequential", 1))
    news = [_outcome("new.pdf", {"label": "b", "pages": 3}), _outcome("note.txt", {"label": "b"})]
    journal.record(news, run_id=run, source=SRC, fingerprint=FP)
    got = {
        r.path: (r.pages, r.pages_ocr) for r in journal.documents(Query(run_id=run)) if r.path != "old.pdf"
    }
    assert got == {"new.pdf": (3, None), "note.txt": (None, None)}
    assert journal.summary(run).pages == 7 + 3  # status's pages/s: the run's scope, old rows too


def _version_1_sqlite(path: Path) -> None:
    """A journal as docmill wrote it at schema version 1, with one document."""
    db = sqlite3.connect(path)
    script = resources.files("docmill.journal").joinpath("schema.sql").read_text("utf-8")
    db.executescript(f"{script}; PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO documents (source, path, fingerprint, sha256, status, result, started, finished) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        OLD_ROW,
    )
    db.commit()
    db.close()


def test_a_version_1_sqlite_journal_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_sqlite(path)
    with pytest.raises(JournalError, match="run `docmill run` on it once"):
        open_journal(str(path), read_only=True)  # a reader never migrates, and says how to
    journal = open_journal(str(path))
    _check_upgraded(journal)
    journal.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    reopened = open_journal(str(path))  # the upgrade is done once
    assert reopened.document("old.pdf") is not None
    reopened.close()
    reader = open_journal(str(path), read_only=True)
    assert reader.document("new.pdf") is not None and reader.document("new.pdf").pages == 3  # type: ignore[union-attr]
    reader.close()


def _open_at(path: str, start: Any, errors: Any) -> None:
    start.wait()
    try:
        open_journal(path).close()
    except JournalError as exc:
        errors.put(str(exc))


@pytest.mark.parametrize("old", [True, False], ids=["version-1", "new"])
def test_runs_opening_one_journal_at_once_upgrade_it_once(tmp_path: Path, old: bool) -> None:
    # The version is read under the write lock: the second finds the journal upgraded instead of
    # adding the same columns again ("duplicate column name: pages").
    context = multiprocessing.get_context("fork")
    for attempt in range(4):
        path = tmp_path / f"j{attempt}.db"
        if old:
            _version_1_sqlite(path)
        start, errors = context.Barrier(4), context.Queue()
        procs = [context.Process(target=_open_at, args=(str(path), start, errors)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        assert [proc.exitcode for proc in procs] == [0] * 4
        assert errors.empty(), errors.get()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_journal_from_a_newer_docmill_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(
        JournalError, match=f"version {SCHEMA_VERSION + 1}; this docmill reads up to"
    ) as caught:
        open_journal(str(path))
    assert "\n" not in str(caught.value)


def test_a_database_of_someone_elses_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(JournalError, match="not a docmill journal"):
        open_journal(str(path))


@pytest.fixture
def pg_schema() -> Iterator[tuple[Any, str]]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    schema = f"m_{uuid.uuid4().hex[:12]}"
    yield conn, schema
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


@pytest.mark.postgres
def test_a_version_1_postgres_journal_is_upgraded_in_place(pg_schema: tuple[Any, str]) -> None:
    conn, schema = pg_schema
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(f'SET search_path TO "{schema}"')
    conn.execute(_pg_sql.SCHEMA)
    conn.execute(_pg_sql.WRITE_VERSION, ("1",))
    conn.execute(
        "INSERT INTO docmill_documents (source, path, fingerprint, sha256, status, result, started, "
        "finished) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
        OLD_ROW,
    )
    journal = open_journal(f"{PG_URL}?schema={schema}")
    _check_upgraded(journal)
    journal.close()
    version = conn.execute(_pg_sql.READ_VERSION).fetchone()[0]
    assert version == str(SCHEMA_VERSION)
