"""``docmill eval`` per task: a truth CSV with one column per task, scored against a run's answers.

The truth file has ``path`` and a column per task graded, named as the task (``topic``) or as its
export column (``label_topic``); other columns are ignored. A single-label task is scored as
``docmill.model.evaluation`` scores labels (accuracy, macro-F1, confusion; an empty cell leaves
the document ungraded for that task). A multi-label task's cell holds its labels joined by ``;``
(empty: none apply) and is scored per label over every document: micro-F1 (counts pooled), macro-F1
(the mean of the labels' F1) and the exact-match share (the predicted set is the true set).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from docmill.errors import ConfigError
from docmill.journal.base import Journal, Query, RunRecord
from docmill.model.evaluation import LabelScores, evaluate
from docmill.model.tasks import LEGACY, task_value

Value = str | list[str] | None


@dataclass(frozen=True, slots=True)
class MultiReport:
    """Multi-label scores: micro- and macro-F1, exact matches, per-label precision/recall/F1."""

    micro_f1: float
    macro_f1: float
    exact_match: float
    per_label: Mapping[str, LabelScores]
    n: int
    missing: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "multi": True}


def read_task_truth(path: str | os.PathLike[str], tasks: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{task: {path: cell}}`` for every task with a column in the truth CSV (ConfigError if none)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = csv.DictReader(handle)
            columns = _task_columns(path, list(rows.fieldnames or ()), list(tasks))
            return _cells(path, rows, columns)
    except FileNotFoundError:
        raise ConfigError(f"truth file {path}: not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"truth file {path}: cannot read: {exc}") from None


def has_task_columns(path: str | os.PathLike[str], tasks: Iterable[str]) -> bool:
    """Whether the truth CSV names at least one of ``tasks`` (False when it cannot be read)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            fields = set(next(csv.reader(handle), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return any(name in fields or f"label_{name}" in fields for name in tasks)


def _task_columns(path: str | os.PathLike[str], fields: list[str], tasks: list[str]) -> dict[str, str]:
    if "path" not in fields:
        raise ConfigError(f"truth file {path}: missing column path")
    columns = {t: t if t in fields else f"label_{t}" for t in tasks if t in fields or f"label_{t}" in fields}
    if not columns:
        raise ConfigError(f"truth file {path}: no column names a task of the run ({', '.join(tasks)})")
    return columns


def _cells(
    path: str | os.PathLike[str], rows: csv.DictReader[str], columns: dict[str, str]
) -> dict[str, Any]:
    truth: dict[str, dict[str, str]] = {task: {} for task in columns}
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        key = (row["path"] or "").strip()
        if not key or key in seen:
            raise ConfigError(
                f"truth file {path}: line {line}: {'duplicate' if key else 'empty'} path {key!r}"
            )
        seen.add(key)
        for task, column in columns.items():
            truth[task][key] = (row.get(column) or "").strip()
    return truth


def run_answers(journal: Journal, run_id: int | None = None) -> tuple[RunRecord, dict[str, dict[str, Value]]]:
    """The run (the latest by default) and ``{task: {path: answer}}`` for each task it declared."""
    runs = journal.runs()
    if not runs:
        raise ConfigError("the journal has no runs yet; run `docmill run` first")
    run = next((r for r in runs if r.id == run_id), None) if run_id else max(runs, key=lambda r: r.id)
    if run is None:
        raise ConfigError(f"no run {run_id} in the journal")
    tasks = [t for t in (run.config.get("tasks") or {}) if t != LEGACY]
    answers: dict[str, dict[str, Value]] = {t: {} for t in tasks}
    for record in journal.iter_documents(Query(source=run.source, fingerprint=run.fingerprint)):
        for task in tasks:
            answers[task][record.path] = task_value(record.result, task)
    return run, answers


def evaluate_task(truth: Mapping[str, str], predicted: Mapping[str, Value], *, multi: bool) -> Any:
    """A ``Report`` for a single-label task, a ``MultiReport`` for a multi-label one."""
    if multi:
        return evaluate_multi(truth, predicted)
    graded = {path: label for path, label in truth.items() if label}
    return evaluate(
        graded, {p: v if isinstance(v, str) or v is None else ";".join(v) for p, v in predicted.items()}
    )


def evaluate_multi(truth: Mapping[str, str], predicted: Mapping[str, Value]) -> MultiReport:
    """Join by path; a document the run did not classify counts as predicting no label."""
    pairs = [(_labels(cell), _labels(predicted.get(path))) for path, cell in truth.items()]
    missing = {
        "not_classified": sum(1 for path in truth if path not in predicted),
        "not_in_truth": sum(1 for path in predicted if path not in truth),
    }
    return score_multi(pairs, missing=missing)


def score_multi(
    pairs: list[tuple[set[str], set[str]]], *, missing: Mapping[str, int] | None = None
) -> MultiReport:
    """Micro/macro-F1 and exact matches of ``(true labels, predicted labels)`` pairs."""
    labels = sorted(set().union(*(t | p for t, p in pairs))) if pairs else []
    counts = {label: _counts(pairs, label) for label in labels}
    per_label = {label: _scores(*counts[label]) for label in labels}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    micro = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    macro = sum(s.f1 for s in per_label.values()) / len(per_label) if per_label else 0.0
    exact = sum(1 for t, p in pairs if t == p) / len(pairs) if pairs else 0.0
    return MultiReport(micro, macro, exact, per_label, len(pairs), dict(missing or {}))


def _counts(pairs: list[tuple[set[str], set[str]]], label: str) -> tuple[int, int, int]:
    tp = sum(1 for t, p in pairs if label in t and label in p)
    fp = sum(1 for t, p in pairs if label not in t and label in p)
    fn = sum(1 for t, p in pairs if label in t and label not in p)
    return tp, fp, fn


def _scores(tp: int, fp: int, fn: int) -> LabelScores:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(precision, recall, f1, tp + fn)


def _labels(value: Value) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        return set(value)
    return {part.strip() for part in value.split(";") if part.strip()}


__all__ = [
    "MultiReport",
    "evaluate_multi",
    "evaluate_task",
    "has_task_columns",
    "read_task_truth",
    "run_answers",
    "score_multi",
]
