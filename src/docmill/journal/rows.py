"""Journal rows both ways, shared by every SQL backend (SQLite, PostgreSQL).

Out: the parameters of the UPSERT (the same 21 document columns in the same order) and DEMOTE
statements. In: records from rows, which both drivers give by column name; JSON columns come back
as text from SQLite and already decoded from PostgreSQL's jsonb.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from docmill.journal.base import DocumentRecord, RunRecord
from docmill.journal.policy import Settled, clean

_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


def document_rows(
    settled: Sequence[Settled], *, run_id: int, source: str, fingerprint: str
) -> list[tuple[Any, ...]]:
    """The UPSERT parameters of a batch, checked storable as UTF-8 once for the whole batch.

    Cleaning is only for undecodable file names, which are rare: one encode of the batch's text
    costs less than one per row, and only a batch that fails it is cleaned row by row.
    """
    rows = [_raw_row(s, run_id, source, fingerprint) for s in settled]
    try:
        "".join([v for row in rows for v in row if isinstance(v, str)]).encode("utf-8")
    except UnicodeEncodeError:
        return [_cleaned_row(row) for row in rows]
    return rows


def document_row(settled: Settled, *, run_id: int, source: str, fingerprint: str) -> tuple[Any, ...]:
    """The UPSERT parameters for one settled outcome."""
    return document_rows([settled], run_id=run_id, source=source, fingerprint=fingerprint)[0]


def _raw_row(settled: Settled, run_id: int, source: str, fingerprint: str) -> tuple[Any, ...]:
    o = settled.outcome
    result = o.result or {}
    error, timings = o.error, o.timings
    return (
        source, o.ref.id, fingerprint, o.sha256, o.ref.size, o.ref.mtime_ns, o.status.value,
        _text(result.get("label")), _number(result.get("score")), _result_json(result),
        error.type if error else None, error.message if error else None, error.traceback if error else None,
        int(bool(error and error.retryable)), o.attempts, settled.failures, settled.duplicate_of,
        timings.worker or None, timings.started or None, timings.finished or None, run_id,
    )  # fmt: skip


def _cleaned_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(clean(v) if isinstance(v, str) else v for v in row)


def demote_row(settled: Settled, source: str, fingerprint: str) -> tuple[Any, ...]:
    """DEMOTE parameters: ``settled.demote`` and its duplicates now point at this document."""
    new = settled.outcome.ref.id
    return (new, new, source, fingerprint, settled.demote, settled.demote)


def _result_json(result: Mapping[str, Any]) -> str:
    if not result:
        return "{}"
    text = _ENCODE(result if isinstance(result, dict) else dict(result))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _ENCODE(_cleaned(result))
    return text


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))
_DOCUMENT_FIELDS = tuple(f.name for f in dataclasses.fields(DocumentRecord))


def run_record(row: Any) -> RunRecord:
    """A RunRecord from a ``runs`` row (a ``sqlite3.Row`` or a psycopg dict row)."""
    fields = {name: row[name] for name in _RUN_FIELDS}
    return RunRecord(**{**fields, "config": _decoded(row["config"]), "stats": _decoded(row["stats"])})


def document_record(row: Any) -> DocumentRecord:
    """A DocumentRecord from a ``documents`` row (a ``sqlite3.Row`` or a psycopg dict row)."""
    fields = {name: row[name] for name in _DOCUMENT_FIELDS}
    return DocumentRecord(**{**fields, "result": _decoded(row["result"])})


def _decoded(value: Any) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(decoded or {})
