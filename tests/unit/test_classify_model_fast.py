"""The compiled one-document predictor gives the scikit-learn pipeline's decisions, labels and scores,
also when loaded from a version-2 model file with numpy only (no scikit-learn or scipy in workers)."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import subprocess
import sys
from pathlib import Path
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

from docmill.errors import ConfigError
from docmill.model.compiled import CompiledModel, compile_model
from docmill.model.features import baseline_pipeline, build_pipeline
from docmill.model.file import read_compiled, read_header, read_model, write_model
from docmill.model.text_features import _REF, references
from docmill.processors.classify_model import ModelClassifier, _best, _Sklearn

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


def fitted_with(factory: Any = build_pipeline) -> tuple[Any, list[str]]:
    texts, labels = texts_and_labels()
    return factory(seed=0).fit(texts[::2], labels[::2]), texts[1::2]


def save(pipeline: Any, path: Path) -> Path:
    return write_model(path, pipeline, {"labels": [str(c) for c in pipeline.classes_], "temperature": 2.0})


@pytest.fixture(scope="module")
def docmill_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[str], Path]:
    pipeline, unseen = fitted_with()
    return pipeline, unseen, save(pipeline, tmp_path_factory.mktemp("m") / "docmill.model")


def test_arrays_loaded_from_the_file_give_the_pipelines_decisions(docmill_model: Any) -> None:
    pipeline, unseen, path = docmill_model
    header, compiled = read_compiled(path)
    assert path.read_bytes().startswith(b"DOCMILL-MODEL 2\n")
    assert header.meta["arrays_bytes"] > 0 and [p["kind"] for p in header.meta["compiled"]["parts"]] == [
        "tfidf",
        "tfidf",
        "tfidf",
        "citations",
    ]
    assert_same(pipeline, compiled, [*unseen, "", "x", "(1)", "no known words", unseen[0] * 30])


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(ngram_range=(2, 3), sublinear_tf=True),
        TfidfVectorizer(ngram_range=(1, 3), token_pattern=r"\S+", use_idf=False),
        TfidfVectorizer(norm=None, lowercase=False),
    ],
)
def test_other_vectorizers_round_trip(vectorizer: TfidfVectorizer, tmp_path: Path) -> None:
    texts, labels = texts_and_labels()
    pipeline = make_pipeline(vectorizer, LinearSVC(random_state=0)).fit(texts, labels)
    assert_same(pipeline, read_compiled(save(pipeline, tmp_path / "m.model"))[1], texts[1::3])


def test_baseline_round_trips(tmp_path: Path) -> None:
    pipeline, unseen = fitted_with(baseline_pipeline)
    assert_same(pipeline, read_compiled(save(pipeline, tmp_path / "m.model"))[1], unseen)


WORKER = """
import sys
from docmill.document import Document, DocumentRef
from docmill.processors.classify_model import ModelClassifier
step = ModelClassifier(sys.argv[1])
step.setup()
doc = Document(DocumentRef("x", "/x"), sha256="0" * 64, text=sys.argv[2])
print(step.process(doc).metadata["label"])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy")))
"""


def test_a_worker_loads_and_classifies_without_sklearn_or_scipy(docmill_model: Any) -> None:
    pipeline, unseen, path = docmill_model
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(path), unseen[0]], capture_output=True, text=True, check=True
    )
    label, imported = done.stdout.splitlines()
    assert label == pipeline.predict(unseen[:1])[0]
    assert imported == "[]"


def test_a_pipeline_that_does_not_compile_is_stored_pickled_only(tmp_path: Path) -> None:
    texts, labels = texts_and_labels(n=8)
    odd = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(2, 3)), LinearSVC(random_state=0))
    path = save(odd.fit(texts, labels), tmp_path / "odd.model")
    header, compiled = read_compiled(path)
    assert compiled is None and header.meta["arrays_bytes"] == 0 and header.meta["compiled"] is None
    step = ModelClassifier(path)
    step.setup()
    assert type(step._model).__name__ == "_Sklearn"


def version_1(pipeline: Any, path: Path) -> Path:
    payload = pickle.dumps(pipeline)
    header = {"labels": list(pipeline.classes_), "payload_sha256": hashlib.sha256(payload).hexdigest()}
    path.write_bytes(b"DOCMILL-MODEL 1\n" + json.dumps(header).encode() + b"\n" + payload)
    return path


def test_version_1_files_are_still_read_and_compiled_at_load(docmill_model: Any, tmp_path: Path) -> None:
    pipeline, unseen, path = docmill_model
    old = version_1(pipeline, tmp_path / "old.model")
    assert read_compiled(old)[1] is None
    step, new = ModelClassifier(old), ModelClassifier(path)
    step.setup()
    new.setup()
    assert type(step._model).__name__ == "CompiledModel"
    for text in unseen[:20]:
        np.testing.assert_allclose(step._model.decision(text), new._model.decision(text), rtol=0, atol=1e-12)
    assert read_model(old)[1].predict(unseen[:5]).tolist() == pipeline.predict(unseen[:5]).tolist()


def rewrite(path: Path, target: Path, **changes: Any) -> Path:
    """A copy with header keys changed and a checksum that matches, as a careful forger would write."""
    raw = path.read_bytes()
    magic, line, payload = raw.split(b"\n", 2)
    meta = {**json.loads(line), **changes}
    meta["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    target.write_bytes(magic + b"\n" + json.dumps(meta).encode() + b"\n" + payload)
    return target


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"arrays_bytes": 10**9}, r"corrupt header \(arrays_bytes"),
        ({"arrays_bytes": "12"}, r"corrupt header \(arrays_bytes"),
        ({"arrays_bytes": 100}, "corrupt compiled model"),
        ({"compiled": {"classes": ["a"], "parts": [{"kind": "svm"}]}}, "corrupt compiled model"),
        ({"compiled": {"classes": ["a"], "parts": [{"kind": "tfidf"}]}}, "corrupt compiled model"),
        ({"compiled": {"parts": []}}, "corrupt compiled model"),
    ],
)
def test_inconsistent_arrays_are_one_line_config_errors(
    docmill_model: Any, tmp_path: Path, changes: dict[str, Any], problem: str
) -> None:
    bad = rewrite(docmill_model[2], tmp_path / "bad.model", **changes)
    with pytest.raises(ConfigError, match=problem) as info:
        ModelClassifier(bad).setup()
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_damage_inside_the_arrays_is_caught_by_the_checksum(docmill_model: Any, tmp_path: Path) -> None:
    raw = bytearray(docmill_model[2].read_bytes())
    at = raw.index(b"\n", raw.index(b"\n") + 1) + 200
    raw[at] ^= 0xFF
    (bad := tmp_path / "bad.model").write_bytes(bytes(raw))
    assert read_header(bad).meta["arrays_bytes"] > 200
    with pytest.raises(ConfigError, match="checksum mismatch"):
        read_compiled(bad)


def test_a_model_pickled_before_the_model_package_still_loads() -> None:
    """Model files name ``docmill.text_features``/``docmill.features``, where that code lived before."""
    import io

    from docmill.model import text_features
    from docmill.model.file import _Unpickler

    old = pickle.dumps(text_features.structure, protocol=0).replace(
        b"docmill.model.text_features", b"docmill.text_features"
    )
    assert b"docmill.text_features" in old
    assert _Unpickler(io.BytesIO(old)).load() is text_features.structure
