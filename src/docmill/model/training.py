"""``docmill train``: a labelled corpus → extracted text (the real pipeline, in parallel) → a model file.

The corpus is read exactly as ``docmill run`` reads it (``DirectorySource`` + ``ExtractText`` under a
strategy from the registry), so the model learns from the text it will later classify. The held-out
split is stratified with a fixed seed; the saved model is fitted on the training part only, so the
held-out figures it prints (and stores) are for documents it never saw.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document, DocumentRef
from docmill.errors import BrokenExecutorError, ConfigError
from docmill.executors import get_executor
from docmill.job import Job
from docmill.model.evaluation import Report, score
from docmill.model.file import write_model
from docmill.outcome import Outcome, Status
from docmill.pipeline import Pipeline
from docmill.processors.base import Processor
from docmill.processors.classify_model import DEFAULT_MAX_CHARS, softmax
from docmill.processors.extract import ExtractText
from docmill.sources.files import DirectorySource

ModelFactory = Callable[..., Any]  # (*, seed: int) -> an unfitted scikit-learn pipeline
_TEMPERATURES = [2 ** (k / 4) for k in range(-8, 25)]  # 0.25 … 64, log-spaced


class _KeepText(Processor):
    """Last step of the training pipeline: carry the extracted text back in the outcome."""

    name = "keep-text"

    def process(self, doc: Document) -> Document:
        return doc.with_metadata(text=doc.text or "")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Extracted, labelled documents, sorted by path; ``skipped`` = path → why it was left out."""

    paths: tuple[str, ...]
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    hashes: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    unlabelled: int = 0

    def fingerprint(self) -> str:
        """Hash of (path, content sha256, label) of every document used."""
        digest = hashlib.sha256()
        for row in zip(self.paths, self.hashes, self.labels, strict=True):
            digest.update("\0".join(row).encode() + b"\n")
        return digest.hexdigest()[:16]


def load_corpus(
    root: str | os.PathLike[str],
    truth: Mapping[str, str],
    *,
    strategy: str = "processes",
    workers: int | None = None,
) -> Corpus:
    """Extract the text of every document of ``truth`` under ``root``; ConfigError if some are missing."""
    source = DirectorySource(root)
    listed = list(source)
    refs = [ref for ref in listed if ref.id in truth]
    _check_present(root, truth, {ref.id for ref in refs})
    job = Job(source, Pipeline(ExtractText(), _KeepText()))
    outcomes = _extract(job, refs, strategy, workers)
    kept = sorted((o for o in outcomes if o.status is Status.OK), key=lambda o: o.ref.id)
    skipped = {o.ref.id: _why(o) for o in outcomes if o.status is not Status.OK}
    return Corpus(
        paths=tuple(o.ref.id for o in kept),
        texts=tuple(str((o.result or {}).get("text", "")) for o in kept),
        labels=tuple(truth[o.ref.id] for o in kept),
        hashes=tuple(o.sha256 or "" for o in kept),
        skipped=skipped,
        unlabelled=len(listed) - len(refs),
    )


def _check_present(root: str | os.PathLike[str], truth: Mapping[str, str], found: set[str]) -> None:
    missing = sorted(set(truth) - found)
    if missing:
        shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        raise ConfigError(f"{len(missing)} path(s) of the truth file are not under {root}: {shown}")


def _extract(job: Job, refs: Sequence[DocumentRef], strategy: str, workers: int | None) -> list[Outcome]:
    try:
        with get_executor(strategy, workers=workers) as executor:
            return list(executor.map_unordered(job, refs))
    except BrokenExecutorError:
        with get_executor("sequential") as executor:  # the strategy failed: still finish the job
            return list(executor.map_unordered(job, refs))


def _why(outcome: Outcome) -> str:
    return str(outcome.error) if outcome.error else outcome.status.value


@dataclass(frozen=True, slots=True)
class Trained:
    """A fitted pipeline, its held-out report (None without a holdout) and the split."""

    pipeline: Any
    report: Report | None
    temperature: float
    train_paths: tuple[str, ...]
    test_paths: tuple[str, ...]


