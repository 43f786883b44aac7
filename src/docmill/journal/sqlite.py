"""``SqliteJournal``: the default journal, one SQLite file in WAL mode.

The runner (the parent process) is the only writer; ``record`` writes a whole batch in one
transaction. Readers (``docmill status``, ``export``, ``serve``) open the same file at any time: WAL
lets them read a consistent snapshot while the run writes. Durability: with ``synchronous="NORMAL"``
(the default) every committed batch survives the process being killed (``kill -9``); a power loss may
lose the last few batches. ``synchronous="FULL"`` survives both, at some cost per commit.

``read_only=True`` opens the file as a reader must (see ``journal._readonly``): ``mode=ro``,
``query_only``, no schema script or WAL pragma, and a missing file is an error, not a new journal.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from importlib import resources
from typing import Any

from docmill.document import DocumentRef
from docmill.errors import ConfigError, JournalError
from docmill.journal import _readonly, _sql
from docmill.journal.base import (
    SCHEMA_VERSION,
    DocumentRecord,
    Query,
    RecordedBatch,
    RunInfo,
    RunRecord,
    Summary,
)
from docmill.journal.policy import First, Recorded, clean, pending_in_batches, settle_batch
from docmill.journal.rows import demote_row, document_record, document_row, run_record
from docmill.outcome import Outcome

_CHUNK = 500  # refs per pending() lookup and rows per IN (...) query: well under SQLite's variable limit
_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")


class SqliteJournal:
    """The Journal protocol over one SQLite file (see ``docmill.journal.base`` for the semantics)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        quarantine_after: int = 3,
        read_only: bool = False,
    ) -> None:
        if synchronous.upper() not in _SYNC:
            raise ConfigError(f"synchronous must be one of {', '.join(_SYNC)}, got {synchronous!r}")
        if quarantine_after < 1:
            raise ConfigError(f"quarantine_after must be >= 1, got {quarantine_after}")
        self.path = os.fspath(path)
        self.quarantine_after = quarantine_after
        self._lock = threading.RLock()  # executors may pull refs (hence pending()) from a feeder thread
        self.read_only = read_only
        self._reader: _readonly.Opened | None = None
        if read_only:
            self._reader = _readonly.open_reader(self.path)
            self._db = self._reader.db
        else:
            self._db = self._open(synchronous.upper())

    def _open(self, synchronous: str) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {synchronous}")
            self._migrate(db)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            db.executescript(_sql.LATER_INDEXES)  # journals written before these indexes existed
            return
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if version != 0 or tables:
            raise JournalError(
                f"{self.path} has journal schema version {version}; this docmill reads version "
                f"{SCHEMA_VERSION} (use another --db, or export with the docmill that wrote it)"
            )
        script = resources.files("docmill.journal").joinpath("schema.sql").read_text("utf-8")
        db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    # -- runs ------------------------------------------------------------------------------------

    def begin_run(self, info: RunInfo) -> int:
        row = (info.source, info.fingerprint, info.strategy, info.workers, info.total, _json(info.config))
        with self._write() as db:
            cursor = db.execute(_sql.BEGIN_RUN, (*row, _now()))
        return int(cursor.lastrowid or 0)

    def heartbeat(self, run_id: int, stats: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(_sql.HEARTBEAT, (_json(stats), _now(), stats.get("total"), run_id))

    def end_run(self, run_id: int, state: str, stats: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(_sql.END_RUN, (state, _now(), _json(stats), _now(), stats.get("total"), run_id))

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
        sql = _sql.RECORDED.format(marks=_marks(len(chunk)))
        rows = self._read(sql, (source, fingerprint, *(clean(ref.id) for ref in chunk)))
        return {r["path"]: Recorded(r["status"], r["size"], r["mtime_ns"]) for r in rows}

    def record(
        self, outcomes: Sequence[Outcome], *, run_id: int, source: str, fingerprint: str
    ) -> RecordedBatch:
        """Store a batch in one transaction; returns the outcomes as recorded (duplicate, quarantined)."""
        if not outcomes:
            return RecordedBatch()
        with self._write() as db:
            failures = self._failures(db, outcomes, source, fingerprint)
            firsts = self._firsts(db, outcomes, source, fingerprint)
            settled = settle_batch(
                outcomes,
                failures=failures,
                firsts=firsts,
                quarantine_after=self.quarantine_after,
                run_id=run_id,
            )
            rows = [document_row(s, run_id=run_id, source=source, fingerprint=fingerprint) for s in settled]
            db.executemany(_sql.UPSERT, rows)
            demoted = [s for s in settled if s.demote]
            db.executemany(_sql.DEMOTE, [demote_row(s, source, fingerprint) for s in demoted])
        return RecordedBatch((s.outcome for s in settled), (d for s in demoted if (d := s.demotion)))

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
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM documents WHERE source = ? AND fingerprint = ?", (source, fingerprint)
            )
        return cursor.rowcount

    # -- documents: reading ------------------------------------------------------------------------

    def summary(self, run_id: int | None = None) -> Summary:
        where, params = self._where(Query(run_id=run_id))
        by_status = {r[0]: int(r[1]) for r in self._read(_sql.BY_STATUS.format(where=where), params)}
        labelled = f"{where} AND label IS NOT NULL" if where else "WHERE label IS NOT NULL"
        by_label = {r[0]: int(r[1]) for r in self._read(_sql.BY_LABEL.format(where=labelled), params)}
        span = self._read(_sql.SPAN.format(where=where), params)[0]
        total = sum(by_status.values())
        return Summary(total, by_status, by_label, span[0], span[1])

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
        with self._lock:
            self._refresh()
            try:
                cursor = self._db.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: {exc}") from exc

    def _refresh(self) -> None:
        """An ``immutable`` reader reopens once the file changed under it (a run started or ended)."""
        if self._reader is not None and _readonly.is_stale(self._reader, self.path):
            self._db.close()
            self._reader = _readonly.open_reader(self.path)
            self._db = self._reader.db

    def _write(self) -> _Transaction:
        if self.read_only:
            raise JournalError(f"journal {self.path} is open read-only")
        return _Transaction(self)

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
    """``with journal._write() as db:`` one IMMEDIATE transaction, under the journal's lock."""

    def __init__(self, journal: SqliteJournal) -> None:
        self.journal = journal

    def __enter__(self) -> sqlite3.Connection:
        self.journal._lock.acquire()
        try:
            self.journal._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self.journal._lock.release()
            raise JournalError(f"journal {self.journal.path}: {exc}") from exc
        return self.journal._db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        db = self.journal._db
        try:
            db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as error:
            raise JournalError(f"journal {self.journal.path}: {error}") from error
        finally:
            self.journal._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise JournalError(f"journal {self.journal.path}: {exc}") from exc


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _now() -> float:
    return time.time()  # wall time stamped on run records; documents carry their worker's timings
