"""Per-task evaluation: multi-label micro/macro-F1 and exact matches, truth CSVs with a column per task."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.errors import ConfigError
from docmill.model.task_eval import (
    evaluate_multi,
    evaluate_task,
    has_task_columns,
    read_task_truth,
    score_multi,
)


def test_micro_and_macro_f1_and_exact_matches() -> None:
    pairs = [({"a", "b"}, {"a"}), ({"b"}, {"b", "c"}), (set(), set())]
    report = score_multi(pairs)
    # a: tp 1; b: tp 1, fn 1; c: fp 1 → micro 2·2 / (2·2 + 1 + 1)
    assert report.micro_f1 == pytest.approx(4 / 6)
    assert report.per_label["a"].f1 == 1.0 and report.per_label["b"].f1 == pytest.approx(2 / 3)
    assert report.per_label["c"].f1 == 0.0 and report.per_label["c"].support == 0
    assert report.macro_f1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert report.exact_match == pytest.approx(1 / 3) and report.n == 3
    assert report.to_json()["multi"] is True


def test_unclassified_documents_predict_no_label() -> None:
    report = evaluate_multi({"x": "a;b", "y": "a"}, {"x": ["a", "b"], "z": ["a"]})
    assert report.exact_match == 0.5 and report.missing == {"not_classified": 1, "not_in_truth": 1}


def test_a_single_label_task_is_scored_as_labels_are() -> None:
    report = evaluate_task({"x": "a", "y": "b", "z": ""}, {"x": "a", "y": "a"}, multi=False)
    assert report.accuracy == 0.5 and report.n == 2  # an empty cell leaves z ungraded


def test_truth_columns_by_task_name_or_export_column(tmp_path: Path) -> None:
    truth = tmp_path / "t.csv"
    truth.write_text("path,topic,label_audience,other\nd1,x,a;b,1\nd2,y,,2\n")
    assert read_task_truth(truth, ["topic", "audience", "language"]) == {
        "topic": {"d1": "x", "d2": "y"},
        "audience": {"d1": "a;b", "d2": ""},
    }
    assert has_task_columns(truth, ["audience"]) and not has_task_columns(truth, ["language"])
    with pytest.raises(ConfigError, match="no column names a task of the run \\(language\\)"):
        read_task_truth(truth, ["language"])
    truth.write_text("path,topic\nd1,x\nd1,y\n")
    with pytest.raises(ConfigError, match="line 3: duplicate path 'd1'"):
        read_task_truth(truth, ["topic"])
