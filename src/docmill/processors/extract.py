"""``ExtractText``: a document's bytes → its text, whatever the format, safely.

The format is sniffed from magic bytes first and the file extension second (any case; files without
an extension work): PDF, DOCX, HTML, Markdown, plain text. Recognisably binary data (executables,
archives, images) is refused with UnsupportedDocument. Guards, all recorded in ``config()`` so that
changing them changes the pipeline fingerprint:

=====================  ============  =====================================================
guard                  default       when it trips
=====================  ============  =====================================================
``max_pages``          2,000         a longer PDF → ResourceLimitExceeded
``max_inflated_bytes`` 256 MiB       a DOCX inflating past it → ResourceLimitExceeded
``max_chars``          1,000,000     text is cut there; metadata ``truncated`` is True
``deadline``           None          seconds; checked between PDF pages / DOCX chunks →
                                     ProcessingTimeout
``ocr_page_seconds``   60            one page's OCR → ProcessingTimeout
``ocr_max_pixels``     60,000,000    a page (rendered at ``ocr_dpi``) or image frame larger
                                     → ResourceLimitExceeded, before any pixel is decoded
=====================  ============  =====================================================

OCR (``ocr``: ``auto`` | ``always`` | ``never``; see docs/extraction.md): ``auto``, the default, OCRs
the PDF pages whose text layer has fewer than ``ocr_min_chars`` (20) non-blank characters, and
reads images (PNG, JPEG, TIFF), when Tesseract is installed; without it ``auto`` is ``never``.
``always`` OCRs every page whatever its text layer, and is a MissingDependencyError (exit 2) without
Tesseract. ``ocr_lang`` (``eng+deu``) and ``ocr_dpi`` (200) say how; ``ocr_threads`` (1; 0: one per
usable core) how many pages of a PDF are OCRed at once. Metadata ``pages_ocr`` counts the pages OCRed.
``split_pages`` (0: never, the default; 4 is a good value) splits a scanned PDF of more pages than
that into parts of that many pages, which the run's workers extract apart and the runner joins
(``docmill.page_split``); neither it nor ``ocr_threads`` enters the fingerprint, since the text is the same.

Metadata added: ``format`` (pdf, docx, html, md, txt), ``truncated``, ``pages`` (PDF) and
``encoding`` (text and HTML). The raw bytes are dropped once the text is out, so later stages (and
the staged strategy's hand-off between processes) carry only text.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.document import Document
from docmill.errors import UnsupportedDocument
from docmill.processors.base import Processor
from docmill.processors.formats import Extracted, Limits, cap
from docmill.processors.formats import ocr as ocr_
from docmill.processors.formats.docx import read_docx
from docmill.processors.formats.html import read_html
from docmill.processors.formats.images import read_image
from docmill.processors.formats.pdf import read_pdf
from docmill.processors.formats.sniff import BY_EXTENSION, sniff
from docmill.processors.formats.text import read_markdown, read_text
from docmill.settings import check

Reader = Callable[[bytes, Limits], Extracted]

READERS: dict[str, Reader] = {
    "pdf": read_pdf,
    "docx": read_docx,
    "html": read_html,
    "md": read_markdown,
    "txt": read_text,
    "image": read_image,
}
_LIBRARIES = ("pypdfium2", "selectolax", "charset-normalizer")

MAX_PAGES = 2_000
MAX_INFLATED_BYTES = 256 * 1024 * 1024
MAX_CHARS = 1_000_000
# Off by default: to split, the parent opens each local PDF's page tree and first page with PDFium,
# outside the workers that protect it from a hostile file. 4 when on (benchmarks/bench_ocr_split.py:
# a 48-page scan in parts of 16 left a tail, in parts of 4 none).
SPLIT_PAGES = 0
_OCR_FIELDS = (
    "ocr", "ocr_lang", "ocr_dpi", "ocr_page_seconds", "ocr_min_chars", "ocr_max_pixels", "ocr_threads"
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractOptions:
    """The ``extract:`` section: the guards of the table above (``deadline`` in seconds or None)."""

    max_pages: int = MAX_PAGES
    max_inflated_bytes: int = MAX_INFLATED_BYTES
    max_chars: int = MAX_CHARS
    deadline: float | None = None
    ocr: str = "auto"
    ocr_lang: str = "eng"
    ocr_dpi: int = 200
    ocr_page_seconds: float = 60.0
    ocr_min_chars: int = 20
    ocr_max_pixels: int = 60_000_000
    ocr_threads: int = 1  # pages of one PDF OCRed at once; 0: one per usable core
    split_pages: int = SPLIT_PAGES  # a longer scan is extracted in parts of this many pages; 0: never

    def __post_init__(self) -> None:
        for name in ("max_pages", "max_inflated_bytes", "max_chars", "ocr_dpi", "ocr_max_pixels"):
            value = getattr(self, name)
            check(_is_number(value, int) and value >= 1, name, value, "must be a whole number >= 1")
        for name in ("ocr_threads", "split_pages"):
            value = getattr(self, name)
            check(_is_number(value, int) and value >= 0, name, value, "must be a whole number >= 0")
        ok = self.deadline is None or (_is_number(self.deadline, (int, float)) and self.deadline > 0)
        check(ok, "deadline", self.deadline, "must be a positive number of seconds")
        seconds = self.ocr_page_seconds
        check(_is_number(seconds, (int, float)) and seconds > 0, "ocr_page_seconds", seconds, "must be > 0")
        check(self.ocr in ocr_.MODES, "ocr", self.ocr, f"must be one of {', '.join(ocr_.MODES)}")
        check(
            _is_number(self.ocr_min_chars, int) and self.ocr_min_chars >= 0,
            "ocr_min_chars",
            self.ocr_min_chars,
            "must be >= 0",
        )
        lang_ok = isinstance(self.ocr_lang, str) and all(
            part.isidentifier() for part in self.ocr_lang.split("+")
        )
        check(
            lang_ok, "ocr_lang", self.ocr_lang, "must be Tesseract language codes joined by +, e.g. eng+deu"
        )

    def ocr_settings(self) -> ocr_.OcrSettings | None:
        """The OCR to run, or None when it is off (``never``, or ``auto`` without Tesseract)."""
        if self.ocr == "never" or (self.ocr == "auto" and not ocr_.tesseract_available()):
            return None
        ocr_.require(self.ocr_lang)  # ``always`` without Tesseract, or a language not installed
        return ocr_.OcrSettings(
            lang=self.ocr_lang, dpi=self.ocr_dpi, page_seconds=float(self.ocr_page_seconds),
            min_chars=self.ocr_min_chars, max_pixels=self.ocr_max_pixels, force=self.ocr == "always",
            threads=self.ocr_threads or len(os.sched_getaffinity(0)),  # the usable cores
        )  # fmt: skip


class ExtractText(Processor):
    """Turn ``doc.content`` (bytes) into ``doc.text``; see the module docstring for the guards."""

    name: ClassVar[str] = "extract"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        *,
        max_pages: int = MAX_PAGES,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
        max_chars: int = MAX_CHARS,
        deadline: float | None = None,
        ocr: str = "auto",
        clock: Clock = SYSTEM_CLOCK,
        **ocr_options: Any,
    ) -> None:
        options = ExtractOptions(
            max_pages=max_pages, max_inflated_bytes=max_inflated_bytes, max_chars=max_chars,
            deadline=deadline, ocr=ocr, **ocr_options,
        )  # validates  # fmt: skip
        self.limits = Limits(
            max_pages, max_inflated_bytes, max_chars, deadline, clock, options.ocr_settings()
        )
        self.split_pages = options.split_pages

    def process(self, doc: Document) -> Document:
        if doc.content is None:
            return self._cap_given_text(doc)
        suffix = PurePosixPath(doc.ref.id or doc.ref.uri).suffix.lower()
        if not doc.content:  # a zero-byte file is empty whatever its name says
            kind, result = BY_EXTENSION.get(suffix, "txt"), Extracted("")
        elif (kind := sniff(doc.content, suffix, images=self.limits.ocr is not None)) == "docx":
            result = read_docx(doc.content, self.limits, named_docx=suffix == ".docx")
        elif kind == "pdf" and doc.ref.pages is not None:  # one part of a split PDF
            result = read_pdf(doc.content, self.limits, doc.ref.pages)
        else:
            result = READERS[kind](doc.content, self.limits)
        return doc.evolve(content=None, text=result.text).with_metadata(**_metadata(kind, result))

    def _cap_given_text(self, doc: Document) -> Document:
        if doc.text is None:
            raise UnsupportedDocument("the document has neither content nor text")
        text, truncated = cap(doc.text.replace("\x00", ""), self.limits.max_chars)
        kind = doc.metadata.get("format", "txt")
        return doc.evolve(text=text).with_metadata(format=kind, truncated=truncated)

    def config(self) -> Mapping[str, Any]:
        limits = self.limits
        return {
            "max_pages": limits.max_pages,
            "max_inflated_bytes": limits.max_inflated_bytes,
            "max_chars": limits.max_chars,
            "libraries": library_versions(),
            **_ocr_config(limits.ocr),
        }

    @classmethod
    def from_options(cls, options: ExtractOptions, *, clock: Clock = SYSTEM_CLOCK) -> ExtractText:
        """The step the ``extract:`` section describes."""
        fields = ("max_pages", "max_inflated_bytes", "max_chars", "deadline", *_OCR_FIELDS, "split_pages")
        return cls(**{name: getattr(options, name) for name in fields}, clock=clock)

    def __repr__(self) -> str:
        limits = self.limits
        return (
            f"ExtractText(max_pages={limits.max_pages}, max_inflated_bytes={limits.max_inflated_bytes}, "
            f"max_chars={limits.max_chars}, deadline={limits.deadline}, ocr={limits.ocr})"
        )


def _is_number(value: object, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def _metadata(kind: str, result: Extracted) -> dict[str, Any]:
    items: dict[str, Any] = {"format": kind, "truncated": result.truncated}
    if result.pages is not None:
        items["pages"] = result.pages
    if result.pages_ocr is not None:
        items["pages_ocr"] = result.pages_ocr
    if result.encoding is not None:
        items["encoding"] = result.encoding
    return items


def _ocr_config(settings: ocr_.OcrSettings | None) -> dict[str, Any]:
    """OCR's part of the fingerprint: nothing when it is off, so journals without OCR keep theirs."""
    if settings is None:
        return {}
    kept = ("lang", "dpi", "min_chars", "force")
    return {"ocr": {name: getattr(settings, name) for name in kept}, "tesseract": _tesseract_version()}


@functools.cache
def _tesseract_version() -> str:
    import tesserocr

    return str(tesserocr.tesseract_version()).splitlines()[0]


@functools.cache
def library_versions() -> dict[str, str]:
    """Versions of the extraction libraries (they change results, so they enter the fingerprint)."""
    versions: dict[str, str] = {}
    for package in _LIBRARIES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions
