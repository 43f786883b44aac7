"""Scoring labels against a truth file: ``docmill eval`` and the held-out figures of ``docmill train``.

Pure functions over plain mappings (no scikit-learn needed). A truth file is a CSV with ``path`` and
``label`` columns (others are ignored), ``path`` relative to the source root, as in exports.

A document in the truth file that the classifier left without a label (it failed, or matched
nothing) counts as wrong: it is predicted ``(none)``, which appears in the confusion matrix but not in
the macro average.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from docmill.errors import ConfigError
from docmill.journal.base import Journal, Query

NONE = "(none)"
_PAGE = 1000


def read_truth(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{path: label}`` from a truth CSV; ConfigError (one line) for a missing column or duplicate path."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _truth_rows(path, csv.DictReader(handle))
    except FileNotFoundError:
        raise ConfigError(f"truth file {path}: not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"truth file {path}: cannot read: {exc}") from None


def _truth_rows(path: str | os.PathLike[str], rows: csv.DictReader[str]) -> dict[str, str]:
    missing = {"path", "label"} - set(rows.fieldnames or ())
    if missing:
        raise ConfigError(f"truth file {path}: missing column(s) {', '.join(sorted(missing))}")
    truth: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        key, label = (row["path"] or "").strip(), (row["label"] or "").strip()
        if not key or not label:
            raise ConfigError(f"truth file {path}: line {line}: empty path or label")
        if key in truth:
            raise ConfigError(f"truth file {path}: line {line}: duplicate path {key!r}")
        truth[key] = label
    if not truth:
        raise ConfigError(f"truth file {path}: no rows")
    return truth


@dataclass(frozen=True, slots=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    """Accuracy, macro-F1, per-label scores and the confusion matrix (rows truth, columns predicted)."""

    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    per_label: Mapping[str, LabelScores]
    confusion: tuple[tuple[int, ...], ...]
    n: int
    missing: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["confusion"] = [list(row) for row in self.confusion]
        return data


def score(pairs: Iterable[tuple[str, str | None]], *, missing: Mapping[str, int] | None = None) -> Report:
    """Score ``(truth, predicted)`` pairs; a predicted None is the ``(none)`` label."""
    named = [(t, NONE if p is None else p) for t, p in pairs]
    labels = sorted({t for t, _ in named} | {p for _, p in named} - {NONE})
    if any(p == NONE for _, p in named):
        labels.append(NONE)
    matrix = confusion(named, labels)
    scored = {label: label_scores(matrix, i) for i, label in enumerate(labels) if label != NONE}
    return Report(
        accuracy=accuracy(matrix),
        macro_f1=sum(s.f1 for s in scored.values()) / len(scored) if scored else 0.0,
        labels=tuple(labels),
        per_label=scored,
        confusion=tuple(tuple(row) for row in matrix),
        n=len(named),
        missing=dict(missing or {}),
    )


def confusion(pairs: Iterable[tuple[str, str]], labels: list[str]) -> list[list[int]]:
    """``matrix[i][j]`` = documents of truth ``labels[i]`` predicted ``labels[j]``."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (truth, predicted), count in Counter(pairs).items():
        matrix[index[truth]][index[predicted]] += count
    return matrix


def accuracy(matrix: list[list[int]]) -> float:
    total = sum(map(sum, matrix))
    return sum(matrix[i][i] for i in range(len(matrix))) / total if total else 0.0


def label_scores(matrix: list[list[int]], i: int) -> LabelScores:
    """Precision, recall and F1 of label ``i`` (0.0 where undefined, as scikit-learn reports)."""
    hits = matrix[i][i]
    support = sum(matrix[i])
    predicted = sum(row[i] for row in matrix)
    precision = hits / predicted if predicted else 0.0
    recall = hits / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(precision, recall, f1, support)


def evaluate(truth: Mapping[str, str], predicted: Mapping[str, str | None]) -> Report:
    """Join predictions with the truth by path; counts what either side lacks."""
    both = [p for p in truth if p in predicted]
    missing = {
        "not_classified": len(truth) - len(both),
        "not_in_truth": sum(1 for p in predicted if p not in truth),
        "no_label": sum(1 for p in both if predicted[p] is None),
    }
    return score(((truth[p], predicted[p]) for p in both), missing=missing)


def journal_predictions(journal: Journal, *, run_id: int | None = None) -> dict[str, str | None]:
    """``{path: label}`` of a run's source and pipeline (the latest run by default)."""
    runs = journal.runs()
    if not runs:
        raise ConfigError("the journal has no runs yet; run `docmill run` first")
    run = next((r for r in runs if r.id == run_id), None) if run_id else max(runs, key=lambda r: r.id)
    if run is None:
        raise ConfigError(f"no run {run_id} in the journal")
    query = Query(source=run.source, fingerprint=run.fingerprint, limit=_PAGE)
    predicted: dict[str, str | None] = {}
    while page := journal.documents(query):
        predicted.update((record.path, record.label) for record in page)
        query = Query(
            source=run.source, fingerprint=run.fingerprint, limit=_PAGE, offset=query.offset + _PAGE
        )
    return predicted
