"""The one-import Python API: the README's example runs, and gives what `docmill run` gives."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import docmill
from docmill.cli.main import main
from docmill.config import RunConfig
from docmill.errors import ConfigError, DocmillError, MissingDependencyError
from docmill.export import COLUMNS
from docmill.runner import run as run_pipeline
from docmill.testing import TWO_LABELS, MemorySource, NoopProcessor

REPO = Path(__file__).resolve().parents[2]
DOCS = {
    "a.txt": "INVOICE 2024-001. Amount due: 300 EUR. Payment terms: 30 days.",
    "b.md": "# Soup\n\nIngredients: two onions. Simmer for an hour.",
    "c.txt": "INVOICE 2024-001. Amount due: 300 EUR. Payment terms: 30 days.",
    "broken.pdf": "this is not a PDF at all",
}


def readme_python_block() -> str:
    """The first ```python block of the README's tour."""
    tour = (REPO / "README.md").read_text(encoding="utf-8").split("## A tour", 1)[1]
    found = re.search(r"```python\n(.*?)```", tour, re.DOTALL)
    assert found, "the README's tour has no Python example"
    return found.group(1)


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding a copy of examples/corpus, as the README's paths expect."""
    shutil.copytree(REPO / "examples" / "corpus", tmp_path / "examples" / "corpus")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "labels.yaml").write_text(TWO_LABELS, encoding="utf-8")  # the source's labels: not a document
    return root


def cli_export(db: str, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / "cli.jsonl"
    assert main(["export", "--db", db, "--format", "jsonl", "-o", str(out)]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """An export row without its timing (which differs run to run); pandas' NaN as None."""
    kept = {k: v for k, v in row.items() if k in COLUMNS and k != "seconds"}
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in kept.items()}


def test_the_readme_example_runs_and_equals_docmill_run(examples: Path) -> None:
    code = readme_python_block()
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    result, df = namespace["result"], namespace["df"]

    argv = ["run", "examples/corpus", "-s", "threads", "-w", "2", "--db", "cli.db", "--progress", "none"]
    assert main(argv) == 0
    cli_rows = cli_export("cli.db", examples)
    api_rows = df.to_dict("records")
    assert list(df.columns) == list(COLUMNS)
    assert [comparable(r) for r in api_rows] == [comparable(r) for r in cli_rows]
    assert len(api_rows) == 50
    assert result.stats.by_status == _counts(cli_rows)
    claimed = re.search(r"print\(result\.stats\.by_status\)\s*#\s*(\{.*?\})", code)
    assert claimed and ast.literal_eval(claimed.group(1)) == result.stats.by_status  # the comment is true
    assert namespace["table"].num_rows == 50
    assert printed.getvalue().startswith(str(result.stats.by_status))


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def test_an_unknown_keyword_is_refused_like_the_same_key_in_docmill_yaml(
    corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(ConfigError) as from_python:
        docmill.run(corpus, strategy="sequential", db=db, wokers=2)
    (tmp_path / "docmill.yaml").write_text("strategy: sequential\nwokers: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as from_yaml:
        RunConfig.load(tmp_path / "docmill.yaml")
    assert str(from_python.value) == str(from_yaml.value)
    assert "wokers" in str(from_python.value) and "\n" not in str(from_python.value)
    assert not db.exists()  # refused before any work


def test_a_nested_section_is_checked_too(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_proceses"):
        docmill.run(corpus, strategy="sequential", db=tmp_path / "j.db", parallelization={"max_proceses": 2})


def test_settings_come_from_a_config_file_and_keywords_override_it(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "docmill.yaml"
    config.write_text(f"strategy: threads\nworkers: 3\ndb: {tmp_path / 'from-file.db'}\n", encoding="utf-8")
    result = docmill.run(corpus, config=config, strategy="sequential")
    assert result.strategy.startswith("sequential")
    assert result.db == str(tmp_path / "from-file.db")


def test_to_arrow_has_the_export_columns_and_types(corpus: Path, tmp_path: Path) -> None:
    result = docmill.run(corpus, strategy="sequential", db=tmp_path / "j.db")
    table = result.to_arrow()
    assert table.column_names == list(COLUMNS)
    assert table.num_rows == len(DOCS)
    assert str(table.schema.field("score").type) == "double"
    assert str(table.schema.field("attempts").type) == "int64"
    rows = sorted(table.to_pylist(), key=lambda r: r["path"])
    assert [r["path"] for r in rows] == sorted(DOCS)
    assert {r["path"]: r["status"] for r in rows}["c.txt"] == "duplicate"


def test_is_quiet_unless_asked(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docmill.run(corpus, strategy="sequential", db=tmp_path / "quiet.db")
    assert capsys.readouterr().err == ""
    docmill.run(corpus, strategy="sequential", db=tmp_path / "loud.db", progress="log")
    assert "processed" in capsys.readouterr().err


def test_to_pandas_without_pandas_names_the_extra(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = docmill.run(corpus, strategy="sequential", db=tmp_path / "j.db")
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"docmill\[pandas\]"):
        result.to_pandas()


def test_a_result_whose_journal_was_in_memory_says_so() -> None:
    result = run_pipeline(MemorySource(1), NoopProcessor())
    with pytest.raises(ConfigError, match="in memory"):
        result.rows()


def test_open_journal_reads_a_finished_journal(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    result = docmill.run(corpus, strategy="sequential", db=db)
    with docmill.open_journal(db) as journal:
        summary = journal.summary()
        rows = journal.rows()
        failures = journal.failures()
        frame = journal.to_pandas(status=["ok"])
        assert journal.runs()[0].id == result.run_id
    assert dict(summary.by_status) == result.stats.by_status
    assert summary.total == len(rows) == len(DOCS)
    assert rows == result.rows()
    assert [f.path for f in failures] == ["broken.pdf"] and failures[0].error_type
    assert list(frame["path"]) == [r["path"] for r in rows if r["status"] == "ok"]


def test_open_journal_refuses_a_missing_journal_or_run_and_creates_nothing(
    tmp_path: Path, corpus: Path
) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(ConfigError, match="no journal"):
        docmill.open_journal(missing)
    assert not missing.exists()
    db = tmp_path / "j.db"
    docmill.run(corpus, strategy="sequential", db=db)
    with docmill.open_journal(db) as journal, pytest.raises(ConfigError, match="no run 99"):
        journal.summary(99)


def test_open_journal_is_read_only(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    result = docmill.run(corpus, strategy="sequential", db=db)
    before = db.read_bytes()
    with docmill.open_journal(db) as journal:
        assert len(journal.to_arrow()) == len(DOCS)
        with pytest.raises(DocmillError):
            journal.journal.forget(source=str(corpus), fingerprint="x")
        with pytest.raises(DocmillError):
            journal.journal.end_run(result.run_id, "failed", {})
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("j.db")) == ["j.db"]
