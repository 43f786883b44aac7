"""Train on the man pages, classify the held-out ones with a real `docmill run`, score with `docmill eval`."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from docmill.cli.main import main
from docmill.model.file import read_header


def test_model_classifies_unseen_man_pages_at_95_percent(
    manpages: Path, manpage_labels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, heldout = tmp_path / "man.model", tmp_path / "heldout.csv"
    argv = ["train", str(manpages), "--truth", str(manpage_labels), "-o", str(model), "--seed", "0"]
    assert main([*argv, "--holdout", "0.2", "--holdout-truth", str(heldout)]) == 0
    printed = re.search(r"held-out accuracy: ([\d.]+)", capsys.readouterr().out)
    assert printed is not None and read_header(model).meta["n_holdout"] == 240

    corpus = tmp_path / "unseen"  # only the documents the model never saw
    with open(heldout, newline="") as handle:
        for row in csv.DictReader(handle):
            (corpus / row["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(manpages / row["path"], corpus / row["path"])
    db = str(tmp_path / "docmill.db")
    assert main(["run", str(corpus), "-c", f"model:{model}", "--db", db, "--progress", "none"]) == 0
    capsys.readouterr()

    assert main(["eval", "--truth", str(heldout), "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 240
    assert report["missing"] == {"not_classified": 0, "not_in_truth": 0, "no_label": 0}
    assert report["accuracy"] >= 0.95
    assert report["accuracy"] == pytest.approx(float(printed.group(1)), abs=1e-4)
    assert report["macro_f1"] >= 0.93
    assert sum(map(sum, report["confusion"])) == 240


def test_train_names_truth_paths_missing_from_the_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("hello")
    truth = tmp_path / "truth.csv"
    truth.write_text("path,label\na.txt,x\nmissing/b.txt,y\n")
    code = main(["train", str(tmp_path / "docs"), "--truth", str(truth), "-o", str(tmp_path / "m.model")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "1 path(s) of the truth file are not under " + str(tmp_path / "docs") + ": missing/b.txt"
    )
    assert "\n" not in err


def test_eval_without_a_journal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("path,label\na.txt,x\n")
    assert main(["eval", "--truth", str(truth), "--db", str(tmp_path / "none.db")]) == 2
    assert "no journal at" in capsys.readouterr().err


@pytest.mark.slow  # kept out of the default run for its length; `pytest -m slow`
def test_compiled_model_gives_the_pipelines_labels_and_scores_on_held_out_man_pages(
    manpages: Path, manpage_labels: Path, tmp_path: Path
) -> None:
    import numpy as np

    from docmill.model.evaluation import read_truth
    from docmill.model.file import read_compiled
    from docmill.model.training import load_corpus, save, train
    from docmill.processors.classify_model import _best

    corpus = load_corpus(manpages, read_truth(manpage_labels))
    trained = train(corpus, holdout=0.2, seed=0)
    texts = [corpus.texts[corpus.paths.index(path)] for path in trained.test_paths]
    save(trained, corpus, tmp_path / "man.model", seed=0)
    _, compiled = read_compiled(tmp_path / "man.model")  # the arrays a worker loads
    assert compiled is not None and len(texts) == 240
    expected = trained.pipeline.decision_function(texts)
    got = np.array([compiled.decision(text) for text in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    classes, t = compiled.classes_, trained.temperature
    for want, have in zip(expected, got, strict=True):
        (label_a, score_a), (label_b, score_b) = _best(classes, want, t), _best(classes, have, t)
        assert label_a == label_b and round(score_a, 4) == round(score_b, 4)
