"""SQL text and row conversions of the SQLite journal (kept apart so ``sqlite.py`` reads as logic)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from docmill.journal.base import Query
from docmill.journal.policy import order

BEGIN_RUN = """
INSERT INTO runs (source, fingerprint, strategy, workers, total, config, state, started)
VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
"""
HEARTBEAT = "UPDATE runs SET stats = ?, heartbeat = ?, total = coalesce(?, total) WHERE id = ?"
END_RUN = """
UPDATE runs SET state = ?, finished = ?, stats = ?, heartbeat = ?, total = coalesce(?, total) WHERE id = ?
"""
SCOPE = "SELECT source, fingerprint FROM runs WHERE id = ?"

LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS documents_by_status ON documents (source, fingerprint, status);
"""
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
SELECT sha256, path, result, run_id FROM documents INDEXED BY documents_by_hash
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
SPAN = "SELECT min(started), max(finished), coalesce(sum(pages), 0) FROM documents {where}"
THROUGHPUT = """
SELECT CAST((finished - ?) / ? AS INTEGER) AS bucket, count(*) FROM documents
WHERE run_id = ? AND finished IS NOT NULL GROUP BY bucket
"""


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
    if query.error_type is not None:
        clauses.append("coalesce(error_type, status) = ?")
        params.append(query.error_type)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def order_by(query: Query) -> str:
    """The ORDER BY clause of ``query.order`` (see ``Query``)."""
    return "ORDER BY finished IS NULL, finished DESC, path" if order(query) == "recent" else "ORDER BY path"


def statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (``executescript`` would commit the caller's
    transaction first); a trigger's ``BEGIN … END`` stays whole."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip().rstrip(";")
            pending = ""
    if pending.strip():
        yield pending.strip()
