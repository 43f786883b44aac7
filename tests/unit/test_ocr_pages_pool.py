"""Pages of one PDF OCRed by the process's OCR pool: same text as one thread, pages in flight at once
and never more than ``ocr_threads`` of them, a failing page fails the document in one line."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest

from docmill.document import Document, DocumentRef
from docmill.errors import ConfigError, ProcessingTimeout
from docmill.processors.extract import ExtractText
from docmill.processors.formats import ocr

WORDS = ("invoice printing press", "nothing but the truth", "quarterly report", "fourth page here")


def _scan(pages: int) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    images = []
    for i in range(pages):
        image = Image.new("L", (1400, 220), 255)
        font = ImageFont.load_default(size=48)
        ImageDraw.Draw(image).text((40, 70), WORDS[i % len(WORDS)], fill=0, font=font)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def _extract(data: bytes, **options: Any) -> Document:
    doc = Document(DocumentRef(id="scan.pdf", uri="scan.pdf"), "sha", content=data)
    return ExtractText(ocr="always", **options).process(doc)


class _FakeTesseract:
    """Stands in for ``ocr.recognize``: counts the pages in flight, waits at a barrier of two."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0
        self.pair = threading.Barrier(2, timeout=10)  # two pages of one document at once, or it breaks
        self.fail_on = fail_on

    def __call__(self, image: Any, settings: ocr.OcrSettings, where: str) -> str:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            if where == f"page {self.fail_on}":
                raise ProcessingTimeout(f"OCR of {where} took over 1 s (ocr_page_seconds)")
            if self.fail_on is None:
                self.pair.wait()
            return f"text of {where}"
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> _FakeTesseract:
    fake = _FakeTesseract()
    monkeypatch.setattr(ocr, "recognize", fake)
    return fake


def test_pages_are_in_flight_together_never_more_than_the_threads(fake: _FakeTesseract) -> None:
    doc = _extract(_scan(6), ocr_threads=2)
    assert doc.text == "\f".join(f"text of page {i}" for i in range(1, 7))  # in page order
    assert fake.calls == 6 and fake.most == 2 and doc.metadata["pages_ocr"] == 6


def test_a_failing_page_fails_the_document_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTesseract(fail_on=2)
    monkeypatch.setattr(ocr, "recognize", fake)
    with pytest.raises(ProcessingTimeout, match="OCR of page 2 took over 1 s") as caught:
        _extract(_scan(8), ocr_threads=3)
    assert "\n" not in str(caught.value) and fake.calls < 8  # the pages not started were dropped


def test_ocr_threads_is_checked_before_any_work() -> None:
    with pytest.raises(ConfigError, match="ocr_threads"):
        ExtractText(ocr_threads=-1)


def test_the_pool_reads_what_one_thread_reads() -> None:
    if not ocr.tesseract_available():
        pytest.skip("Tesseract not installed (apt-get install tesseract-ocr; pip install 'docmill[ocr]')")
    data = _scan(4)
    alone, pooled = _extract(data, ocr_threads=1), _extract(data, ocr_threads=3)
    assert pooled.text == alone.text and "truth" in (alone.text or "")
    assert pooled.metadata["pages_ocr"] == alone.metadata["pages_ocr"] == 4
