"""The keywords classifier: whole-word, case-insensitive, sublinear and length-normalised."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import ConfigError, ProcessingError
from docmill.model.labels import LabelSet
from docmill.processors.classify_keywords import KeywordClassifier, KeywordScorer, from_spec
from docmill.processors.registry import build_classifier

LABELS = LabelSet(
    names=("invoice", "letter", "recipe"),
    descriptions={"invoice": "A bill requesting payment.", "recipe": "Cooking instructions."},
    keywords={
        "invoice": ("invoice", "amount due", "VAT"),
        "letter": ("dear", "sincerely", "yours faithfully"),
        "recipe": ("tablespoon", "oven", "bake"),
    },
)


def doc(text: str) -> Document:
    return Document(DocumentRef("a.txt", "file:///a.txt"), sha256="0" * 64, text=text)


def test_picks_the_label_with_most_evidence() -> None:
    scorer = KeywordScorer(LABELS)
    assert scorer.classify("INVOICE no. 4. Amount   due: 30 EUR incl. vat.")[0] == "invoice"
    assert scorer.classify("Dear Sam, thanks. Yours\nfaithfully, Ann")[0] == "letter"
    assert scorer.classify("Bake in the oven; add a tablespoon of salt.")[0] == "recipe"


def test_matches_whole_words_only() -> None:
    scorer = KeywordScorer(LABELS)
    assert scorer.scores("invoices overdue endearing ovens") == [0.0, 0.0, 0.0]
    assert scorer.classify("nothing relevant here") == (None, 0.0)


def test_term_frequency_is_sublinear() -> None:
    scorer = KeywordScorer(LABELS)
    once = scorer.scores("invoice")[0]
    many = scorer.scores(" ".join(["invoice"] * 8))[0]
    assert once < many < 8 * once


def test_length_normalisation_favours_dense_evidence() -> None:
    scorer = KeywordScorer(LABELS)
    short = scorer.classify("invoice amount due")[1]
    long = scorer.classify("invoice amount due " + "filler " * 2000)[1]
    assert 0.0 < long < short < 1.0


def test_description_words_count_at_low_weight() -> None:
    scorer = KeywordScorer(LABELS)
    assert scorer.classify("payment")[0] == "invoice"  # from the description only
    assert scorer.scores("payment")[0] < scorer.scores("invoice")[0]


def test_ties_go_to_the_first_label_in_the_file() -> None:
    assert KeywordScorer(LABELS).classify("invoice dear")[0] == "invoice"


def test_processor_adds_label_score_and_fingerprint() -> None:
    step = KeywordClassifier(LABELS)
    out = step.process(doc("Dear customer, the invoice amount due is below. Sincerely"))
    assert out.metadata["classifier"] == step.fingerprint()
    assert out.metadata["label"] in ("invoice", "letter")
    assert 0.0 < out.metadata["score"] < 1.0


def test_processor_reads_content_when_not_extracted() -> None:
    step = KeywordClassifier(LABELS)
    raw = Document(DocumentRef("a", "file:///a"), sha256="0" * 64, content=b"bake in the oven")
    assert step.process(raw).metadata["label"] == "recipe"


def test_fingerprint_changes_with_labels_and_survives_pickling() -> None:
    step = KeywordClassifier(LABELS)
    other = KeywordClassifier(LabelSet(("invoice", "letter")))
    assert step.fingerprint() != other.fingerprint()
    clone = pickle.loads(pickle.dumps(step))
    assert clone.fingerprint() == step.fingerprint()
    assert clone.process(doc("oven")).metadata["label"] == "recipe"


def test_from_spec_needs_a_labels_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a labels file"):
        from_spec(None, {})
    with pytest.raises(ConfigError, match="not found"):
        from_spec(None, {"labels": str(tmp_path / "missing.yaml")})
    with pytest.raises(ConfigError, match="takes no argument"):
        from_spec("x", {"labels": "l.yaml"})


def test_registry_builds_it(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("labels:\n  a:\n    keywords: [alpha]\n  b:\n    keywords: [beta]\n")
    step = build_classifier("keywords", {"labels": str(path)})
    assert isinstance(step, KeywordClassifier)
    assert step.process(doc("beta beta")).metadata["label"] == "b"


def test_labels_the_example_corpus() -> None:
    from docmill.model.evaluation import read_truth, score
    from docmill.model.labels import load_labels
    from docmill.pipeline import Pipeline
    from docmill.processors.extract import ExtractText
    from docmill.sources.files import DirectorySource

    examples = Path(__file__).resolve().parents[2] / "examples"
    if not (examples / "corpus" / "labels.yaml").is_file():
        pytest.skip("examples/corpus not present")
    source = DirectorySource(examples / "corpus")
    pipeline = Pipeline(ExtractText(), KeywordClassifier(load_labels(examples / "corpus" / "labels.yaml")))
    truth = read_truth(examples / "corpus-labels.csv")
    predicted: dict[str, str | None] = {}
    for ref in (r for r in source if r.id in truth):
        try:
            predicted[ref.id] = pipeline.process(source.load(ref)).metadata.get("label")
        except ProcessingError:  # the corpus holds one damaged file on purpose
            predicted[ref.id] = None
    report = score((truth[path], label) for path, label in predicted.items())
    assert report.n == len(truth) >= 50
    assert report.accuracy >= 0.98  # all but a truncated PDF, which cannot be read
