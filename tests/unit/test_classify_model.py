"""The model file, the model: classifier and the features behind it, on a small synthetic corpus."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
from pathlib import Path

import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import ConfigError
from docmill.model.features import Citations
from docmill.model.file import read_header, read_model
from docmill.model.text_features import own_names, structure
from docmill.model.training import Corpus, fit_temperature, save, train
from docmill.processors.classify_model import ModelClassifier, from_spec, softmax
from docmill.processors.registry import build_classifier

VOCAB = {
    "invoice": "invoice amount due payment total vat customer bill",
    "recipe": "oven bake flour sugar tablespoon stir minutes butter",
    "letter": "dear regards sincerely yours friend wrote hope soon",
}


def corpus(n: int = 20, seed: int = 1) -> Corpus:
    rng = random.Random(seed)
    common = "the a of and with for this that".split()
    rows = []
    for label, words in VOCAB.items():
        for i in range(n):
            text = " ".join(rng.choice(words.split() + common * 2) for _ in range(60))
            rows.append((f"{label}/{i:03d}.txt", text, label))
    rows.sort()
    return Corpus(
        paths=tuple(r[0] for r in rows),
        texts=tuple(r[1] for r in rows),
        labels=tuple(r[2] for r in rows),
        hashes=tuple(str(i) for i in range(len(rows))),
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = corpus()
    path = tmp_path_factory.mktemp("model") / "toy.model"
    save(train(data, holdout=0.25, seed=0), data, path, seed=0)
    return path


def doc(text: str) -> Document:
    return Document(DocumentRef("x.txt", "/x.txt"), sha256="0" * 64, text=text)


def test_holdout_is_stratified_and_scored() -> None:
    data = corpus()
    trained = train(data, holdout=0.25, seed=0)
    assert len(trained.test_paths) == 15 and len(trained.train_paths) == 45
    assert not set(trained.test_paths) & set(trained.train_paths)
    assert {p.split("/")[0] for p in trained.test_paths} == set(VOCAB)
    assert trained.report is not None and trained.report.accuracy == 1.0
    assert trained.temperature > 0


def test_split_refuses_labels_too_rare_to_hold_out() -> None:
    data = corpus()
    lonely = Corpus(data.paths + ("z",), data.texts + ("zzz",), data.labels + ("rare",), data.hashes + ("h",))
    with pytest.raises(ConfigError, match="rare have fewer than 2"):
        train(lonely, holdout=0.2)


@pytest.mark.parametrize("holdout", [-0.1, 1.0, 2])
def test_holdout_out_of_range(holdout: float) -> None:
    with pytest.raises(ConfigError, match=r"--holdout must be in \[0, 1\)"):
        train(corpus(), holdout=holdout)


def test_header_says_what_the_model_is(model_file: Path) -> None:
    header = read_header(model_file)
    assert header.labels == ("invoice", "letter", "recipe")
    assert header.meta["n_train"] == 45 and header.meta["n_holdout"] == 15
    assert header.meta["holdout"]["accuracy"] == 1.0
    assert {"corpus", "sklearn", "created", "docmill", "temperature", "seed"} <= set(header.meta)


def test_classifier_labels_with_a_probability(model_file: Path) -> None:
    step = ModelClassifier(model_file)
    out = step.process(doc("please pay the invoice amount due, vat included, total bill"))
    assert out.metadata["label"] == "invoice"
    assert 1 / 3 < out.metadata["score"] <= 1.0
    assert out.metadata["classifier"] == step.fingerprint()


def test_constructor_is_cheap_and_picklable(model_file: Path) -> None:
    step = ModelClassifier(model_file)
    assert step._model is None  # nothing unpickled until setup()
    step.setup()
    clone = pickle.loads(pickle.dumps(step))
    assert clone._model is None
    assert clone.process(doc("bake the flour and sugar in the oven")).metadata["label"] == "recipe"


def test_fingerprint_follows_the_file_content(model_file: Path, tmp_path: Path) -> None:
    data = corpus(seed=2)
    other = tmp_path / "other.model"
    save(train(data, holdout=0.25, seed=0), data, other, seed=0)
    assert ModelClassifier(model_file).fingerprint() != ModelClassifier(other).fingerprint()
    copy = tmp_path / "copy.model"
    copy.write_bytes(model_file.read_bytes())
    assert ModelClassifier(copy).fingerprint() == ModelClassifier(model_file).fingerprint()


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda b: b"PK\x03\x04 not a model", "not a docmill model"),
        (
            lambda b: b.replace(b"DOCMILL-MODEL 2", b"DOCMILL-MODEL 9", 1),
            "format version 9, this docmill reads versions 1 and 2",
        ),
        (lambda b: b[:-100], "checksum mismatch"),
        (lambda b: b.split(b"\n", 1)[0] + b"\n{not json\n", "corrupt header"),
        (lambda b: b"", "not a docmill model"),
    ],
)
def test_damaged_files_are_one_line_config_errors(model_file: Path, tmp_path: Path, mangle, problem) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.model"
    bad.write_bytes(mangle(model_file.read_bytes()))
    with pytest.raises(ConfigError, match=problem) as info:
        read_model(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_unloadable_payload_names_the_training_sklearn(tmp_path: Path) -> None:
    payload = pickle.dumps(_Unimportable()).replace(b"_Unimportable", b"_Vanished____")
    header = {"labels": ["a"], "sklearn": "0.1", "payload_sha256": hashlib.sha256(payload).hexdigest()}
    path = tmp_path / "m.model"
    path.write_bytes(b"DOCMILL-MODEL 1\n" + json.dumps(header).encode() + b"\n" + payload)
    with pytest.raises(ConfigError, match=r"cannot load \(AttributeError: .*trained with scikit-learn 0.1"):
        read_model(path)


class _Unimportable:
    pass


def test_missing_model_and_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        ModelClassifier(tmp_path / "none.model")
    with pytest.raises(ConfigError, match="needs a model file"):
        from_spec(None, {})


def test_registry_builds_it(model_file: Path) -> None:
    step = build_classifier(f"model:{model_file}", {})
    assert isinstance(step, ModelClassifier)


def test_softmax_and_temperature() -> None:
    assert softmax([1.0, 1.0]) == [0.5, 0.5]
    sharp, soft = softmax([2.0, 0.0], 4.0), softmax([2.0, 0.0], 0.5)
    assert sharp[0] > soft[0] > 0.5
    confident = [[3.0, -3.0]] * 10
    assert fit_temperature(confident, [0] * 10) > fit_temperature([[0.2, -0.2], [0.2, -0.2]], [0, 1])


def test_structure_tokens() -> None:
    text = "NAME\n  ls - list\n\nSYNOPSIS\n  #include <x.h>\n\nSEE ALSO\n  dir(1), stat (2)\n"
    assert structure(text).split() == ["doc", "ref1", "ref2", "h_name", "h_synopsis", "h_see_also", "include"]
    assert "h_return_value" in structure("## Return Value\n\n text\n")


def test_own_names_from_the_name_section_and_title() -> None:
    assert own_names("NAME\n       fts_open, fts_read - traverse\n") == ["fts_open", "fts_read"]
    pdf = "FOO() FOO()\r\nNAME\r\nfoo, bar\u2010\r\nbaz - do it\r\n"
    assert own_names(pdf) == ["foo", "barbaz"]
    toc = "TITLE\n\nNAME\nSYNOPSIS\n\nNAME\n\nrenice - alter priority\n"
    assert own_names(toc) == ["renice", "title"]


def test_citations_learn_from_other_documents_only() -> None:
    texts = ["NAME\n  foo - x\n\nsee bar(8)", "NAME\n  bar - y\n\nsee foo(1), bar(5)"]
    features = Citations().fit_transform(texts)
    assert features[0][1] == 1.0  # the other page cites foo in section 1
    assert features[1][8] == 1.0  # and bar in section 8 …
    assert features[1][5] == 0.0  # … while bar citing itself is not the corpus's word
    assert features[1][15] == 1.0  # but is a feature of its own
    unseen = Citations().fit(texts).transform(["NAME\n  bar - z\n\nsee bar(5)"])
    assert unseen[0][5] == 0.5 and unseen[0][8] == 0.5 and unseen[0][15] == 1.0


def test_a_corpus_too_small_to_learn_from_is_a_config_error() -> None:
    tiny = Corpus(("a", "b", "c", "d"), ("x", "y", "z", "w"), ("p", "p", "q", "q"), ("1", "2", "3", "4"))
    with pytest.raises(ConfigError, match="cannot train on this corpus"):
        train(tiny, holdout=0)
