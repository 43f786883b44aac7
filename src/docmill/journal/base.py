"""The Journal protocol and the records it returns.

The journal is docmill's memory: one row per (source, path, pipeline fingerprint) holding the
document's terminal status, its sha256 and result. The parent process is its only writer and
writes in batched transactions; readers (``status``, ``export``, ``serve``) may run at any time.

Resume: ``pending`` drops refs already recorded with the same fingerprint and unchanged size and
mtime. Failed documents whose error was retryable are tried again on the next run; a document that
failed ``quarantine_after`` times ends ``quarantined`` and is tried again only with
``retry_failed``. De-duplication: a document whose sha256 already has a result under the same
fingerprint is recorded ``duplicate`` with that result and ``duplicate_of`` naming the first path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from docmill.document import DocumentRef
from docmill.outcome import Outcome

SCHEMA_VERSION = 3  # each version after 1 is a step in journal.migrations


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run is: written when it starts."""

    source: str
    fingerprint: str
    strategy: str
    workers: int
    total: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the journal knows it. ``stats`` is the live JSON the runner heartbeats."""

    id: int
    source: str
    fingerprint: str
    strategy: str
    workers: int
    total: int | None
    state: str  # running | done | interrupted | failed
    started: float
    finished: float | None
    heartbeat: float | None
    config: Mapping[str, Any]
    stats: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """One row of the journal: a document's terminal state."""

    source: str
    path: str
    fingerprint: str
    sha256: str | None
    size: int | None
    status: str
    label: str | None
    score: float | None
    result: Mapping[str, Any]
    error_type: str | None
    error_message: str | None
    attempts: int
    failures: int
    duplicate_of: str | None
    worker: str | None
    started: float | None
    finished: float | None
    run_id: int | None
    pages: int | None = None  # PDF pages / image frames (None: a format without pages)
    pages_ocr: int | None = None  # of which OCRed (None: OCR was off)

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True, slots=True)
class Demotion:
    """An earlier ``ok`` row re-recorded as a duplicate of a copy whose path sorts first."""

    path: str
    run_id: int | None


class RecordedBatch(list[Outcome]):
    """What ``Journal.record`` returns: the outcomes as recorded, in order, and ``demoted``, the
    rows already recorded ``ok`` that this batch turned into duplicates (so stats stay exact)."""

    def __init__(self, outcomes: Iterable[Outcome] = (), demoted: Iterable[Demotion] = ()) -> None:
        super().__init__(outcomes)
        self.demoted = tuple(demoted)


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts for ``docmill status`` and the dashboard."""

    total: int
    by_status: Mapping[str, int]
    by_label: Mapping[str, int]
    first_started: float | None
    last_finished: float | None
    pages: int = 0  # PDF pages and image frames of these documents

    @property
    def docs_per_second(self) -> float:
        return self._per_second(self.total)

    @property
    def pages_per_second(self) -> float:
        return self._per_second(self.pages)

    def _per_second(self, count: int) -> float:
        if not self.first_started or not self.last_finished or self.last_finished <= self.first_started:
            return 0.0
        return count / (self.last_finished - self.first_started)


@dataclass(frozen=True, slots=True)
class Query:
    """A bounded, filtered page of documents.

    ``error_type`` matches a failure's exception type, or its status when it has none (a crash).
    ``order`` is ``"path"`` (ascending) or ``"recent"`` (finished, newest first, then path).
    """

    run_id: int | None = None
    source: str | None = None
    fingerprint: str | None = None
    status: Sequence[str] = ()
    label: str | None = None
    path_contains: str | None = None
    error_type: str | None = None
    order: str = "path"
    limit: int = 100
    offset: int = 0


class Journal(Protocol):
    """Storage of outcomes. SQLite (``journal.sqlite``) and PostgreSQL (``journal.postgres``)."""

    def begin_run(self, info: RunInfo) -> int: ...
    def heartbeat(self, run_id: int, stats: Mapping[str, Any]) -> None: ...
    def end_run(self, run_id: int, state: str, stats: Mapping[str, Any]) -> None: ...
    def pending(
        self, refs: Iterable[DocumentRef], *, source: str, fingerprint: str, retry_failed: bool = False
    ) -> Iterator[DocumentRef]: ...
    def record(
        self, outcomes: Sequence[Outcome], *, run_id: int, source: str, fingerprint: str
    ) -> RecordedBatch: ...
    def forget(self, *, source: str, fingerprint: str) -> int: ...
    def runs(self) -> list[RunRecord]: ...
    def run(self, run_id: int) -> RunRecord | None: ...
    def summary(self, run_id: int | None = None) -> Summary: ...
    def documents(self, query: Query) -> list[DocumentRecord]: ...
    def iter_documents(self, query: Query) -> Iterator[DocumentRecord]:
        """Every document matching ``query`` in path order, streamed (limit, offset, order ignored)."""
        ...

    def count(self, query: Query) -> int: ...
    def document(self, path: str, *, run_id: int | None = None) -> DocumentRecord | None: ...
    def throughput(self, run_id: int, *, buckets: int = 60) -> list[tuple[float, int]]: ...
    def close(self) -> None: ...
