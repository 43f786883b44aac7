"""OCR with real Tesseract: scanned PDF pages and images become text, bad scans become one-line reasons."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import (
    CorruptDocument,
    MissingDependencyError,
    ProcessingTimeout,
    ResourceLimitExceeded,
    UnsupportedDocument,
)
from docmill.processors.extract import ExtractOptions, ExtractText
from docmill.processors.formats import ocr

WORDS = "Quarterly invoice for the printing press"


@pytest.fixture(scope="module")
def tesseract() -> None:
    if not ocr.tesseract_available():
        pytest.skip("Tesseract not installed (apt-get install tesseract-ocr; pip install 'docmill[ocr]')")


def _page(text: str = WORDS, size: tuple[int, int] = (1400, 220)) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((40, 70), text, fill=0, font=ImageFont.load_default(size=48))
    return image


def _saved(images: list[Any], kind: str) -> bytes:
    buffer = io.BytesIO()
    images[0].save(buffer, kind, save_all=len(images) > 1, append_images=images[1:])
    return buffer.getvalue()


def _extract(data: bytes, name: str, **options: Any) -> Document:
    doc = Document(DocumentRef(id=name, uri=name), "sha", content=data)
    return ExtractText(**options).process(doc)


def _words(text: str | None) -> set[str]:
    return set((text or "").lower().split())


@pytest.mark.parametrize(("kind", "name"), [("PNG", "scan.png"), ("JPEG", "scan.jpg"), ("TIFF", "noext")])
def test_an_image_is_a_document_when_ocr_is_on(tesseract: None, kind: str, name: str) -> None:
    doc = _extract(_saved([_page()], kind), name)
    assert {"invoice", "printing", "press"} <= _words(doc.text)
    assert doc.metadata["format"] == "image" and doc.metadata["pages"] == 1 and doc.metadata["pages_ocr"] == 1


def test_a_multi_page_tiff_is_read_page_by_page(tesseract: None) -> None:
    doc = _extract(_saved([_page("first page here"), _page("second page there")], "TIFF"), "two.tif")
    assert doc.metadata["pages"] == 2 and doc.metadata["pages_ocr"] == 2
    first, second = (doc.text or "").split("\f")
    assert "first" in first.lower() and "second" in second.lower()


def test_an_image_only_pdf_is_ocred_page_by_page(tesseract: None) -> None:
    data = _saved([_page(), _page("nothing but the truth")], "PDF")
    assert (_extract(data, "scan.pdf", ocr="never").text or "").strip() == ""
    doc = _extract(data, "scan.pdf")
    assert doc.metadata["pages"] == 2 and doc.metadata["pages_ocr"] == 2
    assert {"invoice", "truth"} <= _words(doc.text)


def test_pages_with_a_text_layer_keep_it(tesseract: None, manpages: Path) -> None:
    import pypdfium2 as pdfium

    text_pdf = next(iter(sorted(manpages.rglob("*.pdf"))))
    merged = pdfium.PdfDocument(text_pdf.read_bytes())
    merged.import_pages(pdfium.PdfDocument(_saved([_page()], "PDF")), index=1)  # a scan as page 2
    buffer = io.BytesIO()
    merged.save(buffer)
    doc = _extract(buffer.getvalue(), "mixed.pdf")
    assert doc.metadata["pages_ocr"] == 1 and doc.metadata["pages"] == len(merged)
    pages = (doc.text or "").split("\f")
    assert "invoice" in pages[1].lower() and len(pages[0]) > 100
    assert _extract(buffer.getvalue(), "mixed.pdf", ocr="always").metadata["pages_ocr"] == len(merged)


def test_the_thin_text_threshold_counts_non_blank_characters() -> None:
    settings = ocr.OcrSettings(min_chars=5)
    assert settings.needs_ocr("  1 2\n3 ") and not settings.needs_ocr("page 12")
    assert ocr.OcrSettings(force=True).needs_ocr("plenty of text on this page")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` × ``height`` pixels, with one tiny compressed row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_a_scan_bomb_image_is_refused_before_decoding(tesseract: None) -> None:
    with pytest.raises(ResourceLimitExceeded, match=r"image too large: Image size \(10000000000 pixels\)"):
        _extract(_png_header(100_000, 100_000), "bomb.png")  # past Pillow's own cap
    with pytest.raises(ResourceLimitExceeded, match=r"page 1 is 12,000 × 12,000 px \(144 MP\)"):
        _extract(_png_header(12_000, 12_000), "bomb.png")  # under Pillow's cap, over docmill's


def test_a_scan_bomb_pdf_page_is_refused_before_rendering(tesseract: None) -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    pdf.new_page(14_400, 14_400).close()  # 200 × 200 inches
    buffer = io.BytesIO()
    pdf.save(buffer)
    with pytest.raises(ResourceLimitExceeded, match="page 1 is 40,000 × 40,000 px"):
        _extract(buffer.getvalue(), "poster.pdf")


def test_a_corrupt_image_stream_is_one_line(tesseract: None) -> None:
    truncated = _saved([_page()], "PNG")[:200]
    with pytest.raises(CorruptDocument, match="corrupt image") as caught:
        _extract(truncated, "broken.png")
    assert "\n" not in str(caught.value)


def test_an_image_with_too_many_pages_is_refused(tesseract: None) -> None:
    data = _saved([_page("a"), _page("b"), _page("c")], "TIFF")
    with pytest.raises(ResourceLimitExceeded, match="3 pages; the limit is 2"):
        _extract(data, "long.tiff", max_pages=2)


def test_a_page_over_its_time_limit_is_a_timeout(tesseract: None) -> None:
    big = _page(WORDS * 3, size=(3000, 2400))
    with pytest.raises(ProcessingTimeout, match="ocr_page_seconds"):
        _extract(_saved([big], "PNG"), "slow.png", ocr_page_seconds=0.001)


def test_images_stay_refused_when_ocr_is_off() -> None:
    with pytest.raises(UnsupportedDocument, match="PNG image"):
        _extract(_saved([_page()], "PNG"), "scan.png", ocr="never")


def test_always_without_tesseract_is_a_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "tesseract_available", lambda: False)
    with pytest.raises(MissingDependencyError) as caught:
        ExtractText(ocr="always")
    assert caught.value.exit_code == 2 and "apt-get install tesseract-ocr" in str(caught.value)
    assert ExtractText(ocr="auto").limits.ocr is None  # auto quietly means never


def test_a_missing_language_is_named(tesseract: None) -> None:
    with pytest.raises(MissingDependencyError, match="OCR language zzz is not installed"):
        ExtractText(ocr_lang="eng+zzz")


def test_ocr_settings_enter_the_fingerprint_only_when_on(tesseract: None) -> None:
    assert "ocr" not in ExtractText(ocr="never").config()
    assert ExtractText(ocr_dpi=300).config()["ocr"]["dpi"] == 300


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ocr", "sometimes"),
        ("ocr_dpi", 0),
        ("ocr_page_seconds", -1),
        ("ocr_lang", "eng;rm"),
        ("ocr_min_chars", -1),
    ],
)
def test_bad_ocr_settings_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(Exception, match=key):
        ExtractOptions(**{key: value})


def test_progress_speaks_pages_per_second_once_documents_have_pages() -> None:
    from docmill.outcome import Outcome, Status, Timings
    from docmill.progress import Tally
    from docmill.testing import FakeClock

    clock = FakeClock()
    tally = Tally(clock)
    tally.add(Outcome(DocumentRef("a.txt", "u"), Status.OK, "s", {"label": "x"}, timings=Timings(0, 1)))
    clock.advance(2.0)
    assert "pages/s" not in tally.line()
    tally.add(Outcome(DocumentRef("b.pdf", "u"), Status.OK, "s", {"pages": 9}, timings=Timings(0, 1)))
    clock.advance(1.0)
    assert tally.pages_per_second == 3.0 and "3.0 pages/s" in tally.line()


def test_run_stats_and_the_summary_speak_pages_once_documents_have_pages() -> None:
    from docmill.metrics import RunStats
    from docmill.outcome import Outcome, Status
    from docmill.progress.tally import summary_lines

    stats, other = RunStats(), RunStats()
    stats.add(Outcome(DocumentRef("a.txt", "u"), Status.OK, "s", {"label": "x"}))
    stats.wall_seconds = 2.0
    assert stats.as_dict()["pages"] == 0 and "pages" not in summary_lines(stats)[0]
    other.add(Outcome(DocumentRef("b.pdf", "u"), Status.OK, "s", {"pages": 9, "pages_ocr": 9}))
    merged = stats + other
    assert merged.pages == 9 and merged.as_dict()["pages_per_second"] == 4.5
    assert "9 pages, 4.50 pages/s" in summary_lines(merged)[0]


def test_threads_ocr_pdf_pages_and_agree_with_one_thread(tesseract: None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = _saved([_page(), _page("nothing but the truth")], "PDF")
    alone = _extract(data, "one.pdf").text
    with ThreadPoolExecutor(4) as pool:  # PDFium's lock is let go during OCR and taken back
        texts = list(pool.map(lambda i: _extract(data, f"{i}.pdf").text, range(8)))
    assert texts == [alone] * 8
