"""PDF: the text layer, page by page, with pypdfium2 (PDFium; Apache-2.0/BSD).

Guards: ``max_pages`` (checked before any page is read), the cooperative deadline (checked between
pages), ``max_chars`` (stops reading pages once enough text is in hand). Every PDFium object is
closed deterministically, so a worker's memory does not grow with the documents it has seen.
A page without a text layer (a scan) yields no text; a document with none at all ends ``empty``.

PDFium is not thread-safe, not even across different documents: every call into it happens under
one process-wide lock. Threads therefore read PDFs one at a time; processes read them in parallel.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from docmill.errors import CorruptDocument, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Deadline, Extracted, Limits

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
        parts, truncated = _read_pages(pdf, pages, limits.max_chars, deadline)
    text = "\f".join(parts).replace("\r\n", "\n").replace("\x00", "")
    # PDFium marks a word hyphenated across lines with U+FFFE and drops the line break: "speci\ufffefied".
    text = text.replace("\ufffe", "")
    return Extracted(text[: limits.max_chars], truncated=truncated, pages=pages)


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


def _read_pages(pdf: Any, pages: int, max_chars: int, deadline: Deadline) -> tuple[list[str], bool]:
    parts: list[str] = []
    total = 0
    for index in range(pages):
        deadline.check(f"page {index + 1} of {pages}")
        if total >= max_chars:
            return parts, True
        parts.append(_page_text(pdf, index))
        total += len(parts[-1]) + 1
    return parts, total - 1 > max_chars


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
