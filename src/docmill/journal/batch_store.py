"""The journal's record of provider batches (``--batch``): what was packed, submitted and collected.

Two tables (schema version 3, ``journal.migrations``): ``batches``, one row per batch file (the
provider's input file id, its batch id once submitted, its state, its counts and money in ``info``;
``collected`` once its answers are recorded), and ``batch_documents``, one row per request line
(the document's ref, sha256 and extraction metadata, its ``custom_id``, and after collection its
line's fate: ``ok``, ``failed`` or ``unfinished``, with the reason).

The order of writes makes a batch crash-safe (``docmill.batch.session``): the row and its documents
are written *before* the batch is created at the provider (``batch_intent``), the provider's id
right after (``batch_submitted``); a run that finds a row without an id asks the provider whether a
batch of that input file exists before creating one. A document in a batch not yet collected is
never packed again; answers are recorded before their batch is marked collected.

The parent is the only writer, as for documents; readers (``docmill status``) list batches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from docmill.document import DocumentRef

PACKED = "packed"  # recorded, not yet known to be submitted (the provider may have it: ask first)
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class BatchMember:
    """One request line of a batch: which document, and (once collected) what became of it."""

    custom_id: str
    ref: DocumentRef
    sha256: str | None
    result: Mapping[str, Any] = field(default_factory=dict)  # the extraction metadata
    state: str = PACKED  # packed | ok | failed | unfinished
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch as the journal knows it. ``state``: ``packed``, then the provider's status."""

    id: int
    source: str
    fingerprint: str
    run_id: int | None
    provider_id: str | None
    input_file_id: str
    state: str
    created: float
    updated: float
    collected: float | None
    info: Mapping[str, Any]

    @property
    def open(self) -> bool:
        return self.collected is None


@runtime_checkable
class BatchJournal(Protocol):
    """The batch methods both journals have (``SqliteJournal``, ``PostgresJournal``)."""

    def batch_intent(
        self,
        *,
        run_id: int,
        source: str,
        fingerprint: str,
        input_file_id: str,
        members: Sequence[BatchMember],
        info: Mapping[str, Any],
    ) -> int: ...
    def batch_update(
        self, batch_id: int, *, state: str, info: Mapping[str, Any], provider_id: str | None = None
    ) -> None: ...
    def batch_collected(
        self,
        batch_id: int,
        *,
        state: str,
        info: Mapping[str, Any],
        lines: Mapping[str, tuple[str, str | None]],
    ) -> None: ...
    def batch_records(
        self, *, source: str | None = None, fingerprint: str | None = None, open_only: bool = False
    ) -> list[BatchRecord]: ...
    def batch_members(self, batch_id: int) -> list[BatchMember]: ...
    def batch_line_counts(self, *, source: str, fingerprint: str) -> dict[str, dict[str, int]]: ...


