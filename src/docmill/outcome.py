"""``Outcome``: the one thing every strategy yields per document, and its parts."""

from __future__ import annotations

import enum
import traceback as tb
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.document import DocumentRef


class Status(enum.StrEnum):
    """A document ends in exactly one of these."""

    OK = "ok"
    EMPTY = "empty"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    CRASHED = "crashed"

    @property
    def is_success(self) -> bool:
        return self in (Status.OK, Status.EMPTY, Status.DUPLICATE)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A picklable description of what went wrong with one document."""

    type: str
    message: str
    traceback: str = ""
    retryable: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe ``exc``; the message is one line, the traceback kept for `docmill failures -v`."""
        message = " ".join(str(exc).split()) or type(exc).__name__
        return cls(
            type=type(exc).__name__,
            message=message[:500],
            traceback="".join(tb.format_exception(exc))[-4000:],
            retryable=bool(getattr(exc, "retryable", False)),
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True, slots=True)
class Timings:
    """When the document was worked on (wall-clock seconds) and by whom."""

    started: float = 0.0
    finished: float = 0.0
    worker: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one document.

    ``result`` holds the classifier's answer and facts worth recording (``label``, ``score``,
    ``classifier``, ``chars``, ``tokens``, ``cost``…); it is JSON-serialisable.
    """

    ref: DocumentRef
    status: Status
    sha256: str | None = None
    result: Mapping[str, Any] | None = None
    error: ErrorInfo | None = None
    attempts: int = 1
    timings: Timings = field(default_factory=Timings)

    @property
    def label(self) -> str | None:
        return None if self.result is None else self.result.get("label")

    @property
    def score(self) -> float | None:
        return None if self.result is None else self.result.get("score")
