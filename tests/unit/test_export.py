"""Exports: CSV, JSON Lines and Parquet carry the same rows; files appear whole or not at all."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.export import COLUMNS, EXPORT_COLUMNS, export, export_row
from docmill.journal.base import Query, RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.outcome import ErrorInfo, Outcome, Status

NAMES = ["a.txt", "name with spaces & ünïcödé — 文書.txt", "z/broken.pdf"]


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    j = SqliteJournal(tmp_path / "j.db")
    run = j.begin_run(RunInfo("/src", "fp", "sequential", 1))
    outcomes = [
        Outcome(DocumentRef(NAMES[0], "u", 3), Status.OK, "s1", {"label": "x", "score": 0.9}),
        Outcome(DocumentRef(NAMES[1], "u", 4), Status.OK, "s2", {"label": "y", "score": 0.1}),
        Outcome(
            DocumentRef(NAMES[2], "u", 5), Status.FAILED, "s3", None, ErrorInfo("CorruptDocument", "bad xref")
        ),
    ]
    j.record(outcomes, run_id=run, source="/src", fingerprint="fp")
    return j


def test_csv(journal: SqliteJournal, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert export(journal.iter_documents(Query()), "csv", out) == 3
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert tuple(rows[0]) == COLUMNS
    assert [r["path"] for r in rows] == NAMES
    assert rows[2]["status"] == "quarantined" and rows[2]["error"] == "CorruptDocument: bad xref"
    assert rows[0]["label"] == "x" and float(rows[0]["score"]) == 0.9


def test_jsonl(journal: SqliteJournal, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    export(journal.iter_documents(Query()), "jsonl", out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["path"] for r in rows] == NAMES and rows[1]["result"]["label"] == "y"


def test_parquet(journal: SqliteJournal, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "r.parquet"
    export(journal.iter_documents(Query()), "parquet", out)
    table = pq.read_table(out)
    assert table.column_names == list(COLUMNS)
    assert table.column("path").to_pylist() == NAMES


def test_empty_parquet_has_the_schema(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    export([], "parquet", tmp_path / "e.parquet")
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_a_failed_export_leaves_no_partial_file(journal: SqliteJournal, tmp_path: Path) -> None:
    def broken() -> object:
        yield from journal.iter_documents(Query())
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        export(broken(), "csv", tmp_path / "r.csv")  # type: ignore[arg-type]
    assert list(tmp_path.glob("*.csv*")) == [] and not (tmp_path / "r.csv").exists()


def test_unknown_format_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format"):
        export([], "xlsx", tmp_path / "r.xlsx")
    with pytest.raises(ConfigError, match="folder does not exist"):
        export([], "csv", tmp_path / "nope" / "r.csv")
    with pytest.raises(ConfigError, match="standard output"):
        export([], "parquet", "-")


def test_every_export_derives_its_columns_from_the_one_declaration(journal: SqliteJournal) -> None:
    records = list(journal.iter_documents(Query()))
    rows = [export_row(record) for record in records]
    assert all(tuple(row) == COLUMNS == tuple(c.name for c in EXPORT_COLUMNS) for row in rows)
    for column in EXPORT_COLUMNS:  # each value has its column's type (or is missing)
        assert all(row[column.name] is None or isinstance(row[column.name], column.kind) for row in rows)
    assert rows[2]["error"] == "CorruptDocument: bad xref" and rows[0]["error"] is None


def test_parquet_schema_follows_the_declared_types() -> None:
    pa = pytest.importorskip("pyarrow")
    from docmill.export.parquet import _schema

    kinds = {pa.string(): str, pa.int64(): int, pa.float64(): float}
    assert [(f.name, kinds[f.type]) for f in _schema()] == [(c.name, c.kind) for c in EXPORT_COLUMNS]