SQLITE_STEP = (
    """CREATE TABLE IF NOT EXISTS batches (
        id INTEGER PRIMARY KEY, source TEXT NOT NULL, fingerprint TEXT NOT NULL, run_id INTEGER,
        provider_id TEXT, input_file_id TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
        updated REAL NOT NULL, collected REAL, info TEXT NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS batches_by_scope ON batches (source, fingerprint, collected)",
    """CREATE TABLE IF NOT EXISTS batch_documents (
        batch_id INTEGER NOT NULL REFERENCES batches(id), custom_id TEXT NOT NULL, path TEXT NOT NULL,
        uri TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha256 TEXT, result TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'packed', error TEXT, PRIMARY KEY (batch_id, custom_id))""",
    "CREATE INDEX IF NOT EXISTS batch_documents_by_path ON batch_documents (path)",
)
POSTGRES_STEP = (
    """CREATE TABLE IF NOT EXISTS docmill_batches (
        id bigserial PRIMARY KEY, source text NOT NULL, fingerprint text NOT NULL, run_id bigint,
        provider_id text, input_file_id text NOT NULL, state text NOT NULL,
        created double precision NOT NULL, updated double precision NOT NULL,
        collected double precision, info jsonb NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS docmill_batches_scope ON docmill_batches (source, fingerprint, collected)",
    """CREATE TABLE IF NOT EXISTS docmill_batch_documents (
        batch_id bigint NOT NULL REFERENCES docmill_batches(id), custom_id text NOT NULL,
        path text NOT NULL, uri text NOT NULL, size bigint, mtime_ns bigint, sha256 text,
        result jsonb NOT NULL DEFAULT '{}', state text NOT NULL DEFAULT 'packed', error text,
        PRIMARY KEY (batch_id, custom_id))""",
    "CREATE INDEX IF NOT EXISTS docmill_batch_documents_path ON docmill_batch_documents (path)",
)

_COLUMNS = (
    "id, source, fingerprint, run_id, provider_id, input_file_id, state, created, updated, collected, info"
)
_MEMBER_COLUMNS = "custom_id, path, uri, size, mtime_ns, sha256, result, state, error"


def _sql(text: str, postgres: bool) -> str:
    """The statement for one dialect: table names prefixed and ``%s`` marks in PostgreSQL."""
    if not postgres:
        return text
    return (
        text.replace("batch_documents", "docmill_batch_documents")
        .replace(" batches", " docmill_batches")
        .replace("?", "%s")
    )


INSERT = (
    "INSERT INTO batches (source, fingerprint, run_id, input_file_id, state, created, updated, info) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_MEMBER = (
    f"INSERT INTO batch_documents (batch_id, {_MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE = (
    "UPDATE batches SET state = ?, info = ?, updated = ?, provider_id = coalesce(?, provider_id) WHERE id = ?"
)
COLLECT = "UPDATE batches SET state = ?, info = ?, updated = ?, collected = ? WHERE id = ?"
LINE = "UPDATE batch_documents SET state = ?, error = ? WHERE batch_id = ? AND custom_id = ?"
MEMBERS = f"SELECT {_MEMBER_COLUMNS} FROM batch_documents WHERE batch_id = ? ORDER BY custom_id"
LINE_COUNTS = (
    "SELECT d.path AS path, d.state AS state, count(*) AS n FROM batch_documents d "
    "JOIN batches b ON b.id = d.batch_id WHERE b.source = ? AND b.fingerprint = ? "
    "AND d.state IN ('failed', 'unfinished') GROUP BY d.path, d.state"
)


def member_row(batch_id: int, member: BatchMember) -> tuple[Any, ...]:
    ref = member.ref
    result = json.dumps(dict(member.result), default=str)
    return (
        batch_id,
        member.custom_id,
        ref.id,
        ref.uri,
        ref.size,
        ref.mtime_ns,
        member.sha256,
        result,
        member.state,
        member.error,
    )


def batch_record(row: Mapping[str, Any]) -> BatchRecord:
    info = row["info"]
    return BatchRecord(
        id=int(row["id"]),
        source=row["source"],
        fingerprint=row["fingerprint"],
        run_id=row["run_id"],
        provider_id=row["provider_id"],
        input_file_id=row["input_file_id"],
        state=row["state"],
        created=row["created"],
        updated=row["updated"],
        collected=row["collected"],
        info=json.loads(info) if isinstance(info, str) else dict(info or {}),
    )


def batch_member(row: Mapping[str, Any]) -> BatchMember:
    result = row["result"]
    ref = DocumentRef(id=row["path"], uri=row["uri"], size=row["size"], mtime_ns=row["mtime_ns"])
    return BatchMember(
        custom_id=row["custom_id"],
        ref=ref,
        sha256=row["sha256"],
        result=json.loads(result) if isinstance(result, str) else dict(result or {}),
        state=row["state"],
        error=row["error"],
    )


def select_batches(source: str | None, fingerprint: str | None, open_only: bool) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("source", source), ("fingerprint", fingerprint)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if open_only:
        clauses.append("collected IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT {_COLUMNS} FROM batches{where} ORDER BY id", params


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), default=str, sort_keys=True)


