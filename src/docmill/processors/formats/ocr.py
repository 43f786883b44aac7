"""OCR with Tesseract, bound through tesserocr (the C API, one engine kept per worker thread).

Why tesserocr and not pytesseract: pytesseract starts a ``tesseract`` process per call and passes
the image through a temporary file; tesserocr calls libtesseract in-process and reuses the loaded
model. Measured on 8 scanned man-page pages at 150 dpi (2 shared cores): 1.41 s/page with
tesserocr, 5.58 s/page with pytesseract (benchmarks/RESULTS.md). tesserocr's wheels bundle
libtesseract; the language models (``*.traineddata``) come from the system package
(``apt-get install tesseract-ocr``) or ``$TESSDATA_PREFIX``.

With ``threads`` above 1, pages of one PDF are OCRed by a pool of that many threads per process
(tesserocr releases the GIL while it recognises), so a long scan need not hold one core while
others idle at the end of a run; the pool is shared by the documents of a process, which bounds
OCR's memory to ``threads`` rendered pages and engines per process.

Guards: ``max_pixels`` per page (a "scan bomb" is a 100,000 × 100,000 page; refused before any
pixel is decoded) and ``page_seconds`` per page (Tesseract's own cancel monitor). Both raise a
docmill error with a one-line reason.
"""

from __future__ import annotations

import functools
import glob
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from docmill.errors import MissingDependencyError, ProcessingTimeout, ResourceLimitExceeded

MODES = ("auto", "always", "never")
_TESSDATA_GLOBS = (
    "/usr/share/tesseract-ocr/*/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)
_INSTALL = "pip install 'docmill[ocr]' and Tesseract's models (apt-get install tesseract-ocr)"


@dataclass(frozen=True, slots=True)
class OcrSettings:
    """How pages are OCRed: ``force`` OCRs every page, otherwise only pages under ``min_chars``."""

    lang: str = "eng"
    dpi: int = 200
    page_seconds: float = 60.0
    min_chars: int = 20
    max_pixels: int = 60_000_000
    force: bool = False
    threads: int = 1  # pages of one document OCRed at once (a process-wide pool of this size)

    def needs_ocr(self, text: str) -> bool:
        """Whether a page whose text layer is ``text`` must be OCRed (missing or too thin)."""
        return self.force or len("".join(text.split())) < self.min_chars


def tessdata_dir() -> str | None:
    """The folder holding Tesseract's models: ``$TESSDATA_PREFIX`` or the usual system places."""
    given = os.environ.get("TESSDATA_PREFIX")
    candidates = [given] if given else []
    for pattern in _TESSDATA_GLOBS:
        candidates.extend(sorted(glob.glob(pattern), reverse=True))
    for folder in candidates:
        if glob.glob(os.path.join(folder, "*.traineddata")):
            return folder
    return None


def languages() -> list[str]:
    """The installed Tesseract languages (empty when there are none)."""
    folder = tessdata_dir()
    if folder is None:
        return []
    names = glob.glob(os.path.join(folder, "*.traineddata"))
    return sorted(os.path.basename(name).removesuffix(".traineddata") for name in names)


@functools.cache
def tesseract_available() -> bool:
    """Whether OCR can run here: tesserocr importable and at least one language model installed."""
    try:
        import tesserocr  # noqa: F401
    except ImportError:
        return False
    return bool(languages())


def require(lang: str) -> None:
    """Raise MissingDependencyError (one line, exit 2) unless OCR in ``lang`` can run here."""
    if not tesseract_available():
        raise MissingDependencyError("tesserocr", "ocr", message=f"OCR needs Tesseract: {_INSTALL}")
    missing = [part for part in lang.split("+") if part not in languages()]
    if missing:
        raise MissingDependencyError(
            "tesseract-ocr",
            "ocr",
            message=f"OCR language {'+'.join(missing)} is not installed (have: {', '.join(languages())}); "
            f"apt-get install tesseract-ocr-{missing[0]}",
        )


def check_pixels(width: float, height: float, settings: OcrSettings, where: str) -> None:
    """Refuse a page of ``width`` × ``height`` pixels over the cap, before it is decoded."""
    pixels = int(width) * int(height)
    if pixels > settings.max_pixels:
        raise ResourceLimitExceeded(
            f"{where} is {int(width):,} × {int(height):,} px ({pixels / 1e6:,.0f} MP); "
            f"the limit is {settings.max_pixels / 1e6:,.0f} MP (ocr_max_pixels)"
        )


def recognize(image: Any, settings: OcrSettings, where: str) -> str:
    """The text Tesseract reads in a PIL ``image``, within ``settings.page_seconds``."""
    api = _engine(settings.lang)
    api.SetImage(image)
    try:
        if not api.Recognize(timeout=max(1, int(settings.page_seconds * 1000))):
            raise ProcessingTimeout(
                f"OCR of {where} took over {settings.page_seconds:g} s (ocr_page_seconds)"
            )
        return str(api.GetUTF8Text())
    finally:
        api.Clear()


class _Engines(threading.local):
    """One loaded engine per (thread, language): loading a model costs about 0.1-0.5 s."""

    def __init__(self) -> None:
        self.by_lang: dict[str, Any] = {}


_ENGINES = _Engines()


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` OCR threads (each keeps its own engines)."""
    with _POOLS_LOCK:
        found = _POOLS.get(threads)
        if found is None:
            found = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="docmill-ocr")
        return found


def _forget_engines() -> None:
    global _ENGINES, _POOLS_LOCK
    _ENGINES = _Engines()  # a forked child builds its own engines rather than share the parent's
    _POOLS.clear()  # and its own threads: the parent's do not exist in the child
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_engines)


def _engine(lang: str) -> Any:
    api = _ENGINES.by_lang.get(lang)
    if api is None:
        import tesserocr

        api = tesserocr.PyTessBaseAPI(path=tessdata_dir() or "", lang=lang)
        _ENGINES.by_lang[lang] = api
    return api


def frames(image: Any) -> Iterator[Any]:
    """Every frame of a PIL image (the pages of a multi-page TIFF), one at a time."""
    from PIL import ImageSequence

    yield from ImageSequence.Iterator(image)
