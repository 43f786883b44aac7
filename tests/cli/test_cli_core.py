"""docmill run / status / export / failures through the real command line (main(argv))."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.testing import write_corpus

DOCS = {
    "bills/a.txt": "INVOICE 2024-001. Amount due: 300 EUR. Payment terms: 30 days.",
    "bills/b.md": "# Invoice\n\nThe amount due is listed below. Payment terms apply.",
    "food/soup.txt": "Ingredients: two onions. Simmer for an hour, add a tablespoon of salt.",
    "food/cake.html": "<html><body><p>Heat the oven. Ingredients: flour, a spoon of sugar.</p></body></html>",
    "broken.pdf": "this is not a PDF at all",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", DOCS)


def cli(*args: str) -> int:
    return main([*args])


def one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("docmill: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err


def test_run_status_export_failures(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "j.db")
    assert cli("run", str(corpus), "--db", db, "--strategy", "sequential", "--progress", "log") == 0
    err = capsys.readouterr().err
    assert "processed 5 documents" in err and "Traceback" not in err

    assert cli("status", "--db", db, "--json") == 0
    data = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert data["documents"] == 5 and data["total"] == 5
    assert data["by_label"] == {"invoice": 2, "recipe": 2}
    assert data["failures"] == 1 and data["run"]["state"] == "done"

    out = tmp_path / "r.csv"
    assert cli("export", "--db", db, "--format", "csv", "-o", str(out)) == 0
    rows = {r["path"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == set(DOCS)  # labels.yaml is docmill's, not a document
    assert rows["food/soup.txt"]["label"] == "recipe" and rows["bills/b.md"]["label"] == "invoice"
    assert rows["broken.pdf"]["status"] in ("failed", "quarantined") and rows["broken.pdf"]["error"]

    capsys.readouterr()
    assert cli("failures", "--db", db) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("broken.pdf\t")

    assert cli("run", str(corpus), "--db", db, "--strategy", "sequential", "--progress", "log") == 0
    assert "5 already done" in capsys.readouterr().err


def test_status_human_and_watch_on_a_finished_run(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "j.db")
    cli("run", str(corpus), "--db", db, "--strategy", "sequential", "--progress", "none")
    capsys.readouterr()
    assert cli("status", "--db", db) == 0
    assert "run 1 · done" in capsys.readouterr().out
    assert cli("status", "--db", db, "--watch", "--json") == 0  # returns at once: the run is over
    assert json.loads(capsys.readouterr().out)["documents"] == 5
    cli("run", str(corpus), "--db", db, "--strategy", "sequential", "--progress", "none")
    capsys.readouterr()
    assert cli("status", "--db", db, "--runs", "--json") == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["id"] for r in runs] == [2, 1] and runs[0]["stats"]["skipped"] == 5
    assert cli("status", "--db", db, "--runs") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_status_names_what_auto_chose(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "j.db")
    assert cli("run", str(corpus), "--db", db, "--strategy", "auto", "-w", "2", "--progress", "none") == 0
    capsys.readouterr()
    assert cli("status", "--db", db) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "· auto ×2 → queue(workers=2" in first, first


def test_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("run", str(tmp_path / "nowhere"), "--db", str(tmp_path / "j.db")) == 2
    one_line_error(capsys, "no such folder")


def test_unknown_strategy_exits_2(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("run", str(corpus), "--strategy", "warp", "--db", str(tmp_path / "j.db")) == 2
    one_line_error(capsys, "unknown strategy 'warp'", "sequential")


def test_bad_yaml_exits_2(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "docmill.yaml"
    bad.write_text("strategy: [threads\nworkers: 2\n")
    assert cli("run", str(corpus), "--config", str(bad)) == 2
    one_line_error(capsys, "bad YAML")


def test_bad_setting_exits_2(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("run", str(corpus), "--workers", "0", "--db", str(tmp_path / "j.db")) == 2
    one_line_error(capsys, "workers")


def test_missing_labels_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("hello")
    code = cli("run", str(tmp_path / "c"), "--db", str(tmp_path / "j.db"), "--strategy", "sequential")
    assert code == 2
    one_line_error(capsys, "labels")


def test_inspect_commands_need_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["status"], ["failures"], ["export", "-o", str(tmp_path / "x.csv")]):
        assert cli(*command, "--db", str(tmp_path / "none.db")) == 2
        one_line_error(capsys, "no journal")
