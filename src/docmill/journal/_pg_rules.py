"""The journal's decisions as pure functions: what resume skips, and how an outcome is recorded.

Kept apart from SQL so every journal backend applies the same rules (see ``journal.base``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from docmill.document import DocumentRef
from docmill.outcome import Outcome, Status

_DONE = frozenset({Status.OK.value, Status.EMPTY.value, Status.DUPLICATE.value})
_FAILURES = frozenset({Status.FAILED, Status.CRASHED})

#: Columns ``resolve`` returns, in order, after (source, path, fingerprint) and before run_id.
ROW_COLUMNS = (
    "sha256",
    "size",
    "mtime_ns",
    "status",
    "label",
    "score",
    "result",
    "error_type",
    "error_message",
    "traceback",
    "retryable",
    "attempts",
    "failures",
    "duplicate_of",
    "worker",
    "started",
    "finished",
)


def unchanged(row: Mapping[str, Any], ref: DocumentRef) -> bool:
    """The file looks as it did when recorded (size and mtime, where both sides know them)."""
    for column, value in (("size", ref.size), ("mtime_ns", ref.mtime_ns)):
        if value is not None and row.get(column) is not None and row[column] != value:
            return False
    return True


def is_settled(row: Mapping[str, Any], ref: DocumentRef, *, retry_failed: bool = False) -> bool:
    """Whether resume skips ``ref`` given its recorded ``row``.

    Done documents are skipped while unchanged; retryable failures and crashes are tried again;
    permanent failures and quarantined documents only with ``retry_failed``.
    """
    if not unchanged(row, ref):
        return False
    status = row["status"]
    if status in _DONE:
        return True
    if status == Status.CRASHED.value or (status == Status.FAILED.value and row.get("retryable")):
        return False
    return not retry_failed


def resolve(
    outcome: Outcome,
    prior_failures: int,
    firsts: MutableMapping[str, tuple[str, Any]],
    quarantine_after: int,
) -> tuple[Outcome, tuple[Any, ...]]:
    """(the outcome as recorded, its row values in ``ROW_COLUMNS`` order).

    ``firsts`` maps sha256 → (first path, result) of documents already done under this
    fingerprint; an ``ok`` document whose content another path already has becomes ``duplicate``
    with that result. Failures count up across runs and end ``quarantined`` at ``quarantine_after``.
    """
    failures = prior_failures
    duplicate_of = None
    final = outcome
    if outcome.status in _FAILURES:
        failures += 1
        if failures >= quarantine_after:
            final = dataclasses.replace(outcome, status=Status.QUARANTINED)
    elif outcome.status is Status.OK and outcome.sha256:
        first = firsts.setdefault(outcome.sha256, (outcome.ref.id, outcome.result))
        if first[0] != outcome.ref.id:
            duplicate_of = first[0]
            final = dataclasses.replace(outcome, status=Status.DUPLICATE, result=first[1])
    return final, _row(final, failures, duplicate_of)


def _row(outcome: Outcome, failures: int, duplicate_of: str | None) -> tuple[Any, ...]:
    result = dict(outcome.result or {})
    error = outcome.error
    return (
        outcome.sha256,
        outcome.ref.size,
        outcome.ref.mtime_ns,
        outcome.status.value,
        result.get("label"),
        result.get("score"),
        json.dumps(result, default=str, sort_keys=True),
        error.type if error else None,
        error.message if error else None,
        error.traceback if error else None,
        bool(error and error.retryable),
        outcome.attempts,
        failures,
        duplicate_of,
        outcome.timings.worker or None,
        outcome.timings.started or None,
        outcome.timings.finished or None,
    )
