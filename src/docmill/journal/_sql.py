"""SQL text and row conversions of the SQLite journal (kept apart so ``sqlite.py`` reads as logic)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from docmill.journal.base import DocumentRecord, Query, RunRecord
from docmill.journal.policy import Settled, clean

BEGIN_RUN = """
INSERT INTO runs (source, fingerprint, strategy, workers, total, config, state, started)
VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
"""
HEARTBEAT = "UPDATE runs SET stats = ?, heartbeat = ?, total = coalesce(?, total) WHERE id = ?"
END_RUN = """
UPDATE runs SET state = ?, finished = ?, stats = ?, heartbeat = ?, total = coalesce(?, total) WHERE id = ?
"""
SCOPE = "SELECT source, fingerprint FROM runs WHERE id = ?"

ANY_RECORDED = "SELECT 1 FROM documents WHERE source = ? AND fingerprint = ? LIMIT 1"
RECORDED = """
SELECT path, status, size, mtime_ns FROM documents
WHERE source = ? AND fingerprint = ? AND path IN ({marks})
"""
FAILURES = """
SELECT path, failures FROM documents
WHERE source = ? AND fingerprint = ? AND path IN ({marks})
"""
FIRSTS = """
SELECT sha256, path, result FROM documents INDEXED BY documents_by_hash
WHERE source = ? AND fingerprint = ? AND status = 'ok' AND sha256 IN ({marks})
ORDER BY path
"""
DEMOTE = """
UPDATE documents SET status = 'duplicate', duplicate_of = ?, result = json_set(result, '$.duplicate_of', ?)
WHERE source = ? AND fingerprint = ? AND (path = ? OR duplicate_of = ?)
"""
_COLUMNS = (
    "source, path, fingerprint, sha256, size, mtime_ns, status, label, score, result, error_type, "
    "error_message, traceback, retryable, attempts, failures, duplicate_of, worker, started, finished, run_id"
)
UPSERT = f"""
INSERT INTO documents ({_COLUMNS}) VALUES ({", ".join("?" * 21)})
ON CONFLICT (source, path, fingerprint) DO UPDATE SET
{", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[3:])}
"""

BY_STATUS = "SELECT status, count(*) FROM documents {where} GROUP BY status ORDER BY status"
BY_LABEL = "SELECT label, count(*) FROM documents {where} GROUP BY label ORDER BY label"
SPAN = "SELECT min(started), max(finished) FROM documents {where}"
THROUGHPUT = """
SELECT CAST((finished - ?) / ? AS INTEGER) AS bucket, count(*) FROM documents
WHERE run_id = ? AND finished IS NOT NULL GROUP BY bucket
"""


_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


def where(query: Query, source: str | None, fingerprint: str | None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (possibly empty) and its parameters for ``query`` within a scope."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("source", source), ("fingerprint", fingerprint), ("label", query.label)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.status:
        clauses.append(f"status IN ({', '.join('?' * len(query.status))})")
        params.extend(query.status)
    if query.path_contains:
        clauses.append("instr(path, ?) > 0")
        params.append(query.path_contains)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def document_row(settled: Settled, *, run_id: int, source: str, fingerprint: str) -> tuple[Any, ...]:
    """The UPSERT parameters for one settled outcome."""
    o = settled.outcome
    result = dict(o.result or {})
    error = o.error
    row = (
        source, o.ref.id, fingerprint, o.sha256, o.ref.size, o.ref.mtime_ns, o.status.value,
        _text(result.get("label")), _number(result.get("score")), _result_json(result),
        error.type if error else None, error.message if error else None, error.traceback if error else None,
        int(bool(error and error.retryable)), o.attempts, settled.failures, settled.duplicate_of,
        o.timings.worker or None, o.timings.started or None, o.timings.finished or None, run_id,
    )  # fmt: skip
    try:  # one check per row; cleaning is only for undecodable file names, which are rare
        "".join(v for v in row if isinstance(v, str)).encode("utf-8")
    except UnicodeEncodeError:
        return tuple(clean(v) if isinstance(v, str) else v for v in row)
    return row


def demote_row(settled: Settled, source: str, fingerprint: str) -> tuple[Any, ...]:
    """DEMOTE parameters: ``settled.demote`` and its duplicates now point at this document."""
    new = settled.outcome.ref.id
    return (new, new, source, fingerprint, settled.demote, settled.demote)


def _result_json(result: dict[str, Any]) -> str:
    text = _ENCODE(result)
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


def document_record(row: sqlite3.Row) -> DocumentRecord:
    return DocumentRecord(
        source=row["source"], path=row["path"], fingerprint=row["fingerprint"], sha256=row["sha256"],
        size=row["size"], status=row["status"], label=row["label"], score=row["score"],
        result=json.loads(row["result"] or "{}"), error_type=row["error_type"],
        error_message=row["error_message"], attempts=row["attempts"], failures=row["failures"],
        duplicate_of=row["duplicate_of"], worker=row["worker"], started=row["started"],
        finished=row["finished"], run_id=row["run_id"],
    )  # fmt: skip


def run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], source=row["source"], fingerprint=row["fingerprint"], strategy=row["strategy"],
        workers=row["workers"], total=row["total"], state=row["state"], started=row["started"],
        finished=row["finished"], heartbeat=row["heartbeat"], config=json.loads(row["config"] or "{}"),
        stats=json.loads(row["stats"] or "{}"),
    )  # fmt: skip
