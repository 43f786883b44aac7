"""The compiled one-document predictor gives the scikit-learn pipeline's decisions, labels and scores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from docmill.compiled_model import CompiledModel, compile_model
from docmill.features import _REF, baseline_pipeline, build_pipeline, references
from docmill.processors.classify_model import _best, _Sklearn

WORDS = {
    "cmd": "usage options run command prints shell exit status see also",
    "call": "int return value errno system call kernel fd include",
    "lib": "function returns pointer library char const size include",
    "file": "format file configuration lines entries fields comment",
}


def texts_and_labels(n: int = 25, seed: int = 3) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in WORDS.items():
        names = [f"{label}{i}" for i in range(n)]
        for name in names:
            body = " ".join(
                rng.choice(words.split() + ["the", "a", "of"]) for _ in range(rng.randint(5, 120))
            )
            cited = " ".join(f"{rng.choice(names)}({rng.randint(1, 8)})" for _ in range(rng.randint(0, 4)))
            texts.append(f"{name}(1)\n\nNAME\n       {name} - {label} page\n\nDESCRIPTION\n{body}\n{cited}\n")
            labels.append(label)
    return texts, labels


def assert_same(pipeline: Any, compiled: CompiledModel | None, texts: list[str]) -> None:
    assert compiled is not None
    expected = pipeline.decision_function(texts).reshape(len(texts), -1)
    got = np.array([compiled.decision(text) for text in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    classes = [str(c) for c in pipeline.classes_]
    for want, have in zip(expected, got, strict=True):
        (label_a, score_a), (label_b, score_b) = _best(classes, want, 2.0), _best(classes, have, 2.0)
        assert label_a == label_b and round(score_a, 4) == round(score_b, 4)


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, list[str]]:
    texts, labels = texts_and_labels()
    pipeline = build_pipeline(seed=0).fit(texts[::2], labels[::2])
    return pipeline, texts[1::2]


def test_docmill_pipeline_compiles_to_the_same_decisions(fitted: tuple[Any, list[str]]) -> None:
    pipeline, unseen = fitted
    compiled = compile_model(pipeline)
    assert compiled is not None and compiled.classes_ == [str(c) for c in pipeline.classes_]
    assert_same(pipeline, compiled, [*unseen, "", "x", "(1)", "no known words at all", unseen[0] * 30])


def test_baseline_and_binary_models_compile_too() -> None:
    texts, labels = texts_and_labels()
    baseline = baseline_pipeline(seed=0).fit(texts, labels)
    assert_same(baseline, compile_model(baseline), texts[:40])
    two = [t for t, y in zip(texts, labels, strict=True) if y in ("cmd", "call")]
    binary = build_pipeline(seed=0).fit(two, [y for y in labels if y in ("cmd", "call")])
    assert_same(binary, compile_model(binary), two)


def test_other_ngram_ranges_and_token_patterns() -> None:
    texts, labels = texts_and_labels()
    for vectorizer in (
        TfidfVectorizer(ngram_range=(2, 3), sublinear_tf=True),
        TfidfVectorizer(ngram_range=(1, 3), token_pattern=r"\S+", use_idf=False),
        TfidfVectorizer(norm=None, lowercase=False),
    ):
        pipeline = make_pipeline(vectorizer, LinearSVC(random_state=0)).fit(texts, labels)
        assert_same(pipeline, compile_model(pipeline), texts[1::3])


def test_unknown_parts_are_left_to_sklearn() -> None:
    texts, labels = texts_and_labels(n=8)
    odd = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(2, 3)), LinearSVC(random_state=0))
    odd.fit(texts, labels)
    assert compile_model(odd) is None
    three = make_pipeline(TfidfVectorizer(), FunctionTransformer(), LogisticRegression())
    assert compile_model(three.fit(texts, labels)) is None
    fallback = _Sklearn(odd)
    assert _best(fallback.classes_, fallback.decision(texts[0]), 1.0)[0] == odd.predict(texts[:1])[0]


@pytest.mark.parametrize(
    "text",
    [
        "see open(2), close (2) and read(2)",
        "x(1)(2) (3) a.b:c+d@e-f_g(8p) ((5)) -(1) é(7) ½(1) a  (1) tail(1",
        "open(2)close(3)" + "w" * 300 + "(1)",
    ],
)
def test_references_equal_the_regular_expression(text: str) -> None:
    assert references(text) == _REF.findall(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab_1.:+@- ()2\n\té½x", max_size=80))
def test_references_equal_the_regular_expression_on_any_text(text: str) -> None:
    assert references(text) == _REF.findall(text)
