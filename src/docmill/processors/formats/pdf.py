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
pages in parallel (tesserocr releases the GIL while it recognises). With ``ocr.threads`` above 1 the
pages of one document go to the process's OCR pool, at most that many at once, so a long scan uses
every core rather than one (``_Pages``).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from docmill.errors import CorruptDocument, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Deadline, Extracted, Limits, ocr

_PDFIUM = threading.Lock()  # PDFium must never be entered by two threads at once


def _reset_lock() -> None:
    global _PDFIUM
    _PDFIUM = threading.Lock()  # a child forked while a parent thread held it would wait forever


os.register_at_fork(after_in_child=_reset_lock)


def read_pdf(data: bytes, limits: Limits, span: tuple[int, int] | None = None) -> Extracted:
    """A PDF's text layer; pages separated by form feeds. ``span`` (first, stop) reads only those
    pages (one part of a PDF split across workers); ``pages`` is still the whole PDF's count."""
    with _PDFIUM, _open(data) as pdf:
        deadline = limits.timer()  # started once the lock is ours: waiting is not extracting
        pages = len(pdf)
        if pages > limits.max_pages:
            raise ResourceLimitExceeded(
                f"PDF has {pages:,} pages; the limit is {limits.max_pages:,} (max_pages)"
            )
        first, stop = span or (0, pages)
        parts, truncated, ocred = _read_pages(pdf, range(first, min(stop, pages)), limits, deadline)
    text = "\f".join(parts).replace("\r\n", "\n").replace("\x00", "")
    # PDFium marks a word hyphenated across lines with U+FFFE and drops the line break: "speci\ufffefied".
    text = text.replace("\ufffe", "")
    pages_ocr = None if limits.ocr is None else ocred
    return Extracted(text[: limits.max_chars], truncated=truncated, pages=pages, pages_ocr=pages_ocr)


@contextmanager
def _open(data: bytes | str) -> Iterator[Any]:
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


def scan_pages(path: str, settings: ocr.OcrSettings) -> int | None:
    """How many pages the PDF at ``path`` has when its first page is to be OCRed (a scan), or None
    (not a PDF PDFium can open, or a text layer). PDFium reads the page tree and the first page only."""
    try:
        with open(path, "rb") as handle:
            if handle.read(5) != b"%PDF-":
                return None
        with _PDFIUM, _open(path) as pdf:  # a path: PDFium reads what it needs, lazily
            pages = len(pdf)
            return pages if pages and settings.needs_ocr(_page_text(pdf, 0)) else None
    except (OSError, CorruptDocument, UnsupportedDocument):
        return None


def _read_pages(pdf: Any, indexes: range, limits: Limits, deadline: Deadline) -> tuple[list[str], bool, int]:
    """The pages' texts, whether ``max_chars`` cut them short, and how many pages were OCRed."""
    reading, pages = _Pages(limits.ocr), len(pdf)
    try:
        for index in indexes:
            deadline.check(f"page {index + 1} of {pages}")
            if reading.chars >= limits.max_chars:
                return reading.texts(), True, reading.ocred
            reading.add(pdf, index)
        parts = reading.texts()
    finally:
        reading.cancel()
    total = sum(len(part) + 1 for part in parts)
    return parts, total - 1 > limits.max_chars, reading.ocred


class _Pages:
    """A document's page texts in order. A page to OCR is rendered here, under PDFium's lock, and
    read by Tesseract outside it: in this thread when ``threads`` is 1, else by the process's OCR
    pool with at most ``threads`` of this document's pages in flight (memory: that many images)."""

    def __init__(self, settings: ocr.OcrSettings | None) -> None:
        self.settings = settings
        self.parts: list[str | Future[str]] = []
        self.in_flight: deque[Future[str]] = deque()
        self.chars = self.ocred = 0  # chars: of the texts known so far

    def add(self, pdf: Any, index: int) -> None:
        text, settings = _page_text(pdf, index), self.settings
        if settings is None or not settings.needs_ocr(text):
            self._known(text)
            return
        self.ocred += 1
        image = _render_image(pdf, index, settings)
        if settings.threads == 1:
            with _lock_released():
                self._known(_recognize(image, settings, f"page {index + 1}", text))
            return
        future = ocr.pool(settings.threads).submit(_recognize, image, settings, f"page {index + 1}", text)
        self.parts.append(future)
        self.in_flight.append(future)
        if len(self.in_flight) >= settings.threads:
            with _lock_released():  # other threads may use PDFium meanwhile
                self.chars += len(self.in_flight.popleft().result()) + 1

    def _known(self, text: str) -> None:
        self.parts.append(text)
        self.chars += len(text) + 1

    def texts(self) -> list[str]:
        """Every page's text, waiting (outside the lock) for the pages still being OCRed."""
        with _lock_released():
            return [part if isinstance(part, str) else part.result() for part in self.parts]

    def cancel(self) -> None:
        """Drop the pages not started yet (after a failure, a deadline or the ``max_chars`` cut)."""
        for future in self.in_flight:
            future.cancel()


def _recognize(image: Any, settings: ocr.OcrSettings, where: str, text_layer: str) -> str:
    """Tesseract's text of a rendered page, or the page's thin text layer when it reads nothing."""
    return ocr.recognize(image, settings, where).strip() or text_layer


def _render_image(pdf: Any, index: int, settings: ocr.OcrSettings) -> Any:
    """Page ``index`` rendered at ``settings.dpi`` as a PIL image of its own (the pixel cap first)."""
    where = f"page {index + 1}"
    page = bitmap = None
    try:
        page = pdf[index]
        scale = settings.dpi / 72
        width, height = page.get_size()
        ocr.check_pixels(width * scale, height * scale, settings, where)
        bitmap = _render(page, scale, where)
        return bitmap.to_pil().copy()  # its own pixels: PDFium's bitmap is closed here, under the lock
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
