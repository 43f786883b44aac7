"""Images as documents (PNG, JPEG, TIFF including multi-page TIFF): their text, by OCR.

Read only when OCR is on; otherwise an image is refused as binary data, as before. Each frame is a
page: the page cap (``max_pages``) is checked from the frame count and the pixel cap
(``ocr_max_pixels``) from each frame's header, both before any pixel is decoded, so a scan bomb
costs nothing. A damaged image stream is a CorruptDocument with Pillow's reason in one line.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from docmill.errors import CorruptDocument, MissingDependencyError, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Extracted, Limits, ocr


def read_image(data: bytes, limits: Limits) -> Extracted:
    """The OCRed text of every frame; frames separated by form feeds, like PDF pages."""
    if limits.ocr is None:
        raise UnsupportedDocument("an image, and OCR is off (--ocr auto needs Tesseract)")
    image = _open(data)
    frames = int(getattr(image, "n_frames", 1))
    if frames > limits.max_pages:
        raise ResourceLimitExceeded(
            f"image has {frames:,} pages; the limit is {limits.max_pages:,} (max_pages)"
        )
    deadline = limits.timer()
    parts: list[str] = []
    for index, frame in enumerate(ocr.frames(image)):
        deadline.check(f"page {index + 1} of {frames}")
        parts.append(_frame_text(frame, limits.ocr, f"page {index + 1}"))
    text = "\f".join(parts).replace("\x00", "")
    truncated = len(text) > limits.max_chars
    return Extracted(text[: limits.max_chars], truncated=truncated, pages=frames, pages_ocr=frames)


def _open(data: bytes) -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingDependencyError("Pillow", "ocr") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: docmill applies its own cap
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # far past Pillow's own cap, refused from the header
        raise ResourceLimitExceeded(f"image too large: {_reason(exc).split(', could')[0]}") from exc
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError from the plugins
        raise CorruptDocument(f"corrupt image: {_reason(exc)}") from exc


def _frame_text(frame: Any, settings: ocr.OcrSettings, where: str) -> str:
    ocr.check_pixels(frame.width, frame.height, settings, where)
    try:
        grey = frame.convert("L")  # decodes the pixels: a broken stream fails here
    except Exception as exc:
        raise CorruptDocument(f"corrupt image: {where} cannot be decoded ({_reason(exc)})") from exc
    return ocr.recognize(grey, settings, where).strip()


def _reason(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
