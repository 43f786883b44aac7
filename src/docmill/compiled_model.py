"""One-document prediction for a fitted ``docmill train`` pipeline, without scikit-learn per call.

scikit-learn's ``decision_function([text])`` validates its input, builds a sparse matrix per block,
stacks them and multiplies: about 7 ms per man page, most of it overhead for a single row. At load
time :func:`compile_model` takes out what prediction needs (vocabularies, idf, the citation index,
the linear model's ``coef_`` split by block) and each call then only counts the document's n-grams,
weighs the ones in the vocabulary and sums their rows of ``coef_``. Decision values equal the
pipeline's to floating-point rounding (``tests/unit/test_classify_model_fast.py`` checks labels and
scores on held-out documents); a pipeline with parts this module does not know is left to scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from docmill.features import Blocks, Citations, citation_row

Vector = np.ndarray[Any, np.dtype[np.float64]]
Array = np.ndarray[Any, Any]  # integer codes and columns
Part = Callable[[str], Vector]


class CompiledModel:
    """``decision(text)`` = the pipeline's decision values for one document (shape: classes)."""

    def __init__(self, parts: Sequence[Part], intercept: Vector, classes: Sequence[str]) -> None:
        self.parts = tuple(parts)
        self.intercept = intercept
        self.classes_ = list(classes)

    def decision(self, text: str) -> Vector:
        total = self.intercept.copy()
        for part in self.parts:
            total += part(text)
        return total


def compile_model(pipeline: Any) -> CompiledModel | None:
    """A fast equivalent of ``pipeline`` (features → linear model), or None if it has unknown parts."""
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        return None
    features, linear = steps[0][1], steps[1][1]
    coef, intercept = getattr(linear, "coef_", None), getattr(linear, "intercept_", None)
    if not isinstance(coef, np.ndarray) or not isinstance(intercept, np.ndarray):
        return None
    blocks = [b for _, b in features.blocks] if isinstance(features, Blocks) else [features]
    widths = [_width(block) for block in blocks]
    if None in widths or sum(w or 0 for w in widths) != coef.shape[1]:
        return None
    weights = np.ascontiguousarray(coef.T, dtype=np.float64)
    ends = np.cumsum([w or 0 for w in widths])
    parts = [_part(b, weights[end - (w or 0) : end]) for b, w, end in zip(blocks, widths, ends, strict=True)]
    return CompiledModel(parts, intercept.astype(np.float64), [str(c) for c in linear.classes_])


def _width(block: Any) -> int | None:
    if isinstance(block, Citations):
        return Citations.WIDTH
    if TfidfPart.supports(block):
        return len(block.vocabulary_)
    return None


def _part(block: Any, weights: Vector) -> Part:
    return CitationsPart(block, weights) if isinstance(block, Citations) else TfidfPart(block, weights)


class TfidfPart:
    """A fitted word-analyzer ``TfidfVectorizer`` applied to one text, times its rows of ``coef_.T``.

    N-grams are never joined into strings: each token becomes an integer (its index among the words
    of the vocabulary), an n-gram the integer ``((t1 * T) + t2) * T …``, looked up with numpy in the
    sorted codes of the vocabulary's n-grams.
    """

    def __init__(self, vectorizer: Any, weights: Vector) -> None:
        self.preprocess = vectorizer.build_preprocessor()
        self.tokenize = vectorizer.build_tokenizer()
        self.sizes = range(vectorizer.ngram_range[0], vectorizer.ngram_range[1] + 1)
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.idf: Vector | None = vectorizer.idf_ if vectorizer.use_idf else None
        self.l2 = vectorizer.norm == "l2"
        self.weights = weights
        self._index(vectorizer.vocabulary_)

    def _index(self, vocabulary: dict[str, int]) -> None:
        grams = [(key.split(" "), column) for key, column in vocabulary.items()]
        self.token_ids = {t: i for i, t in enumerate(sorted({t for parts, _ in grams for t in parts}))}
        self.base = max(len(self.token_ids), 1)
        codes = np.array([self._code([self.token_ids[t] for t in p]) for p, _ in grams], dtype=np.int64)
        order = np.argsort(codes)
        self.codes, self.columns = codes[order], np.array([c for _, c in grams], dtype=np.intp)[order]

    def _code(self, ids: Sequence[int]) -> int:
        code = 0
        for i in ids:
            code = code * self.base + i
        return code * (self.sizes.stop + 1) + len(ids)  # the size too: a 1-gram never equals a 2-gram

    @staticmethod
    def supports(vectorizer: Any) -> bool:
        """Word n-grams of space-free tokens, no stop words, counts, l2 or no norm: what docmill trains."""
        return (
            type(vectorizer).__name__ == "TfidfVectorizer"
            and vectorizer.analyzer == "word"
            and vectorizer.input == "content"
            and vectorizer.dtype == np.float64
            and vectorizer.tokenizer is None
            and vectorizer.token_pattern in _SPACE_FREE_PATTERNS
            and vectorizer.get_stop_words() is None
            and not vectorizer.binary
            and vectorizer.norm in ("l2", None)
            and hasattr(vectorizer, "vocabulary_")
            and vectorizer.ngram_range[1] <= 3  # n-gram codes fit in int64
            and len(vectorizer.vocabulary_) ** vectorizer.ngram_range[1] < 2**55
        )

    def __call__(self, text: str) -> Vector:
        codes, counts = self._counts(text)
        at = np.searchsorted(self.codes, codes).clip(max=len(self.codes) - 1)
        known = self.codes[at] == codes
        if not known.any():
            return np.zeros(self.weights.shape[1])
        columns = self.columns[at[known]]
        weighed: Vector = self._weigh(counts[known].astype(np.float64), columns) @ self.weights[columns]
        return weighed

    def _counts(self, text: str) -> tuple[Array, Array]:
        """The distinct n-gram codes of the text (sorted) and how often each occurs."""
        tokens = self.tokenize(self.preprocess(text))
        ids = np.fromiter(map(self.token_ids.get, tokens, _MISSING), dtype=np.int64, count=len(tokens))
        codes = [self._codes(ids, n) for n in self.sizes if n <= len(ids)]
        if not codes:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(codes), return_counts=True)

    def _codes(self, ids: Array, n: int) -> Array:
        windows = [ids[k : len(ids) - n + 1 + k] for k in range(n)]
        code = windows[0].copy()
        for window in windows[1:]:
            code = code * self.base + window
        known = np.logical_and.reduce([w >= 0 for w in windows])
        return (code * (self.sizes.stop + 1) + n)[known]

    def _weigh(self, tf: Vector, columns: Array) -> Vector:
        if self.sublinear:
            np.log(tf, tf)
            tf += 1.0
        if self.idf is not None:
            tf *= self.idf[columns]
        if self.l2:
            tf /= np.sqrt(np.dot(tf, tf))
        return tf


_SPACE_FREE_PATTERNS = (r"(?u)\b\w\w+\b", r"\S+")
_MISSING = repeat(-1)


class CitationsPart:
    """The fitted :class:`Citations` block's row for one text, times its rows of ``coef_.T``."""

    def __init__(self, block: Citations, weights: Vector) -> None:
        self.index = block.index_
        self.weights = weights

    def __call__(self, text: str) -> Vector:
        row = np.array(citation_row(text, self.index, exclude_own=False), dtype=np.float64)
        return row @ self.weights
