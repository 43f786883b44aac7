"""The journal's decisions as pure functions, shared by every backend (SQLite, PostgreSQL).

* ``is_pending``: does a listed document need (re)processing, given what is recorded for it?
* ``settle``: what status does an outcome end in once recorded: ``duplicate`` of an earlier
  identical document, ``quarantined`` after a permanent error or too many failures, or as reported?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.journal.base import Demotion, Query
from docmill.outcome import Outcome, Status

SUCCESS = frozenset({Status.OK.value, Status.EMPTY.value, Status.DUPLICATE.value})
RETRIED = frozenset({Status.FAILED.value, Status.CRASHED.value})
FAILURES = frozenset({Status.FAILED.value, Status.CRASHED.value, Status.QUARANTINED.value})
_OK = Status.OK


class Recorded(NamedTuple):
    """The part of a stored row that ``is_pending`` needs (a tuple: a resume builds one per
    recorded document, and a frozen dataclass costs three times as much to make)."""

    status: str
    size: int | None
    mtime_ns: int | None


@dataclass(frozen=True, slots=True)
class First:
    """The earliest successful document with a given sha256: what a duplicate copies."""

    path: str
    result: Mapping[str, Any]
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """An outcome as recorded, with the bookkeeping the row keeps."""

    outcome: Outcome
    failures: int
    duplicate_of: str | None
    demote: str | None = None  # an earlier "first" that this document replaces (smaller path)
    demote_run: int | None = None  # the run that recorded ``demote``

    @property
    def demotion(self) -> Demotion | None:
        return None if self.demote is None else Demotion(self.demote, self.demote_run)


def clean(text: str) -> str:
    """``text`` made storable as UTF-8: lone surrogates (undecodable file-name bytes) become ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that no file-name byte produced
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    return text


def is_pending(ref: DocumentRef, row: Recorded | None, *, retry_failed: bool) -> bool:
    """Whether ``ref`` must be processed: new, changed on disk, or failed and worth retrying."""
    if row is None or _changed(ref, row):
        return True
    if row.status in SUCCESS:
        return False
    if row.status in RETRIED:
        return True
    return retry_failed  # quarantined: only when asked


def pending_in_batches(
    refs: Iterable[DocumentRef],
    lookup: Callable[[list[DocumentRef]], Mapping[str, Recorded]],
    *,
    retry_failed: bool,
    batch: int = 500,
) -> Iterator[DocumentRef]:
    """The refs that need processing, streamed: ``lookup`` fetches the rows of ``batch`` refs at a time."""
    iterator = iter(refs)
    while chunk := list(islice(iterator, batch)):
        recorded = lookup(chunk)
        for ref in chunk:
            row = recorded.get(clean(ref.id))
            if (
                row is not None
                and row.status in SUCCESS
                and row.size == ref.size
                and row.mtime_ns == ref.mtime_ns
            ):
                continue  # done and unchanged, a resume's common case: checked without a call
            if is_pending(ref, row, retry_failed=retry_failed):
                yield ref


def _changed(ref: DocumentRef, row: Recorded) -> bool:
    if ref.size is not None and ref.size != row.size:
        return True
    return ref.mtime_ns is not None and ref.mtime_ns != row.mtime_ns


def settle(outcome: Outcome, *, failures: int, first: First | None, quarantine_after: int) -> Settled:
    """Decide the recorded status of ``outcome``.

    ``failures`` counts earlier failed attempts of this document under this fingerprint; ``first``
    is an earlier successful document with the same content (another path), if any. Of identical
    documents the one with the smallest path is kept ``ok`` and the others become its duplicates,
    whatever order they finish in: when this one sorts before ``first``, ``demote`` names ``first``,
    which the backend re-records as a duplicate of this one. Every strategy thus records the same.
    """
    status = outcome.status
    if status is _OK and first is None:  # the common case, kept cheap: record() runs it per row
        return Settled(outcome, 0, None)
    if status is Status.OK and first is not None and first.path > outcome.ref.id:
        return Settled(outcome, 0, None, demote=first.path, demote_run=first.run_id)
    if status is Status.OK and first is not None and first.path != outcome.ref.id:
        result = {**unspent(first.result), **spend(outcome.result), "duplicate_of": first.path}
        copy = dataclasses.replace(outcome, status=Status.DUPLICATE, result=result)
        return Settled(copy, 0, first.path)
    if status not in (Status.FAILED, Status.CRASHED):
        return Settled(outcome, 0, None)
    failures += 1
    permanent = status is Status.FAILED and not (outcome.error and outcome.error.retryable)
    if permanent or failures >= quarantine_after:
        return Settled(dataclasses.replace(outcome, status=Status.QUARANTINED), failures, None)
    return Settled(outcome, failures, None)


SPEND_KEYS = ("cost", "tokens_in", "tokens_out", "requests", "cached", "coalesced", "concurrency")
"""What a document's own classification cost. A duplicate keeps its own (a copy in flight together
with its original may have paid for a call too), never its original's: spend is counted once."""


def spend(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The spend keys of ``result``."""
    return {k: v for k, v in (result or {}).items() if k in SPEND_KEYS}


def unspent(result: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` without its spend keys: the answer alone."""
    return {k: v for k, v in result.items() if k not in SPEND_KEYS}


ORDERS = ("path", "recent")


def settle_batch(
    outcomes: Sequence[Outcome],
    *,
    failures: Mapping[str, int],
    firsts: MutableMapping[str, First],
    quarantine_after: int,
    run_id: int,
) -> list[Settled]:
    """Settle a batch in order; an ``ok`` document becomes the first of its hash for the rest."""
    settled = []
    for outcome in outcomes:
        sha = outcome.sha256
        done = settle(
            outcome,
            failures=failures.get(clean(outcome.ref.id), 0) if failures else 0,
            first=firsts.get(sha) if sha else None,
            quarantine_after=quarantine_after,
        )
        if sha and done.outcome.status is _OK:
            firsts[sha] = First(outcome.ref.id, outcome.result or {}, run_id)
        settled.append(done)
    return settled


def order(query: Query) -> str:
    """``query.order``, checked: ``"path"`` or ``"recent"``; anything else is a ConfigError."""
    if query.order not in ORDERS:
        raise ConfigError(f"order must be one of {', '.join(ORDERS)}, got {query.order!r}")
    return query.order
