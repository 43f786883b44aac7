"""``SqliteJournal``: the default journal, one SQLite file in WAL mode.

The runner (the parent process) is the only writer; ``record`` writes a whole batch in one
transaction. Readers (``docmill status``, ``export``, ``serve``) open the same file at any time: WAL
lets them read a consistent snapshot while the run writes. Durability: with ``synchronous="NORMAL"``
(the default) every committed batch survives the process being killed (``kill -9``); a power loss may
lose the last few batches. ``synchronous="FULL"`` survives both, at some cost per commit.

``read_only=True`` opens the file as a reader must (see ``journal._readonly``): ``mode=ro``,
``query_only``, no schema script or WAL pragma, and a missing file is an error, not a new journal.

Another process holding the write lock (a long ``sqlite3`` session, a backup tool, a second run):
SQLite itself waits up to 2 s, then ``journal.healing`` retries the whole transaction with backoff,
saying so, for up to ``reconnect_seconds`` in all before the run stops.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from importlib import resources
from typing import Any, TypeVar

from docmill._sqlite_wal import use_wal
from docmill.document import DocumentRef
from docmill.errors import ConfigError, JournalError
from docmill.journal import _readonly, _sql, migrations
from docmill.journal._spans import recorded_rows
from docmill.journal.base import (
    SCHEMA_VERSION,
    DocumentRecord,
    Query,
    RecordedBatch,
    RunInfo,
    RunRecord,
    Summary,
)
from docmill.journal.batch_store import SqliteBatches
from docmill.journal.faults import crash_point
from docmill.journal.healing import Backoff, Healer
from docmill.journal.policy import First, Recorded, Settled, clean, pending_in_batches, settle_batch
from docmill.journal.rows import demote_row, document_record, document_rows, run_record
from docmill.outcome import Outcome

_CHUNK = 500  # refs per pending() lookup and rows per IN (...) query: well under SQLite's variable limit
_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_BUSY_WAIT = 2.0  # SQLite's own wait for a lock; the healer retries beyond it
T = TypeVar("T")


class SqliteJournal(SqliteBatches):
    """The Journal protocol over one SQLite file (see ``docmill.journal.base`` for the semantics)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        quarantine_after: int = 3,
        read_only: bool = False,
        reconnect_seconds: float = 120.0,
    ) -> None:
        if synchronous.upper() not in _SYNC:
            raise ConfigError(f"synchronous must be one of {', '.join(_SYNC)}, got {synchronous!r}")
        if quarantine_after < 1:
            raise ConfigError(f"quarantine_after must be >= 1, got {quarantine_after}")
        self.path = os.fspath(path)
        self.quarantine_after = quarantine_after
        self._lock = threading.RLock()  # executors may pull refs (hence pending()) from a feeder thread
        self.read_only = read_only
        self._crash = crash_point()
        what = f"journal {self.path} is locked"
        self._healer = Healer(_busy, self._unlock, what=what, policy=Backoff(reconnect_seconds))
        self._busy_ms = int(1000 * min(_BUSY_WAIT, reconnect_seconds))
        self._reader: _readonly.Opened | None = None
        if read_only:
            self._reader = _readonly.open_reader(self.path)
            self._db = self._reader.db
        else:
            self._db = self._open(synchronous.upper())

    def _open(self, synchronous: str) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            use_wal(db, patience=30.0)
            db.execute(f"PRAGMA synchronous = {synchronous}")
            self._migrate(db)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create a new journal, or upgrade an older one in place (``journal.migrations``). The
        version is read under the write lock: of two runs opening an old journal at once, the
        second finds it upgraded instead of adding the same columns again."""
        db.execute("BEGIN IMMEDIATE")
        try:
            self._upgrade(db)
            db.execute("COMMIT")
        finally:
            if db.in_transaction:
                db.execute("ROLLBACK")
        db.executescript(_sql.LATER_INDEXES)  # journals written before these indexes existed

    def _upgrade(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if version == 0 and tables:
            raise JournalError(
                f"{self.path} has journal schema version 0: not a docmill journal (use another --db)"
            )
        steps = migrations.steps_from(version, SCHEMA_VERSION, self.path)
        if not steps and version:
            return
        base = "" if version else resources.files("docmill.journal").joinpath("schema.sql").read_text("utf-8")
        for statement in (*_sql.statements(base), *(s for step in steps for s in step.sqlite)):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- runs ------------------------------------------------------------------------------------

    def begin_run(self, info: RunInfo) -> int:
        row = (info.source, info.fingerprint, info.strategy, info.workers, info.total, _json(info.config))
        cursor = self._write(lambda db: db.execute(_sql.BEGIN_RUN, (*row, _now())))
        return int(cursor.lastrowid or 0)

    def heartbeat(self, run_id: int, stats: Mapping[str, Any]) -> None:
        self._write(lambda db: db.execute(_sql.HEARTBEAT, (_json(stats), _now(), stats.get("total"), run_id)))

    def end_run(self, run_id: int, state: str, stats: Mapping[str, Any]) -> None:
        params = (state, _now(), _json(stats), _now(), stats.get("total"), run_id)
        self._write(lambda db: db.execute(_sql.END_RUN, params))

    def runs(self) -> list[RunRecord]:
        return [run_record(r) for r in self._read("SELECT * FROM runs ORDER BY id DESC", ())]

    def run(self, run_id: int) -> RunRecord | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return run_record(rows[0]) if rows else None

    # -- documents: writing ------------------------------------------------------------------------

    def pending(
        self, refs: Iterable[DocumentRef], *, source: str, fingerprint: str, retry_failed: bool = False
    ) -> Iterator[DocumentRef]:
        if not self._read(_sql.ANY_RECORDED, (source, fingerprint)):
            yield from refs  # nothing recorded before this run: every ref is pending
            return
        lookup = partial(self._recorded, source=source, fingerprint=fingerprint)
        yield from pending_in_batches(refs, lookup, retry_failed=retry_failed, batch=_CHUNK)

    def _recorded(self, chunk: list[DocumentRef], *, source: str, fingerprint: str) -> dict[str, Recorded]:
        return recorded_rows(self._tuples, [clean(ref.id) for ref in chunk], source, fingerprint)

    def record(
        self, outcomes: Sequence[Outcome], *, run_id: int, source: str, fingerprint: str
    ) -> RecordedBatch:
        """Store a batch in one transaction; returns the outcomes as recorded (duplicate, quarantined)."""
        if not outcomes:
            return RecordedBatch()

        def upsert(db: sqlite3.Connection) -> list[Settled]:
            failures = self._failures(db, outcomes, source, fingerprint)
            firsts = self._firsts(db, outcomes, source, fingerprint)
            settled = settle_batch(
                outcomes,
                failures=failures,
                firsts=firsts,
                quarantine_after=self.quarantine_after,
                run_id=run_id,
            )
            db.executemany(
                _sql.UPSERT, document_rows(settled, run_id=run_id, source=source, fingerprint=fingerprint)
            )
            db.executemany(_sql.DEMOTE, [demote_row(s, source, fingerprint) for s in settled if s.demote])
            return settled

        settled = self._write(upsert)
        return RecordedBatch((s.outcome for s in settled), (d for s in settled if (d := s.demotion)))

    def _failures(
        self, db: sqlite3.Connection, outcomes: Sequence[Outcome], source: str, fingerprint: str
    ) -> dict[str, int]:
        paths = [clean(o.ref.id) for o in outcomes if o.status.value in ("failed", "crashed")]
        found: dict[str, int] = {}
        for part in _chunks(paths):
            sql = _sql.FAILURES.format(marks=_marks(len(part)))
            found.update(db.execute(sql, (source, fingerprint, *part)).fetchall())
        return found

    def _firsts(
        self, db: sqlite3.Connection, outcomes: Sequence[Outcome], source: str, fingerprint: str
    ) -> dict[str, First]:
        wanted = {o.sha256: o.ref.id for o in outcomes if o.sha256 and o.status.value == "ok"}
        firsts: dict[str, First] = {}
        for part in _chunks(list(wanted)):
            sql = _sql.FIRSTS.format(marks=_marks(len(part)))
            for sha, path, result, run in db.execute(sql, (source, fingerprint, *part)):
                if path != wanted[sha]:
                    firsts.setdefault(sha, First(path, json.loads(result), run))
        return firsts

    def forget(self, *, source: str, fingerprint: str) -> int:
        sql = "DELETE FROM documents WHERE source = ? AND fingerprint = ?"
        return self._write(lambda db: db.execute(sql, (source, fingerprint))).rowcount

    # -- documents: reading ------------------------------------------------------------------------

    def summary(self, run_id: int | None = None) -> Summary:
        where, params = self._where(Query(run_id=run_id))
        by_status = {r[0]: int(r[1]) for r in self._read(_sql.BY_STATUS.format(where=where), params)}
        labelled = f"{where} AND label IS NOT NULL" if where else "WHERE label IS NOT NULL"
        by_label = {r[0]: int(r[1]) for r in self._read(_sql.BY_LABEL.format(where=labelled), params)}
        span = self._read(_sql.SPAN.format(where=where), params)[0]
        total = sum(by_status.values())
        return Summary(total, by_status, by_label, span[0], span[1], int(span[2]))

    def documents(self, query: Query) -> list[DocumentRecord]:
        where, params = self._where(query)
        sql = f"SELECT * FROM documents {where} {_sql.order_by(query)} LIMIT ? OFFSET ?"
        return [document_record(r) for r in self._read(sql, (*params, query.limit, query.offset))]

    def iter_documents(self, query: Query) -> Iterator[DocumentRecord]:
        """Every document matching ``query`` in path order, streamed (limit, offset, order ignored)."""
        where, params = self._where(query)
        last = ""
        while True:
            clause = f"{where} AND path > ?" if where else "WHERE path > ?"
            sql = f"SELECT * FROM documents {clause} ORDER BY path LIMIT {_CHUNK}"
            rows = self._read(sql, (*params, last))
            yield from (document_record(r) for r in rows)
            if len(rows) < _CHUNK:
                return
            last = rows[-1]["path"]

    def count(self, query: Query) -> int:
        where, params = self._where(query)
        return int(self._read(f"SELECT count(*) FROM documents {where}", params)[0][0])

    def document(self, path: str, *, run_id: int | None = None) -> DocumentRecord | None:
        where, params = self._where(Query(run_id=run_id))
        clause = f"{where} AND path = ?" if where else "WHERE path = ?"
        rows = self._read(f"SELECT * FROM documents {clause} LIMIT 1", (*params, path))
        return document_record(rows[0]) if rows else None

    def throughput(self, run_id: int, *, buckets: int = 60) -> list[tuple[float, int]]:
        run = self.run(run_id)
        if run is None or buckets < 1:
            return []
        last = self._read("SELECT max(finished) FROM documents WHERE run_id = ?", (run_id,))[0][0]
        end = max(run.finished or run.heartbeat or _now(), last or 0.0)
        width = max((end - run.started) / buckets, 1e-6)
        counts: dict[int, int] = {}
        for bucket, n in self._read(_sql.THROUGHPUT, (run.started, width, run_id)):
            index = min(max(int(bucket), 0), buckets - 1)  # the last document ends exactly at `end`
            counts[index] = counts.get(index, 0) + n
        return [(run.started + i * width, counts.get(i, 0)) for i in range(buckets)]

    def _where(self, query: Query) -> tuple[str, tuple[Any, ...]]:
        source, fingerprint = query.source, query.fingerprint
        if source is None and fingerprint is None:
            scope = self._scope(query.run_id)
            if scope is None:
                return "WHERE 0", ()  # an unknown run holds no documents
            source, fingerprint = scope
        return _sql.where(query, source, fingerprint)

    def _scope(self, run_id: int | None) -> tuple[str | None, str | None] | None:
        """A run's (source, fingerprint): the given run (None if unknown), else the latest run's
        ((None, None) when the journal has no run yet: everything)."""
        if run_id is not None:
            rows = self._read(_sql.SCOPE, (run_id,))
            return (rows[0][0], rows[0][1]) if rows else None
        rows = self._read("SELECT source, fingerprint FROM runs ORDER BY id DESC LIMIT 1", ())
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    # -- plumbing ----------------------------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        def query() -> list[sqlite3.Row]:
            self._refresh()
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

        return self._call("cannot read the journal", query)

    def _tuples(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """``_read`` as plain tuples, for lookups made once per document (a resume): no Row objects."""

        def query() -> list[Any]:
            self._refresh()
            return self._db.execute(sql, params).fetchall()

        return self._call("cannot read the journal", query)

    def _call(self, action: str, op: Callable[[], T]) -> T:
        """``op()`` under the lock, retried while the file is locked; errors as JournalError."""
        with self._lock:
            try:
                return self._healer.call(op, action)
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: {exc}") from exc

    def _unlock(self) -> None:
        """The healer's mend: end whatever transaction the failed attempt left open."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _refresh(self) -> None:
        """An ``immutable`` reader reopens once the file changed under it (a run started or ended)."""
        if self._reader is not None and _readonly.is_stale(self._reader, self.path):
            self._db.close()
            self._reader = _readonly.open_reader(self.path)
            self._db = self._reader.db

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one IMMEDIATE transaction, replayed whole while the file is locked."""
        if self.read_only:
            raise JournalError(f"journal {self.path} is open read-only")

        def once() -> T:
            with _Transaction(self) as db:
                return work(db)

        return self._call("cannot write the journal", once)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._reader is not None:
                _readonly.tidy(self._reader, self.path)

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteJournal({self.path!r})"


class _Transaction:
    """``with _Transaction(journal) as db:`` one IMMEDIATE transaction (caller holds the lock).

    sqlite3 errors pass through as they are, so the healer can tell a lock from a real failure.
    """

    def __init__(self, journal: SqliteJournal) -> None:
        self.journal = journal

    def __enter__(self) -> sqlite3.Connection:
        self.journal._db.execute("BEGIN IMMEDIATE")
        return self.journal._db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        db = self.journal._db
        if exc_type is not None:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return
        self.journal._crash.before()
        db.execute("COMMIT")
        self.journal._crash.after()


def _busy(exc: BaseException) -> bool:
    """Whether ``exc`` is another connection's lock (worth waiting for), not a real failure."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in _BUSY


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _now() -> float:
    return time.time()  # wall time stamped on run records; documents carry their worker's timings
