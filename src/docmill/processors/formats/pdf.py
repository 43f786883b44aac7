"""PDF: the text layer, page by page, with pypdfium2 (PDFium; Apache-2.0/BSD).

Guards: ``max_pages`` (checked before any page is read), the cooperative deadline (checked between
pages), ``max_chars`` (stops reading pages once enough text is in hand). Every PDFium object is
closed deterministically, so a worker's memory does not grow with the documents it has seen.
A page without a text layer (a scan) yields no text; a document with none at all ends ``empty``.
With OCR on (``limits.ocr``), a page whose text layer is missing or thinner than ``ocr_min_chars``
is rendered (``page.render(scale=dpi / 72)``, greyscale) and read by Tesseract instead; pages with
a text layer keep it, as OCRmyPDF does. The pixel cap is checked from the page size, before rendering.

PDFium is not thread-safe, not even across different documents: every call into it happens under
one process-wide lock. Threads therefore read PDFs one at a time; processes read them in parallel.
Tesseract is not PDFium: a page is rendered under the lock and OCRed outside it, so threads OCR
pages in parallel (tesserocr releases the GIL while it recognises).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docmill.errors import CorruptDocument, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Deadline, Extracted, Limits, ocr

_PDFIUM = threading.Lock()  # PDFium must never be entered by two threads at once


def _reset_lock() -> None:
    global _PDFIUM
    _PDFIUM = threading.Lock()  # a child forked while a parent thread held it would wait forever


os.register_at_fork(after_in_child=_reset_lock)


def read_pdf(data: bytes, limits: Limits) -> Extracted:
    """A PDF's text layer; pages separated by form feeds."""
    with _PDFIUM, _open(data) as pdf:
        deadline = limits.timer()  # started once the lock is ours: waiting is not extracting
        pages = len(pdf)
        if pages > limits.max_pages:
            raise ResourceLimitExceeded(
                f"PDF has {pages:,} pages; the limit is {limits.max_pages:,} (max_pages)"
            )
        parts, truncated, ocred = _read_pages(pdf, pages, limits, deadline)
    text = "\f".join(parts).replace("\r\n", "\n").replace("\x00", "")
    # PDFium marks a word hyphenated across lines with U+FFFE and drops the line break: "speci\ufffefied".
    text = text.replace("\ufffe", "")
    pages_ocr = None if limits.ocr is None else ocred
    return Extracted(text[: limits.max_chars], truncated=truncated, pages=pages, pages_ocr=pages_ocr)


@contextmanager
def _open(data: bytes) -> Iterator[Any]:
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise UnsupportedDocument("PDF support needs pypdfium2: pip install 'docmill[pdf]'") from exc
    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:  # PdfiumError, or anything else the binding raises on bad input
        raise _translate(exc) from exc
    try:
        yield pdf
    finally:
        pdf.close()


def _translate(exc: Exception) -> CorruptDocument:
    message = str(exc)
    if "password" in message.lower():
        return CorruptDocument("encrypted PDF: needs a password")
    reason = message.split("PDFium:")[-1].strip(" ().") if "PDFium:" in message else message
    return CorruptDocument(f"corrupt PDF: {reason.lower() or 'unreadable'}")


def _read_pages(pdf: Any, pages: int, limits: Limits, deadline: Deadline) -> tuple[list[str], bool, int]:
    """The pages' texts, whether ``max_chars`` cut them short, and how many pages were OCRed."""
    parts: list[str] = []
    total = ocred = 0
    for index in range(pages):
        deadline.check(f"page {index + 1} of {pages}")
        if total >= limits.max_chars:
            return parts, True, ocred
        text = _page_text(pdf, index)
        if limits.ocr is not None and limits.ocr.needs_ocr(text):
            text = _ocr_page(pdf, index, limits.ocr) or text
            ocred += 1
        parts.append(text)
        total += len(parts[-1]) + 1
    return parts, total - 1 > limits.max_chars, ocred


def _ocr_page(pdf: Any, index: int, settings: ocr.OcrSettings) -> str:
    """Page ``index`` rendered at ``settings.dpi`` and read by Tesseract (the pixel cap first)."""
    where = f"page {index + 1}"
    page = bitmap = None
    try:
        page = pdf[index]
        scale = settings.dpi / 72
        width, height = page.get_size()
        ocr.check_pixels(width * scale, height * scale, settings, where)
        bitmap = _render(page, scale, where)
        image = bitmap.to_pil()  # shares the bitmap's memory: the bitmap is closed after OCR
        with _lock_released():
            return ocr.recognize(image, settings, where).strip()
    finally:
        if bitmap is not None:
            bitmap.close()
        if page is not None:
            page.close()


@contextmanager
def _lock_released() -> Iterator[None]:
    """Let other threads into PDFium while this one runs Tesseract (the caller holds the lock)."""
    lock = _PDFIUM
    lock.release()
    try:
        yield
    finally:
        lock.acquire()


def _render(page: Any, scale: float, where: str) -> Any:
    try:
        return page.render(scale=scale, grayscale=True)
    except Exception as exc:  # PdfiumError on a broken content or image stream
        raise CorruptDocument(f"corrupt PDF: {where} cannot be rendered ({exc})") from exc


def _page_text(pdf: Any, index: int) -> str:
    page = textpage = None
    try:
        page = pdf[index]
        textpage = page.get_textpage()
        return str(textpage.get_text_range())
    except Exception as exc:  # PdfiumError, or anything else the binding raises on a bad page
        raise CorruptDocument(f"corrupt PDF: page {index + 1} unreadable ({exc})") from exc
    finally:
        if textpage is not None:
            textpage.close()
        if page is not None:
            page.close()
