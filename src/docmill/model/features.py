"""The scikit-learn pipeline of the trained ``model:`` classifier (imported by training only).

Four blocks, concatenated and fed to a linear SVM:

* **words**: tf-idf of word unigrams and bigrams, sublinear tf (``1 + log tf``), min_df 2;
* **structure**: one token per section heading (``h_return_value``), per cross-reference section
  (``ref2`` for ``open(2)``) and ``include`` when C headers are included: the shape of the document;
* **lead**: tf-idf of the first 600 characters (title, NAME line, synopsis), where the kind of document
  is usually stated;
* **citations**: how the *training* corpus cites this document's own names (``renice(1)`` cited by
  other pages says ``renice`` is in section 1), and how the document cites itself.

On the man pages (benchmarks/bench_classify.py --ablation) words alone reach 0.940 CV accuracy and
all four blocks 0.965; the citations block brings most of the gain (docs/classifiers.md).
The text functions live in :mod:`docmill.model.text_features` (no scikit-learn, what workers import) and
are re-exported here: version-1 model files pickled them, and these classes, as ``docmill.model.features.*``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

from docmill.model.text_features import (
    CITATION_COLUMNS,
    LEAD_CHARS,
    citation_row,
    citations,
    lead,
    own_names,
    references,
    structure,
)

# The text functions are re-exported: version-1 model files pickled them from here.
__all__ = [
    "BLOCKS",
    "CITATION_COLUMNS",
    "LEAD_CHARS",
    "Blocks",
    "Citations",
    "baseline_pipeline",
    "build_pipeline",
    "citation_row",
    "citations",
    "lead",
    "own_names",
    "references",
    "structure",
]


class Citations(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """20 columns: the section distribution of the corpus's citations of the page's own names (10),
    and of the page's citations of itself (10).

    ``fit`` indexes the training texts. While fitting, a page's own citations are taken out of the
    index so that training sees what prediction will: only other pages' citations.
    """

    WIDTH = CITATION_COLUMNS

    def fit(self, texts: Sequence[str], y: Any = None) -> Citations:
        self.index_: Counter[tuple[str, str]] = Counter()
        for text in texts:
            self.index_.update(citations(text))
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self._rows(texts, exclude_own=False)

    def fit_transform(
        self, texts: Sequence[str], y: Any = None, **fit_params: Any
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.fit(texts)._rows(texts, exclude_own=True)

    def _rows(self, texts: Sequence[str], *, exclude_own: bool) -> np.ndarray[Any, np.dtype[np.float64]]:
        rows = np.zeros((len(texts), self.WIDTH))
        for i, text in enumerate(texts):
            rows[i] = self._row(text, exclude_own)
        return rows

    def _row(self, text: str, exclude_own: bool) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array(citation_row(text, self.index_, exclude_own=exclude_own), dtype=np.float64)


class Blocks(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Feature blocks side by side (``FeatureUnion`` without joblib: it warns in worker threads)."""

    def __init__(self, blocks: list[tuple[str, Any]]) -> None:
        self.blocks = blocks

    def fit(self, texts: Sequence[str], y: Any = None) -> Blocks:
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None, **fit_params: Any) -> Any:
        return _stack(block.fit_transform(texts) for _, block in self.blocks)

    def transform(self, texts: Sequence[str]) -> Any:
        return _stack(block.transform(texts) for _, block in self.blocks)


def _stack(parts: Iterable[Any]) -> Any:
    return scipy.sparse.hstack([scipy.sparse.csr_matrix(p) for p in parts], format="csr")


def _words() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)


BLOCKS = ("words", "structure", "lead", "citations")


def build_pipeline(*, seed: int = 0, blocks: Sequence[str] = BLOCKS) -> Pipeline:
    """The model ``docmill train`` fits: the feature blocks (all four by default) → LinearSVC."""
    made: dict[str, Callable[[], Any]] = {
        "words": _words,
        "structure": lambda: TfidfVectorizer(sublinear_tf=True, preprocessor=structure, token_pattern=r"\S+"),
        "lead": lambda: TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), preprocessor=lead),
        "citations": Citations,
    }
    features = Blocks([(name, made[name]()) for name in blocks])
    return Pipeline([("features", features), ("svm", LinearSVC(random_state=seed))])


def baseline_pipeline(*, seed: int = 0) -> Pipeline:
    """The naive reference: default tf-idf + LinearSVC (benchmarks compare against it)."""
    return make_pipeline(TfidfVectorizer(), LinearSVC(random_state=seed))
