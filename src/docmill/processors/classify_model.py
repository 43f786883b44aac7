"""The ``model:PATH`` classifier: a tf-idf + linear model trained by ``docmill train``.

The constructor is cheap and picklable: it validates the file's header and keeps its path and sha256
(the sha256 is the classifier's identity, so retraining re-processes old documents). Each worker
loads the model once, in ``setup()``: the compiled arrays of a version-2 file with numpy only
(:mod:`docmill.model.compiled`), so workers import neither scikit-learn nor scipy. A version-1 file,
a pipeline that did not compile or ``compiled=False`` unpickle the pipeline (scikit-learn needed).
``score`` is a softmax over the linear model's decision values, sharpened by the temperature fitted
on the held-out split at training time. Only the first ``max_chars`` characters are classified; a
score below the ``threshold`` option (``ModelOptions``, default 0) leaves the document unlabelled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docmill.document import Document
from docmill.errors import ConfigError
from docmill.model.compiled import compile_model
from docmill.model.file import file_sha256, read_compiled, read_header, read_model
from docmill.processors.base import Processor
from docmill.settings import check, from_mapping

DEFAULT_MAX_CHARS = 20_000  # 5-fold CV and held-out accuracy as uncapped; 5% of man pages are longer


class ModelClassifier(Processor):
    """Adds ``label``, ``score`` (0..1) and ``classifier`` (this step's fingerprint) to the metadata."""

    name = "model"
    version = "1"
    requires = (("numpy", "local"),)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        compiled: bool = True,
        threshold: float = 0.0,
    ) -> None:
        """``compiled=False`` calls scikit-learn for every document (same results, ~4× slower)."""
        ModelOptions(max_chars=max_chars, compiled=compiled, threshold=threshold)  # validates
        self.path = os.fspath(path)
        self.compiled = compiled
        self.labels = read_header(self.path).labels
        self.sha256 = file_sha256(self.path)
        self.max_chars = max_chars
        self.threshold = threshold
        self._model: Any = None
        self._temperature = 1.0
        self._fingerprint = self.fingerprint()

    def setup(self) -> None:
        self.check_requirements()
        header, self._model = read_compiled(self.path) if self.compiled else (read_header(self.path), None)
        if self._model is None:
            self._model = self._unpickled()
        self._temperature = float(header.meta.get("temperature", 1.0))

    def _unpickled(self) -> Any:
        """The pickled pipeline, compiled at load time if asked and possible (scikit-learn imported)."""
        _, pipeline = read_model(self.path)
        return (compile_model(pipeline) if self.compiled else None) or _Sklearn(pipeline)

    def teardown(self) -> None:
        self._model = None

    def process(self, doc: Document) -> Document:
        if self._model is None:
            self.setup()
        text = _text_of(doc)[: self.max_chars]
        decision = self._model.decision(text)
        label, score = _best(self._model.classes_, decision, self._temperature)
        kept = label if score >= self.threshold else None
        return doc.with_metadata(label=kept, score=round(score, 4), classifier=self._fingerprint)

    def probabilities(self, text: str) -> dict[str, float]:
        """Every class's probability for ``text`` (the first ``max_chars`` characters)."""
        if self._model is None:
            self.setup()
        values = [float(v) for v in self._model.decision(text[: self.max_chars])]
        if len(values) == 1:  # two classes: one decision value, the second class's
            values = [-values[0], values[0]]
        probabilities = softmax(values, self._temperature)
        return {str(c): p for c, p in zip(self._model.classes_, probabilities, strict=True)}

    def config(self) -> Mapping[str, Any]:
        threshold = {"threshold": self.threshold} if self.threshold else {}  # old fingerprints stay
        return {"model_sha256": self.sha256, "max_chars": self.max_chars, **threshold}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # each worker loads its own copy in setup()
        return state


class _Sklearn:
    """The pipeline itself, behind :class:`CompiledModel`'s interface."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.classes_ = [str(c) for c in pipeline.classes_]

    def decision(self, text: str) -> Any:
        return self.pipeline.decision_function([text]).reshape(1, -1)[0]


def _best(classes: Sequence[str], decision: Any, temperature: float) -> tuple[str, float]:
    values = [float(v) for v in decision]
    if len(values) == 1:  # two classes: one decision value, the second class's
        values = [-values[0], values[0]]
    best = max(range(len(values)), key=values.__getitem__)
    return str(classes[best]), softmax(values, temperature)[best]


def softmax(values: Sequence[float], temperature: float = 1.0) -> list[float]:
    """Probabilities from decision values; ``temperature`` multiplies them first (higher = sharper)."""
    top = max(values)
    exps = [math.exp((v - top) * temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def _text_of(doc: Document) -> str:
    if doc.text is not None:
        return doc.text
    return (doc.content or b"").decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOptions:
    """``classifier: {spec: "model:FILE", …}``: the file, how much text is read, the score to keep a label."""

    model_path: str | None = None  # the FILE of ``model:FILE`` when the spec is plain ``model``
    max_chars: int = DEFAULT_MAX_CHARS
    compiled: bool = True  # False: scikit-learn for every document (same results, ~4x slower)
    threshold: float = 0.0  # a lower score leaves the document without a label (its score is kept)

    def __post_init__(self) -> None:
        check(self.max_chars >= 1, "max_chars", self.max_chars, "must be >= 1")
        check(0.0 <= self.threshold <= 1.0, "threshold", self.threshold, "must be within [0, 1]")


CONTEXT = ("labels", "journal")  # what other classifiers read; a model file carries its own labels


def from_spec(arg: str | None, settings: Mapping[str, Any]) -> Processor:
    """``--classifier model:PATH`` (or ``model`` with ``model_path`` in the options)."""
    options = from_mapping(
        ModelOptions, {k: v for k, v in settings.items() if k not in CONTEXT}, "classifier"
    )
    path = arg or options.model_path
    if not path:
        raise ConfigError(
            "the model classifier needs a model file: --classifier model:PATH (see `docmill train`)"
        )
    return ModelClassifier(
        str(path), max_chars=options.max_chars, compiled=options.compiled, threshold=options.threshold
    )
