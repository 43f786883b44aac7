"""Format readers behind :class:`docmill.processors.extract.ExtractText`.

Each reader is ``read(data: bytes, limits: Limits) -> Extracted`` and raises only docmill errors
(UnsupportedDocument, CorruptDocument, ResourceLimitExceeded, ProcessingTimeout): library exceptions
are translated at this boundary, ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docmill.clock import SYSTEM_CLOCK, Clock
from docmill.errors import ProcessingTimeout

if TYPE_CHECKING:
    from docmill.processors.formats.ocr import OcrSettings


@dataclass(frozen=True, slots=True)
class Limits:
    """The guards every reader honours (defaults in ``docmill.processors.extract``)."""

    max_pages: int
    max_inflated_bytes: int
    max_chars: int
    deadline: float | None = None  # seconds per document, checked between pages
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False)
    ocr: OcrSettings | None = None  # None: OCR is off (pages without text stay empty)

    def timer(self) -> Deadline:
        """A cooperative deadline starting now."""
        return Deadline(self.deadline, self.clock)


class Deadline:
    """Raise ProcessingTimeout from ``check()`` once ``seconds`` have passed since creation."""

    def __init__(self, seconds: float | None, clock: Clock) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock.monotonic()

    def check(self, where: str) -> None:
        if self.seconds is None:
            return
        elapsed = self.clock.monotonic() - self.started
        if elapsed > self.seconds:
            raise ProcessingTimeout(f"extraction took over {self.seconds:g} s ({where})")


@dataclass(frozen=True, slots=True)
class Extracted:
    """A reader's answer: the text (already capped at ``max_chars``) and what to record about it."""

    text: str
    truncated: bool = False
    pages: int | None = None
    pages_ocr: int | None = None  # pages whose text came from OCR (None: OCR was off)
    encoding: str | None = None


def cap(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to ``max_chars`` and whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    return text[:max_chars], True