class _Batches:
    """The batch methods, over two primitives each journal provides: run statements in one
    transaction (``_batch_write``), and read rows as mappings (``_batch_read``)."""

    _postgres = False

    def _batch_write(self, work: Callable[[Callable[[str, Sequence[Any]], Any]], Any]) -> Any:
        raise NotImplementedError

    def _batch_read(self, sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def batch_intent(
        self,
        *,
        run_id: int,
        source: str,
        fingerprint: str,
        input_file_id: str,
        members: Sequence[BatchMember],
        info: Mapping[str, Any],
    ) -> int:
        """Record a batch file and its documents, before it is submitted; returns its row id."""
        now = time.time()
        pg = self._postgres

        def write(execute: Callable[[str, Sequence[Any]], Any]) -> int:
            params = (source, fingerprint, run_id, input_file_id, PACKED, now, now, _json(info))
            if pg:
                batch_id = int(execute(_sql(INSERT, pg) + " RETURNING id", params).fetchone()["id"])
            else:
                batch_id = int(execute(INSERT, params).lastrowid)
            for member in members:
                execute(_sql(INSERT_MEMBER, pg), member_row(batch_id, member))
            return batch_id

        return int(self._batch_write(write))

    def batch_update(
        self, batch_id: int, *, state: str, info: Mapping[str, Any], provider_id: str | None = None
    ) -> None:
        """A batch's state (the provider's status) and info; its provider id once it is known."""
        params = (state, _json(info), time.time(), provider_id, batch_id)
        self._batch_write(lambda execute: execute(_sql(UPDATE, self._postgres), params))

    def batch_collected(
        self,
        batch_id: int,
        *,
        state: str,
        info: Mapping[str, Any],
        lines: Mapping[str, tuple[str, str | None]],
    ) -> None:
        """Mark a batch collected (its answers are recorded) with each line's fate, in one transaction."""
        now = time.time()
        pg = self._postgres

        def write(execute: Callable[[str, Sequence[Any]], Any]) -> None:
            for custom_id, (fate, error) in lines.items():
                execute(_sql(LINE, pg), (fate, error, batch_id, custom_id))
            execute(_sql(COLLECT, pg), (state, _json(info), now, now, batch_id))

        self._batch_write(write)

    def batch_records(
        self, *, source: str | None = None, fingerprint: str | None = None, open_only: bool = False
    ) -> list[BatchRecord]:
        """The batches recorded (in a scope), oldest first."""
        sql, params = select_batches(source, fingerprint, open_only)
        return [batch_record(row) for row in self._batch_read(_sql(sql, self._postgres), params)]

    def batch_members(self, batch_id: int) -> list[BatchMember]:
        return [batch_member(row) for row in self._batch_read(_sql(MEMBERS, self._postgres), (batch_id,))]

    def batch_line_counts(self, *, source: str, fingerprint: str) -> dict[str, dict[str, int]]:
        """path → {"failed": n, "unfinished": m}: how often a document's line came back without an answer."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._batch_read(_sql(LINE_COUNTS, self._postgres), (source, fingerprint)):
            counts.setdefault(row["path"], {})[row["state"]] = int(row["n"])
        return counts


class SqliteBatches(_Batches):
    """The batch methods of ``SqliteJournal`` (its ``_write`` and ``_read``)."""

    _write: Callable[..., Any]
    _read: Callable[..., Any]

    def _batch_write(self, work: Callable[[Callable[[str, Sequence[Any]], Any]], Any]) -> Any:
        return self._write(lambda db: work(db.execute))

    def _batch_read(self, sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
        return list(self._read(sql, params))


class PostgresBatches(_Batches):
    """The batch methods of ``PostgresJournal`` (its ``_write`` and ``_all``)."""

    _postgres = True
    _write: Callable[..., Any]
    _all: Callable[..., Any]

    def _batch_write(self, work: Callable[[Callable[[str, Sequence[Any]], Any]], Any]) -> Any:
        return self._write("cannot record a batch", lambda cur: work(cur.execute))

    def _batch_read(self, sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
        return list(self._all(sql, params))
