"""One-document prediction for a fitted ``docmill train`` pipeline, with numpy only.

scikit-learn's ``decision_function([text])`` validates its input, builds a sparse matrix per block,
stacks them and multiplies: about 7 ms per man page, most of it overhead for a single row.
:func:`compile_model` takes out what prediction needs (vocabularies, idf, the citation index, the
linear model's ``coef_`` split by block) and each call then only counts the document's n-grams, weighs
the ones in the vocabulary and sums their rows of ``coef_``. Decision values equal the pipeline's to
floating-point rounding (``tests/unit/test_classify_model_fast.py``); a pipeline with parts this
module does not know is left to scikit-learn.

A compiled model is also plain data: :meth:`CompiledModel.to_arrays` gives a JSON-able spec and named
numpy arrays (model files of version 2 store them), :meth:`CompiledModel.from_arrays` rebuilds it
without importing scikit-learn or scipy. Only :func:`compile_model` needs scikit-learn's objects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, Protocol

import numpy as np

from docmill.model.text_features import CITATION_COLUMNS, PREPROCESSORS, citation_row

Vector = np.ndarray[Any, np.dtype[np.float64]]
Array = np.ndarray[Any, Any]  # integer codes and columns
Arrays = dict[str, Array]


class Part(Protocol):
    """One feature block times its rows of ``coef_.T``."""

    weights: Vector

    def __call__(self, text: str) -> Vector: ...

    def to_arrays(self) -> tuple[dict[str, Any], Arrays]: ...


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

    def to_arrays(self) -> tuple[dict[str, Any], Arrays]:
        """(spec, arrays): the spec names each part's kind and settings, arrays are keyed ``p<i>_…``."""
        specs, arrays = [], {"intercept": self.intercept}
        for i, part in enumerate(self.parts):
            spec, own = part.to_arrays()
            specs.append(spec)
            arrays.update({f"p{i}_{key}": value for key, value in own.items()})
        return {"classes": self.classes_, "parts": specs}, arrays

    @classmethod
    def from_arrays(cls, spec: Mapping[str, Any], arrays: Mapping[str, Array]) -> CompiledModel:
        """The model :meth:`to_arrays` described; KeyError/ValueError/TypeError if they do not fit."""
        parts: list[Part] = []
        for i, part in enumerate(spec["parts"]):
            own = {key[len(f"p{i}_") :]: arrays[key] for key in arrays if key.startswith(f"p{i}_")}
            parts.append(_KINDS[part["kind"]].from_arrays(part, own))
        intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        if any(part.weights.shape[1:] != intercept.shape for part in parts):
            raise ValueError("coef_ rows and intercept of different widths")
        return cls(parts, intercept, [str(c) for c in spec["classes"]])


def compile_model(pipeline: Any) -> CompiledModel | None:
    """A fast equivalent of ``pipeline`` (features → linear model), or None if it has unknown parts."""
    from docmill.model.features import Blocks  # scikit-learn: only where a fitted pipeline exists

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
    from docmill.model.features import Citations

    if isinstance(block, Citations):
        return CITATION_COLUMNS
    if TfidfPart.supports(block):
        return len(block.vocabulary_)
    return None


def _part(block: Any, weights: Vector) -> Part:
    if hasattr(block, "index_"):
        return CitationsPart(block.index_, weights)
    return TfidfPart.from_vectorizer(block, weights)


