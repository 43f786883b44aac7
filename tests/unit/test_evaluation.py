"""Metrics checked against hand-computed examples; truth files; joining a real journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.journal.base import RunInfo
from docmill.journal.sqlite import SqliteJournal
from docmill.model.evaluation import NONE, evaluate, journal_predictions, label_scores, read_truth, score
from docmill.outcome import ErrorInfo, Outcome, Status

# truth a a a b b c ; predicted a a b b c c
PAIRS = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "c"), ("c", "c")]


def test_confusion_accuracy_and_per_label_by_hand() -> None:
    report = score(PAIRS)
    assert report.labels == ("a", "b", "c")
    assert report.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    assert report.accuracy == pytest.approx(4 / 6)
    a, b, c = (report.per_label[k] for k in "abc")
    assert (a.precision, a.support) == (1.0, 3)
    assert a.recall == pytest.approx(2 / 3)
    assert a.f1 == pytest.approx(0.8)  # 2·1·⅔ / (1 + ⅔)
    assert (b.precision, b.recall, b.f1) == (0.5, 0.5, 0.5)
    assert (c.precision, c.recall) == (0.5, 1.0)
    assert c.f1 == pytest.approx(2 / 3)
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_label_never_predicted_has_zero_precision_not_an_error() -> None:
    matrix = [[0, 2], [0, 3]]
    assert label_scores(matrix, 0).precision == 0.0
    assert label_scores(matrix, 0).f1 == 0.0
    assert label_scores(matrix, 1).precision == pytest.approx(0.6)


def test_unlabelled_documents_count_as_wrong_but_stay_out_of_the_macro_average() -> None:
    report = score([("a", "a"), ("a", None), ("b", "b")])
    assert report.labels == ("a", "b", NONE)
    assert report.accuracy == pytest.approx(2 / 3)
    assert NONE not in report.per_label
    assert report.per_label["a"].recall == 0.5
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)


def test_labels_predicted_but_absent_from_the_truth_are_scored() -> None:
    report = score([("a", "z")])
    assert report.labels == ("a", "z")
    assert report.per_label["z"].support == 0
    assert report.accuracy == 0.0


def test_evaluate_counts_what_either_side_lacks() -> None:
    truth = {"x": "a", "y": "b", "z": "a"}
    report = evaluate(truth, {"x": "a", "y": None, "w": "b"})
    assert report.n == 2
    assert report.missing == {"not_classified": 1, "not_in_truth": 1, "no_label": 1}
    assert report.accuracy == 0.5
    assert set(report.to_json()) == {
        "accuracy",
        "macro_f1",
        "per_label",
        "confusion",
        "labels",
        "n",
        "missing",
    }


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "truth.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_truth_ignores_extra_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "path,label,section\na/1.txt,x,1\nb.txt, y ,2\n")
    assert read_truth(path) == {"a/1.txt": "x", "b.txt": "y"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("file,label\na,x\n", "missing column(s) path"),
        ("path,label\na,x\na,y\n", "line 3: duplicate path 'a'"),
        ("path,label\na,\n", "line 2: empty path or label"),
        ("path,label\n", "no rows"),
    ],
)
def test_bad_truth_files(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(
        ConfigError, match="truth file .*: " + problem.replace("(", r"\(").replace(")", r"\)")
    ):
        read_truth(write(tmp_path, text))


def test_missing_truth_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_truth(tmp_path / "none.csv")


def outcome(path: str, label: str | None) -> Outcome:
    ref = DocumentRef(path, f"/c/{path}", size=1, mtime_ns=1)
    if label is None:
        return Outcome(ref, Status.FAILED, path.ljust(64, "0"), None, ErrorInfo("CorruptDocument", "bad"))
    return Outcome(ref, Status.OK, path.ljust(64, "0"), {"label": label, "score": 0.9})


def record(journal: SqliteJournal, fingerprint: str, outcomes: list[Outcome]) -> int:
    run_id = journal.begin_run(RunInfo("/c", fingerprint, "sequential", 1))
    journal.record(outcomes, run_id=run_id, source="/c", fingerprint=fingerprint)
    journal.end_run(run_id, "done", {})
    return run_id


def test_journal_predictions_read_the_latest_run_unless_told(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        first = record(journal, "old", [outcome("a", "x"), outcome("b", "x")])
        record(journal, "new", [outcome("a", "y"), outcome("b", None)])
        assert journal_predictions(journal) == {"a": "y", "b": None}
        assert journal_predictions(journal, run_id=first) == {"a": "x", "b": "x"}
        with pytest.raises(ConfigError, match="no run 99"):
            journal_predictions(journal, run_id=99)
    finally:
        journal.close()


def test_journal_predictions_page_through_many_documents(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        record(journal, "f", [outcome(f"d{i:04d}", "x") for i in range(2345)])
        assert len(journal_predictions(journal)) == 2345
    finally:
        journal.close()


def test_empty_journal_is_a_clear_error(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        with pytest.raises(ConfigError, match="no runs yet"):
            journal_predictions(journal)
    finally:
        journal.close()
