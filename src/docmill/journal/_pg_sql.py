"""SQL text of the PostgreSQL journal: the schema, every statement, and the clauses built from a Query."""

from __future__ import annotations

from typing import Any

from docmill.journal.base import Query
from docmill.journal.policy import order

SCHEMA = """
CREATE TABLE IF NOT EXISTS docmill_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS docmill_runs (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    fingerprint text NOT NULL,
    strategy text NOT NULL,
    workers integer NOT NULL,
    total bigint,
    state text NOT NULL DEFAULT 'running',
    started double precision NOT NULL,
    finished double precision,
    heartbeat double precision,
    config jsonb NOT NULL DEFAULT '{}',
    stats jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS docmill_documents (
    source text NOT NULL,
    path text NOT NULL,
    fingerprint text NOT NULL,
    sha256 text,
    size bigint,
    mtime_ns bigint,
    status text NOT NULL,
    label text,
    score double precision,
    result jsonb NOT NULL DEFAULT '{}',
    error_type text,
    error_message text,
    traceback text,
    retryable integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 1,
    failures integer NOT NULL DEFAULT 0,
    duplicate_of text,
    worker text,
    started double precision,
    finished double precision,
    run_id bigint,
    PRIMARY KEY (source, path, fingerprint)
);
CREATE INDEX IF NOT EXISTS docmill_documents_sha ON docmill_documents (fingerprint, sha256)
    WHERE status = 'ok';
CREATE INDEX IF NOT EXISTS docmill_documents_run ON docmill_documents (run_id, finished);
CREATE INDEX IF NOT EXISTS docmill_documents_status ON docmill_documents (source, fingerprint, status);
"""

READ_VERSION = "SELECT value FROM docmill_meta WHERE key = 'schema_version'"
WRITE_VERSION = "INSERT INTO docmill_meta (key, value) VALUES ('schema_version', %s)"
UPDATE_VERSION = "UPDATE docmill_meta SET value = %s WHERE key = 'schema_version'"

INSERT_RUN = """
INSERT INTO docmill_runs (source, fingerprint, strategy, workers, total, started, heartbeat, config)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
"""
HEARTBEAT = "UPDATE docmill_runs SET heartbeat = %s, stats = %s, total = coalesce(%s, total) WHERE id = %s"
END_RUN = "UPDATE docmill_runs SET state = %s, finished = %s, heartbeat = %s, stats = %s WHERE id = %s"
SELECT_RUNS = """
SELECT id, source, fingerprint, strategy, workers, total, state, started, finished, heartbeat,
       config, stats
FROM docmill_runs
"""

ANY_RECORDED = "SELECT 1 FROM docmill_documents WHERE source = %s AND fingerprint = %s LIMIT 1"
SELECT_STATE = """
SELECT path, status, size, mtime_ns FROM docmill_documents
WHERE source = %s AND fingerprint = %s AND path = ANY(%s)
"""
SELECT_FAILURES = """
SELECT path, failures, run_id, finished FROM docmill_documents
WHERE source = %s AND fingerprint = %s AND path = ANY(%s)
FOR UPDATE
"""
SELECT_FIRSTS = """
SELECT sha256, path, result, run_id FROM docmill_documents
WHERE source = %s AND fingerprint = %s AND status = 'ok' AND sha256 = ANY(%s)
ORDER BY path
"""

_COLUMNS = (
    "source, path, fingerprint, sha256, size, mtime_ns, status, label, score, result, error_type, "
    "error_message, traceback, retryable, attempts, failures, duplicate_of, worker, started, "
    "finished, run_id"
)
_UPDATES = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ") if c not in ("source", "path", "fingerprint")
)
UPSERT = f"""
INSERT INTO docmill_documents ({_COLUMNS})
VALUES ({", ".join(["%s"] * 21)})
ON CONFLICT (source, path, fingerprint) DO UPDATE SET {_UPDATES}
"""
DEMOTE = """
UPDATE docmill_documents
SET status = 'duplicate', duplicate_of = %s, result = jsonb_set(result, '{duplicate_of}', to_jsonb(%s::text))
WHERE source = %s AND fingerprint = %s AND (path = %s OR duplicate_of = %s)
"""
FORGET = "DELETE FROM docmill_documents WHERE source = %s AND fingerprint = %s"

SELECT_DOCUMENTS = """
SELECT source, path, fingerprint, sha256, size, status, label, score, result, error_type,
       error_message, attempts, failures, duplicate_of, worker, started, finished, run_id,
       pages, pages_ocr
FROM docmill_documents
"""
SCOPE = "SELECT source, fingerprint FROM docmill_runs WHERE id = %s"
LATEST_SCOPE = "SELECT source, fingerprint FROM docmill_runs ORDER BY id DESC LIMIT 1"
COUNT_BY_STATUS = "SELECT status, count(*) AS n FROM docmill_documents {} GROUP BY status ORDER BY status"
COUNT_BY_LABEL = (
    "SELECT label, count(*) AS n FROM docmill_documents {} "
    "GROUP BY label HAVING label IS NOT NULL ORDER BY label"
)
SPAN = (
    "SELECT min(started) AS first_started, max(finished) AS last_finished, "
    "coalesce(sum(pages), 0) AS pages FROM docmill_documents {}"
)
THROUGHPUT = """
SELECT floor((finished - %s) / %s)::bigint AS b, count(*) AS n FROM docmill_documents
WHERE run_id = %s AND finished IS NOT NULL GROUP BY b
"""
FINISHED_SPAN = "SELECT max(finished) AS hi FROM docmill_documents WHERE run_id = %s"


def where(query: Query, source: str | None, fingerprint: str | None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (possibly empty) and its parameters for ``query`` within a scope."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("source", source), ("fingerprint", fingerprint), ("label", query.label)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if query.status:
        clauses.append("status = ANY(%s)")
        params.append(list(query.status))
    if query.path_contains:
        clauses.append("strpos(path, %s) > 0")
        params.append(query.path_contains)
    if query.error_type is not None:
        clauses.append("coalesce(error_type, status) = %s")
        params.append(query.error_type)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def order_by(query: Query) -> str:
    """The ORDER BY clause of ``query.order`` (see ``Query``)."""
    return "ORDER BY finished DESC NULLS LAST, path" if order(query) == "recent" else "ORDER BY path"
