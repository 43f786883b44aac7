"""Text features for the trained ``model:`` classifier (scikit-learn; imported by training and loading).

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
Classes and functions here are pickled by reference into model files: renaming them breaks old models.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

LEAD_CHARS = 600
_REF = re.compile(r"([\w.:+@-]+) ?\((\d)[a-z]*\)")  # what references() finds, written plainly
_SECTION = re.compile(r"\((\d)[a-z]*\)")
_NAME_TAIL = re.compile(r"[\w.:+@-]+\Z")
_HEADING = re.compile(r"^[ \t]{0,2}(?:##[ \t]*)?([A-Z][A-Za-z ]{1,30}?)[ \t]*$", re.M)
_NAME_HEADING = re.compile(r"^[ \t]*(?:##[ \t]*)?NAME[ \t]*$", re.I | re.M)
_NAME_DASH = re.compile(r"\s[-\u2014\u2013\u2010]\s")
_CAPS_LINE = re.compile(r"^[ \t]*[A-Z][A-Z ]{2,}[ \t]*$", re.M)
_SPLIT_WORD = re.compile(r"[\u2010-]\s*\n\s*")


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def structure(text: str) -> str:
    """Tokens describing the document's shape: headings, cross-reference sections, C includes."""
    text = _lines(text)
    markdown = text.lstrip().startswith("##")
    tokens = ["doc"]  # never empty: a corpus without any structure still fits
    tokens.extend(f"ref{section}" for _, section in references(text))
    headings = (h for h in _HEADING.findall(text) if h.isupper() or markdown)
    tokens.extend("h_" + "_".join(h.lower().split()) for h in headings)
    if "#include" in text:
        tokens.append("include")
    return " ".join(tokens)


def lead(text: str) -> str:
    """The opening of the document (title, NAME line, synopsis), lower-cased."""
    return text[:LEAD_CHARS].lower()


def references(text: str) -> list[tuple[str, str]]:
    """(name, section digit) of every ``name(N)`` / ``name (N)``: ``_REF.findall(text)``, 4–30× faster.

    The regular expression tries a name at every word character; this finds the rare ``(N)`` first
    and reads the name backwards from it (a maximal run of name characters, as the greedy ``+`` takes).
    """
    found = []
    for match in _SECTION.finditer(text):
        end = match.start()
        if end and text[end - 1] == " ":
            end -= 1
        start = _name_start(text, end)
        if start < end:
            found.append((text[start:end], match.group(1)))
    return found


def _name_start(text: str, end: int) -> int:
    """Where the run of name characters that ends at ``end`` starts (``end`` if there is none)."""
    window = 64
    while True:
        begin = max(0, end - window)
        tail = _NAME_TAIL.search(text, begin, end)
        if tail is None:
            return end
        if tail.start() > begin or begin == 0:
            return tail.start()
        window *= 4  # the run may go on before the window


def citations(text: str) -> Counter[tuple[str, str]]:
    """(lower-cased name, section digit) for every ``name(N)`` cross-reference in the text."""
    return Counter((name.lower(), section) for name, section in references(text))


def own_names(text: str) -> list[str]:
    """The names a page documents: its NAME entry (before the dash) and its title line."""
    text = _lines(text)
    names = _name_entry(text)
    first = text.strip().split("\n", 1)[0].strip().split(" ")[0].rstrip("()").lower() if text.strip() else ""
    if first and first != "name" and first not in names and len(first) < 60:
        names.append(first)
    return names


def _name_entry(text: str) -> list[str]:
    for match in _NAME_HEADING.finditer(text):
        segment = text[match.end() : match.end() + 600]
        dash = _NAME_DASH.search(segment)
        if dash is None or _CAPS_LINE.search(segment[: dash.start()]):
            continue  # a table of contents, not the NAME section itself
        segment = _SPLIT_WORD.sub("", segment[: dash.start()])
        return [" ".join(n.split()).lower() for n in segment.split(",") if n.strip()][:12]
    return []


class Citations(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """20 columns: the section distribution of the corpus's citations of the page's own names (10),
    and of the page's citations of itself (10).

    ``fit`` indexes the training texts. While fitting, a page's own citations are taken out of the
    index so that training sees what prediction will: only other pages' citations.
    """

    WIDTH = 20

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


def citation_row(text: str, index: Counter[tuple[str, str]], *, exclude_own: bool) -> list[float]:
    """The 20 :class:`Citations` columns of one text, given the corpus's citation ``index``."""
    own = citations(text)
    row = [0.0] * Citations.WIDTH
    for name in own_names(text):
        for digit in range(10):
            key = (name, str(digit))
            row[digit] += index.get(key, 0) - (own.get(key, 0) if exclude_own else 0)
            row[10 + digit] += own.get(key, 0)
    for first in (0, 10):
        total = sum(row[first : first + 10])
        if total > 0:
            row[first : first + 10] = [v / total for v in row[first : first + 10]]
    return row


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
