"""The bundled example corpus: reproducible from its sources, readable, and labelled well enough."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import CorruptDocument
from docmill.model.labels import load_labels
from docmill.processors.classify_keywords import KeywordScorer
from docmill.processors.extract import ExtractText

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORPUS = EXAMPLES / "corpus"


def _make_corpus_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", EXAMPLES / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _truth() -> dict[str, str]:
    with (EXAMPLES / "corpus-labels.csv").open(newline="", encoding="utf-8") as handle:
        return {row["path"]: row["label"] for row in csv.DictReader(handle)}


def _extract(path: str) -> Document:
    data = (CORPUS / path).read_bytes()
    return ExtractText().process(
        Document(DocumentRef(path, path, len(data)), sha256_bytes(data), content=data)
    )


def test_committed_corpus_is_what_the_script_makes(tmp_path: Path) -> None:
    rows = _make_corpus_module().make_corpus(tmp_path / "corpus", tmp_path / "corpus-labels.csv")
    assert len(rows) == 50
    for path, _ in rows:
        assert (tmp_path / "corpus" / path).read_bytes() == (CORPUS / path).read_bytes(), path
    assert (tmp_path / "corpus-labels.csv").read_bytes() == (EXAMPLES / "corpus-labels.csv").read_bytes()


def test_corpus_shape() -> None:
    truth = _truth()
    documents = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} - {"labels.yaml"}
    assert documents == set(truth)
    assert {Path(p).suffix for p in truth} == {".txt", ".md", ".html", ".pdf", ".docx"}
    assert len(set(truth.values())) == 6
    assert len({Path(p).parent for p in truth}) >= 4
    assert sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file()) < 1_000_000
    assert set(truth.values()) == set(load_labels(CORPUS / "labels.yaml").names)


def test_corpus_has_one_exact_duplicate_and_one_broken_file() -> None:
    hashes: dict[str, list[str]] = {}
    for path in _truth():
        hashes.setdefault(sha256_bytes((CORPUS / path).read_bytes()), []).append(path)
    assert sorted(len(paths) for paths in hashes.values())[-2:] == [1, 2]
    with pytest.raises(CorruptDocument, match="corrupt PDF"):
        _extract("inbox/scanned-lease-truncated.pdf")


def test_every_other_document_reads_back_with_its_title() -> None:
    entries = yaml.safe_load((EXAMPLES / "corpus-texts.yaml").read_text(encoding="utf-8"))["documents"]
    for entry in entries:
        doc = _extract(entry["path"])
        assert doc.metadata["format"] == Path(entry["path"]).suffix[1:]
        text = re.sub(r"\s+", " ", doc.text or "")
        assert entry["title"] in text, (entry["path"], text[:120])
        assert "Popular searches" not in text and "dataLayer" not in text  # hidden block, scripts


def test_keywords_classifier_gets_most_of_the_corpus_right() -> None:
    scorer = KeywordScorer(load_labels(CORPUS / "labels.yaml"))
    truth = _truth()
    readable = [path for path in truth if "truncated" not in path]
    right = sum(scorer.classify(_extract(path).text or "")[0] == truth[path] for path in readable)
    assert right / len(readable) >= 0.9
