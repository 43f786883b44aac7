"""`docmill train` and `docmill eval` on a small corpus written to disk (seconds, no shared data)."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.model.file import read_header

VOCAB = {
    "invoice": "invoice amount due payment total vat customer bill",
    "recipe": "oven bake flour sugar tablespoon stir minutes butter",
    "letter": "dear regards sincerely yours friend wrote hope soon",
}


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(3)
    root, rows = tmp_path / "docs", ["path,label,note"]
    for label, words in VOCAB.items():
        (root / label).mkdir(parents=True)
        for i in range(10):
            text = " ".join(rng.choice(words.split() + ["the", "and", "of"]) for _ in range(50))
            (root / label / f"{i}.txt").write_text(text)
            rows.append(f"{label}/{i}.txt,{label},x")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    rows.append("broken.pdf,letter,x")
    (root / "unlabelled.txt").write_text("nobody labelled me")
    truth = tmp_path / "truth.csv"
    truth.write_text("\n".join(rows) + "\n")
    return root, truth


def test_train_reports_skips_and_writes_a_model(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = corpus
    model = tmp_path / "m.model"
    argv = ["train", str(root), "-t", str(truth), "-o", str(model), "--holdout", "0.3", "--cv", "3"]
    assert main([*argv, "--strategy", "threads", "--workers", "2"]) == 0
    out, err = capsys.readouterr()
    assert "corpus: 30 documents, 3 labels" in err
    assert "ignored: 1 file(s) not in the truth file" in err
    assert "skipped: broken.pdf: CorruptDocument" in err
    assert "held-out accuracy: 1.0000" in out
    assert "3-fold cross-validation accuracy:" in out
    assert read_header(model).meta["n_train"] == 21


def test_train_without_holdout_prints_no_figures(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = corpus
    model = tmp_path / "m.model"
    assert (
        main(["train", str(root), "-t", str(truth), "-o", str(model), "--holdout", "0", "-s", "sequential"])
        == 0
    )
    assert "held-out" not in capsys.readouterr().out
    assert read_header(model).meta["holdout"] is None and read_header(model).meta["n_train"] == 30


def test_run_then_eval_human_and_json(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = corpus
    model, db = tmp_path / "m.model", str(tmp_path / "j.db")
    assert (
        main(["train", str(root), "-t", str(truth), "-o", str(model), "--holdout", "0", "-s", "sequential"])
        == 0
    )
    assert main(["run", str(root), "-c", f"model:{model}", "--db", db, "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["eval", "-t", str(truth), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "eval accuracy: 0.9677" in out  # 30 right of 31: broken.pdf failed, so it has no label
    assert "confusion" in out and "(none)" in out
    assert "no label: 1" in out and "not in truth: 1" in out
    assert main(["eval", "-t", str(truth), "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 31 and report["labels"][-1] == "(none)"
    assert report["per_label"]["letter"]["recall"] == pytest.approx(10 / 11)


def test_unknown_strategy_is_a_one_line_error(
    corpus: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, truth = corpus
    assert main(["train", str(root), "-t", str(truth), "-s", "bogus"]) == 2
    assert "unknown strategy 'bogus'" in capsys.readouterr().err


PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
def test_eval_reads_a_postgres_journal(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_SERVER, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {str(exc).splitlines()[0]}")
    schema = f"eval_{uuid.uuid4().hex[:12]}"
    root, truth = corpus
    model, db = tmp_path / "m.model", f"{PG_SERVER}?schema={schema}"
    try:
        assert (
            main(
                ["train", str(root), "-t", str(truth), "-o", str(model), "--holdout", "0", "-s", "sequential"]
            )
            == 0
        )
        assert main(["run", str(root), "-c", f"model:{model}", "--db", db, "--progress", "none"]) == 0
        capsys.readouterr()
        assert main(["eval", "-t", str(truth), "--db", db, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["n"] == 31 and report["accuracy"] == pytest.approx(30 / 31)
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
