"""The ``keywords`` classifier: zero-shot labelling from a labels file, fast enough for every document.

Each label is scored by how often its keywords and phrases occur in the text (case-insensitive,
whole words, sublinear term frequency ``1 + ln(count)``), plus the words of its description at a
low weight. The raw score is divided by ``sqrt(1 + words / 100)`` so that a few hits in a short
note count for more than the same hits in a long manual. The winning label's confidence is its
share of the evidence with one unit of "none of these" mass added::

    score = best / (1 + sum of all labels' scores)        # in [0, 1)

A document that matches nothing gets ``label=None`` and ``score=0.0``; one scoring below the
``threshold`` option (``KeywordOptions``, default 0) keeps its score and gets ``label=None``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from docmill.document import Document
from docmill.errors import ConfigError
from docmill.model.labels import LabelSet, load_labels
from docmill.processors.base import Processor
from docmill.settings import check, from_mapping

_WORD = re.compile(r"\w+")
DESCRIPTION_WEIGHT = 0.25
DEFAULT_MAX_CHARS = 200_000  # labels are decided early in a document; bounds the cost of huge texts
# Words too common to say anything about a label when they appear in its description.
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in into is it its of on or that the their this to "
    "was were which with about any each such other than these those using used use can may not "
    "one more most also etc".split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens: the unit both keywords and documents are matched in."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class _Term:
    label: int
    text: str  # one word, or words joined by single spaces
    weight: float


class KeywordScorer:
    """Scores text against every label of a LabelSet. Pure: no I/O, no state between calls."""

    def __init__(self, labels: LabelSet) -> None:
        self.names = labels.names
        terms = [*_keyword_terms(labels), *_description_terms(labels)]
        self._single = [t for t in terms if " " not in t.text]
        self._phrases = [t for t in terms if " " in t.text]

    def scores(self, text: str) -> list[float]:
        """Length-normalised evidence for each label, in label order."""
        tokens = words(text)
        counts = Counter(tokens)
        raw = [0.0] * len(self.names)
        for term in self._single:
            raw[term.label] += term.weight * _tf(counts.get(term.text, 0))
        if self._phrases:
            joined = f" {' '.join(tokens)} "
            for term in self._phrases:
                raw[term.label] += term.weight * _tf(joined.count(f" {term.text} "))
        norm = math.sqrt(1.0 + len(tokens) / 100.0)
        return [r / norm for r in raw]

    def classify(self, text: str) -> tuple[str | None, float]:
        """(best label or None when nothing matched, confidence in [0, 1))."""
        scores = self.scores(text)
        best = max(range(len(scores)), key=scores.__getitem__)  # ties: first label in the file
        if scores[best] <= 0.0:
            return None, 0.0
        return self.names[best], scores[best] / (1.0 + sum(scores))


def _tf(count: int) -> float:
    return 1.0 + math.log(count) if count > 0 else 0.0


def _keyword_terms(labels: LabelSet) -> Iterable[_Term]:
    for i, name in enumerate(labels.names):
        for phrase in dict.fromkeys(" ".join(words(k)) for k in labels.keywords[name]):
            if phrase:
                yield _Term(i, phrase, 1.0)


def _description_terms(labels: LabelSet) -> Iterable[_Term]:
    for i, name in enumerate(labels.names):
        taken = {" ".join(words(k)) for k in labels.keywords[name]}
        for word in dict.fromkeys(words(labels.descriptions[name])):
            if len(word) > 2 and word not in _STOPWORDS and word not in taken and not word.isdigit():
                yield _Term(i, word, DESCRIPTION_WEIGHT)


class KeywordClassifier(Processor):
    """Adds ``label``, ``score`` and ``classifier`` (this step's fingerprint) to the metadata."""

    name = "keywords"
    version = "1"

    def __init__(
        self, labels: LabelSet, *, max_chars: int = DEFAULT_MAX_CHARS, threshold: float = 0.0
    ) -> None:
        options = KeywordOptions(max_chars=max_chars, threshold=threshold)  # validates
        self.labels = labels
        self.max_chars = options.max_chars
        self.threshold = options.threshold
        self._scorer: KeywordScorer | None = None
        self._fingerprint = ""

    def setup(self) -> None:
        self._scorer = KeywordScorer(self.labels)
        self._fingerprint = self.fingerprint()

    def process(self, doc: Document) -> Document:
        if self._scorer is None:
            self.setup()
        assert self._scorer is not None
        label, score = self._scorer.classify(_text_of(doc)[: self.max_chars])
        label = label if score >= self.threshold else None
        return doc.with_metadata(label=label, score=round(score, 4), classifier=self._fingerprint)

    def config(self) -> Mapping[str, Any]:
        threshold = {"threshold": self.threshold} if self.threshold else {}  # old fingerprints stay
        return {"labels": self.labels.fingerprint(), "max_chars": self.max_chars, **threshold}


def _text_of(doc: Document) -> str:
    if doc.text is not None:
        return doc.text
    return (doc.content or b"").decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordOptions:
    """``classifier: {spec: keywords, …}``: how much text is read; below which score no label is given."""

    max_chars: int = DEFAULT_MAX_CHARS
    threshold: float = 0.0  # a lower score leaves the document without a label (its score is kept)

    def __post_init__(self) -> None:
        check(self.max_chars >= 1, "max_chars", self.max_chars, "must be >= 1")
        check(0.0 <= self.threshold <= 1.0, "threshold", self.threshold, "must be within [0, 1]")


CONTEXT = ("labels", "journal")  # what the factory reads besides its options


def from_spec(arg: str | None, settings: Mapping[str, Any]) -> Processor:
    """``--classifier keywords``: labels from ``settings["labels"]`` (a path), options from the rest."""
    if arg:
        raise ConfigError(f"the keywords classifier takes no argument (got 'keywords:{arg}'); use --labels")
    options = from_mapping(
        KeywordOptions, {k: v for k, v in settings.items() if k not in CONTEXT}, "classifier"
    )
    path = settings.get("labels")
    if not path:
        raise ConfigError("the keywords classifier needs a labels file: pass --labels labels.yaml")
    return KeywordClassifier(load_labels(path), max_chars=options.max_chars, threshold=options.threshold)
