"""ExtractText as a processor: dispatch, metadata, guards, fingerprint; and the man-page corpus."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, UnsupportedDocument
from docmill.processors.extract import ExtractText, library_versions


def _doc(name: str, data: bytes) -> Document:
    return Document(DocumentRef(name, f"file:///{name}", len(data)), sha256_bytes(data), content=data)


def test_text_metadata_and_content_dropped() -> None:
    out = ExtractText().process(_doc("notes/a.TXT", b"hello world"))
    assert out.text == "hello world"
    assert out.content is None  # later stages carry text only
    assert dict(out.metadata) == {"format": "txt", "truncated": False, "encoding": "utf-8"}


def test_max_chars_truncates_and_says_so() -> None:
    out = ExtractText(max_chars=5).process(_doc("a.txt", b"abcdefgh"))
    assert (out.text, out.metadata["truncated"]) == ("abcde", True)
    out = ExtractText(max_chars=5).process(_doc("a.md", b"# abcdefgh"))  # the cap applies before markup goes
    assert (out.text, out.metadata["truncated"]) == ("abc", True)


def test_given_text_without_content_is_capped_and_kept() -> None:
    doc = Document(DocumentRef("line-7", "corpus.jsonl"), "0" * 64, text="a\x00bcdef")
    out = ExtractText(max_chars=3).process(doc)
    assert (out.text, out.metadata["format"], out.metadata["truncated"]) == ("abc", "txt", True)


@pytest.mark.parametrize(("name", "fmt"), [("scan.PDF", "pdf"), ("a.docx", "docx"), ("noext", "txt")])
def test_zero_bytes_are_empty_whatever_the_name(name: str, fmt: str) -> None:
    out = ExtractText().process(_doc(name, b""))
    assert out.is_empty
    assert out.metadata["format"] == fmt


def test_neither_content_nor_text_is_unsupported() -> None:
    doc = Document(DocumentRef("x", "x"), "0" * 64)
    with pytest.raises(UnsupportedDocument, match="neither content nor text"):
        ExtractText().process(doc)


def test_zip_with_another_extension_is_unsupported_not_corrupt() -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sheet.xml", "<x/>")
    with pytest.raises(UnsupportedDocument, match="not a DOCX"):
        ExtractText().process(_doc("book.xlsx", buffer.getvalue()))


@pytest.mark.parametrize(
    "options",
    [
        {"max_pages": 0},
        {"max_inflated_bytes": -1},
        {"max_chars": 0},
        {"max_chars": "1000"},  # from a YAML file with quotes
        {"max_pages": 2.5},
        {"max_pages": True},
        {"deadline": 0.0},
        {"deadline": -3.0},
        {"deadline": "30"},
    ],
)
def test_invalid_guards_are_config_errors(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="must be"):
        ExtractText(**options)  # type: ignore[arg-type]


def test_fingerprint_follows_guards_and_library_versions() -> None:
    base = ExtractText()
    config = base.config()
    assert config["max_chars"] == 1_000_000
    assert set(config["libraries"]) == {"pypdfium2", "selectolax", "charset-normalizer"}
    assert all(version != "absent" for version in library_versions().values())
    assert base.fingerprint() == ExtractText().fingerprint()
    assert base.fingerprint() != ExtractText(max_chars=10).fingerprint()
    assert base.fingerprint() != ExtractText(max_pages=10).fingerprint()
    assert base.fingerprint() == ExtractText(deadline=5.0).fingerprint()  # only failures change


def test_pickles_for_worker_processes() -> None:
    processor = pickle.loads(pickle.dumps(ExtractText(max_chars=7, deadline=1.5)))
    assert processor.limits.max_chars == 7
    assert processor.limits.deadline == 1.5
    assert processor.process(_doc("a.txt", b"0123456789")).text == "0123456"


# ------------------------------------------------------------------------------------- man pages

SAMPLE_PER_FORMAT = 8


def _manpage_rows(labels: Path) -> list[dict[str, str]]:
    with labels.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _page_name(row: dict[str, str]) -> str:
    return row["source_page"].rsplit(".", 1)[0]


@pytest.mark.parametrize("fmt", ["txt", "md", "html", "pdf", "docx"])
def test_manpages_of_each_format_read_right(fmt: str, manpages: Path, manpage_labels: Path) -> None:
    rows = [row for row in _manpage_rows(manpage_labels) if row["format"] == fmt][:SAMPLE_PER_FORMAT]
    assert rows, f"no {fmt} man pages"
    extract = ExtractText()
    named = 0
    for row in rows:
        out = extract.process(_doc(row["path"], (manpages / row["path"]).read_bytes()))
        assert out.metadata["format"] == fmt
        text = (out.text or "").lower()
        name = _page_name(row).lower()
        named += name in text or name.replace("_", " ") in text  # aliases (msgop → msgsnd) lack it
        assert "name" in text and len(text) > 100, (row["path"], text[:200])
        assert "\ufffe" not in text and "\x00" not in text  # PDFium's hyphenation mark, NULs
        if fmt in ("html", "docx"):
            assert "</" not in text and "&lt;" not in text, row["path"]  # no markup left
    assert named >= len(rows) * 3 // 4


def test_known_pages_read_right(manpages: Path, manpage_labels: Path) -> None:
    extract = ExtractText()
    by_format: dict[str, dict[str, str]] = {}
    for row in _manpage_rows(manpage_labels):
        by_format.setdefault(row["format"], row)
    pdf = by_format["pdf"]
    out = extract.process(_doc(pdf["path"], (manpages / pdf["path"]).read_bytes()))
    assert out.metadata["pages"] >= 1
    html = by_format["html"]
    out = extract.process(_doc(html["path"], (manpages / html["path"]).read_bytes()))
    assert "margin-top" not in (out.text or "")  # the <style> in <head> is gone
    assert "groff" not in (out.text or "")  # so are comments and generator metadata


def test_whole_manpage_corpus_extracts(manpages: Path, manpage_labels: Path) -> None:
    extract = ExtractText()
    empty, marked = [], []
    for row in _manpage_rows(manpage_labels):
        text = extract.process(_doc(row["path"], (manpages / row["path"]).read_bytes())).text or ""
        if not text.strip():
            empty.append(row["path"])
        if "\ufffe" in text:
            marked.append(row["path"])
    assert (empty, marked) == ([], [])


def test_pdfs_from_many_threads_match_the_sequential_text(manpages: Path, manpage_labels: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pdfs = [row["path"] for row in _manpage_rows(manpage_labels) if row["format"] == "pdf"][:12]
    docs = [_doc(path, (manpages / path).read_bytes()) for path in pdfs]
    extract = ExtractText()
    expected = [extract.process(doc).text for doc in docs]
    with ThreadPoolExecutor(4) as pool:  # PDFium is not thread-safe: ExtractText must serialise it
        for _ in range(3):
            assert list(pool.map(lambda d: extract.process(d).text, docs)) == expected