class TfidfPart:
    """A fitted word-analyzer ``TfidfVectorizer`` applied to one text, times its rows of ``coef_.T``.

    N-grams are never joined into strings: each token becomes an integer (its index among the words
    of the vocabulary), an n-gram the integer ``((t1 * T) + t2) * T …``, looked up with numpy in the
    sorted codes of the vocabulary's n-grams.
    """

    def __init__(
        self, settings: Mapping[str, Any], tokens: Sequence[str], codes: Array, columns: Array
    ) -> None:
        self.settings = dict(settings)
        self.preprocess = _preprocessor(settings["preprocess"])
        self.tokenize = re.compile(settings["token_pattern"]).findall
        self.sizes = range(int(settings["ngram_range"][0]), int(settings["ngram_range"][1]) + 1)
        self.sublinear = bool(settings["sublinear_tf"])
        self.l2 = bool(settings["l2"])
        self.idf: Vector | None = None
        self.weights: Vector = np.zeros((0, 0))
        self.token_ids = {t: i for i, t in enumerate(tokens)}
        self.base = max(len(self.token_ids), 1)
        self.codes, self.columns = codes, columns

    @classmethod
    def from_vectorizer(cls, vectorizer: Any, weights: Vector) -> TfidfPart:
        grams = [(key.split(" "), column) for key, column in vectorizer.vocabulary_.items()]
        tokens = sorted({t for parts, _ in grams for t in parts})
        part = cls(_settings(vectorizer), tokens, np.zeros(0, np.int64), np.zeros(0, np.intp))
        codes = np.array([part._code([part.token_ids[t] for t in p]) for p, _ in grams], dtype=np.int64)
        order = np.argsort(codes)
        part.codes, part.columns = codes[order], np.array([c for _, c in grams], dtype=np.intp)[order]
        part.idf, part.weights = (vectorizer.idf_ if vectorizer.use_idf else None), weights
        return part

    def to_arrays(self) -> tuple[dict[str, Any], Arrays]:
        arrays = {"tokens": _pack(self.token_ids), "codes": self.codes, "columns": self.columns}
        arrays["weights"] = self.weights
        if self.idf is not None:
            arrays["idf"] = self.idf
        return {"kind": "tfidf", **self.settings}, arrays

    @classmethod
    def from_arrays(cls, spec: Mapping[str, Any], arrays: Mapping[str, Array]) -> TfidfPart:
        codes, columns = arrays["codes"].astype(np.int64), arrays["columns"].astype(np.intp)
        part = cls(spec, _unpack(arrays["tokens"]), codes, columns)
        part.weights = np.asarray(arrays["weights"], dtype=np.float64)
        part.idf = np.asarray(arrays["idf"], dtype=np.float64) if "idf" in arrays else None
        if len(codes) != len(columns) or part.weights.ndim != 2:
            raise ValueError("tf-idf arrays of different lengths")
        return part

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
            and _preprocess_name(vectorizer) is not None
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


def _settings(vectorizer: Any) -> dict[str, Any]:
    return {
        "preprocess": _preprocess_name(vectorizer),
        "token_pattern": vectorizer.token_pattern,
        "ngram_range": list(vectorizer.ngram_range),
        "sublinear_tf": bool(vectorizer.sublinear_tf),
        "l2": vectorizer.norm == "l2",
    }


def _preprocess_name(vectorizer: Any) -> str | None:
    """What scikit-learn's ``build_preprocessor()`` does, by name: a docmill function, lower or none."""
    if vectorizer.preprocessor is not None:
        named = [name for name, f in PREPROCESSORS.items() if f is vectorizer.preprocessor]
        return named[0] if named else None
    if vectorizer.strip_accents is not None:
        return None
    return "lower" if vectorizer.lowercase else "none"


def _preprocessor(name: str) -> Callable[[str], str]:
    if name == "lower":
        return str.lower
    if name == "none":
        return str
    return PREPROCESSORS[name]


def _pack(strings: Mapping[str, int] | Sequence[str]) -> Array:
    """Strings without newlines (tokens, names) as one UTF-8 byte array: no pickle in the file."""
    return np.frombuffer("\n".join(strings).encode(), dtype=np.uint8)


def _unpack(packed: Array) -> list[str]:
    text = packed.astype(np.uint8).tobytes().decode()
    return text.split("\n") if text else []


class CitationsPart:
    """The fitted ``Citations`` block's row for one text, times its rows of ``coef_.T``."""

    def __init__(self, index: Counter[tuple[str, str]], weights: Vector) -> None:
        self.index = index
        self.weights = weights

    def __call__(self, text: str) -> Vector:
        row = np.array(citation_row(text, self.index, exclude_own=False), dtype=np.float64)
        return row @ self.weights

    def to_arrays(self) -> tuple[dict[str, Any], Arrays]:
        keys = sorted(self.index)
        sections = np.array([int(section) for _, section in keys], dtype=np.uint8)
        counts = np.array([self.index[key] for key in keys], dtype=np.int64)
        names = _pack([name for name, _ in keys])
        return {"kind": "citations"}, {
            "names": names,
            "sections": sections,
            "counts": counts,
            "weights": self.weights,
        }

    @classmethod
    def from_arrays(cls, spec: Mapping[str, Any], arrays: Mapping[str, Array]) -> CitationsPart:
        names, sections, counts = _unpack(arrays["names"]), arrays["sections"], arrays["counts"]
        if not len(names) == len(sections) == len(counts):
            raise ValueError("citation arrays of different lengths")
        index = Counter({(n, str(s)): int(c) for n, s, c in zip(names, sections, counts, strict=True)})
        return cls(index, np.asarray(arrays["weights"], dtype=np.float64))


_KINDS: dict[str, Any] = {"tfidf": TfidfPart, "citations": CitationsPart}