def split(corpus: Corpus, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, test) indices; ConfigError when a label has too few documents."""
    indices = list(range(len(corpus.paths)))
    if not 0 <= holdout < 1:
        raise ConfigError(f"--holdout must be in [0, 1), got {holdout}")
    if holdout == 0:
        return indices, []
    rare = [label for label, n in Counter(corpus.labels).items() if n < 2]
    if rare:
        raise ConfigError(
            f"label(s) {', '.join(sorted(rare))} have fewer than 2 documents; cannot hold some out"
        )
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(indices, test_size=holdout, stratify=corpus.labels, random_state=seed)
    except ValueError as exc:
        raise ConfigError(f"cannot split the corpus: {exc}") from None
    return sorted(train), sorted(test)


def train(
    corpus: Corpus, *, holdout: float = 0.2, seed: int = 0, model: ModelFactory | None = None
) -> Trained:
    """Fit on the training split; score and calibrate on the held-out split.

    ``model(seed=…)`` builds the scikit-learn pipeline (default ``features.build_pipeline``).
    """
    if len(set(corpus.labels)) < 2:
        raise ConfigError("the truth file needs at least two different labels")
    train_idx, test_idx = split(corpus, holdout, seed)
    pipeline = _factory(model)(seed=seed)
    _fit(pipeline, [corpus.texts[i] for i in train_idx], [corpus.labels[i] for i in train_idx])
    report, temperature = None, 1.0
    if test_idx:
        texts = [corpus.texts[i][:DEFAULT_MAX_CHARS] for i in test_idx]  # what the classifier reads
        truth = [corpus.labels[i] for i in test_idx]
        decisions = pipeline.decision_function(texts)
        predicted = [str(c) for c in pipeline.classes_[decisions.argmax(axis=1)]]
        report = score(zip(truth, predicted, strict=True))
        temperature = fit_temperature(decisions, [list(pipeline.classes_).index(t) for t in truth])
    paths = corpus.paths
    return Trained(
        pipeline, report, temperature, tuple(paths[i] for i in train_idx), tuple(paths[i] for i in test_idx)
    )


def _factory(model: ModelFactory | None) -> ModelFactory:
    if model is not None:
        return model
    from docmill.model.features import build_pipeline

    return build_pipeline


def _fit(pipeline: Any, texts: list[str], labels: list[str]) -> None:
    try:
        pipeline.fit(texts, labels)
    except ValueError as exc:  # e.g. "empty vocabulary": too few or too short documents
        raise ConfigError(f"cannot train on this corpus: {exc}") from None


def fit_temperature(decisions: Any, truth: Sequence[int]) -> float:
    """The softmax temperature with the least log-loss on held-out decisions (a grid search)."""

    def loss(t: float) -> float:
        return -sum(
            math.log(max(softmax(list(row), t)[y], 1e-12)) for row, y in zip(decisions, truth, strict=True)
        )

    return min(_TEMPERATURES, key=loss)


def cross_validate(
    corpus: Corpus, *, folds: int = 5, seed: int = 0, model: ModelFactory | None = None
) -> list[Report]:
    """Stratified k-fold reports over the whole corpus (for reporting; the saved model uses none of it)."""
    from sklearn.model_selection import StratifiedKFold

    reports = []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
        corpus.texts, corpus.labels
    ):
        pipeline = _factory(model)(seed=seed)
        _fit(pipeline, [corpus.texts[i] for i in train_idx], [corpus.labels[i] for i in train_idx])
        predicted = pipeline.predict([corpus.texts[i][:DEFAULT_MAX_CHARS] for i in test_idx])
        reports.append(score(zip((corpus.labels[i] for i in test_idx), map(str, predicted), strict=True)))
    return reports


def save(
    trained: Trained, corpus: Corpus, path: str | os.PathLike[str], *, seed: int, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Write the model file with what it was trained on, when, and how well it did."""
    created = datetime.datetime.fromtimestamp(clock.wall(), datetime.UTC).isoformat(timespec="seconds")
    meta = {
        "labels": [str(c) for c in trained.pipeline.classes_],
        "temperature": trained.temperature,
        "created": created,
        "corpus": corpus.fingerprint(),
        "seed": seed,
        "n_train": len(trained.train_paths),
        "n_holdout": len(trained.test_paths),
        "holdout": None if trained.report is None else _figures(trained.report),
        "sklearn": importlib.metadata.version("scikit-learn"),
        "docmill": importlib.metadata.version("docmill"),
    }
    write_model(path, trained.pipeline, meta)


def _figures(report: Report) -> dict[str, float]:
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def holdout_rows(trained: Trained, corpus: Corpus) -> Iterator[tuple[str, str]]:
    """(path, label) of the held-out documents, for a truth file of the documents the model never saw."""
    labels = dict(zip(corpus.paths, corpus.labels, strict=True))
    return ((p, labels[p]) for p in trained.test_paths)
