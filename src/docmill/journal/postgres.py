"""PostgresJournal: the Journal protocol on PostgreSQL (psycopg 3), for distributed runs.

Same records and semantics as the SQLite journal (see ``journal.base``): one row per (source, path,
pipeline fingerprint), written by the parent only, in one transaction per batch. Writes are
upserts on that key, so an outcome delivered twice (Celery's at-least-once delivery, a restarted
runner) replaces its row instead of adding one.

Target: ``postgresql://user@host:port/db[?schema=NAME]``. ``schema`` (docmill's own parameter,
stripped before connecting) puts the tables in their own schema, created if missing; tests use
it to stay apart.

``read_only=True`` (every reader: ``status``, ``export``, ``serve``…) creates no schema: the session
is set to read-only transactions (``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``), so any
write it attempted would fail in PostgreSQL itself, and a database without a journal is an error.

A lost connection heals (``journal.healing``): each operation is one transaction, replayed on a new
connection for up to ``reconnect_seconds``; the upsert makes a replayed batch replace its own rows.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from docmill.document import DocumentRef
from docmill.errors import ConfigError, JournalError, MissingDependencyError
from docmill.journal import _pg_conn, migrations
from docmill.journal import _pg_sql as sql
from docmill.journal.base import (
    SCHEMA_VERSION,
    DocumentRecord,
    Query,
    RecordedBatch,
    RunInfo,
    RunRecord,
    Summary,
)
from docmill.journal.batch_store import PostgresBatches
from docmill.journal.faults import crash_point
from docmill.journal.healing import Backoff, Healer, first_line
from docmill.journal.policy import First, Recorded, Settled, clean, pending_in_batches, settle_batch
from docmill.journal.rows import demote_row, document_record, document_row, run_record
from docmill.outcome import Outcome

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - extra not installed
    raise MissingDependencyError("psycopg", "postgres") from exc

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LOOKUP_BATCH = 500
T = TypeVar("T")


def split_target(target: str) -> tuple[str, str | None]:
    """(libpq conninfo URL, schema or None): ``schema=`` is ours, libpq would reject it."""
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"invalid PostgreSQL schema name {schema!r}")
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresJournal(PostgresBatches):
    """The journal in a PostgreSQL database; ``quarantine_after`` failures end a document."""

    def __init__(
        self,
        target: str,
        *,
        quarantine_after: int = 3,
        connect_timeout: float = 5.0,
        read_only: bool = False,
        reconnect_seconds: float = 120.0,
    ) -> None:
        self.target = target
        self.read_only = read_only
        self.quarantine_after = quarantine_after
        self._conninfo, self.schema = split_target(target)
        self._timeout = connect_timeout
        self._lock = threading.RLock()  # the runner's threads and the refs feeder share one session
        self._crash = crash_point()
        what = "PostgreSQL journal connection"
        self._healer = Healer(_pg_conn.lost, self._reconnect, what=what, policy=Backoff(reconnect_seconds))
        try:
            self._conn = _pg_conn.connect(self._conninfo, connect_timeout)
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to {_pg_conn.redact(self._conninfo)}: {first_line(exc)}"
            ) from exc
        if read_only:  # a session cut while it is being set up heals like any other
            self._call("cannot read journal", self._open_read_only)
        else:
            self._call("cannot create the journal", self._create_schema)

    def _open_read_only(self) -> None:
        """Make every transaction of this session read-only, then check the journal is there."""
        _pg_conn.prepare(self._conn, self.schema, read_only=True)
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT to_regclass('docmill_meta') IS NOT NULL AS present")
            present = (cur.fetchone() or {}).get("present")
            row = cur.execute(sql.READ_VERSION).fetchone() if present else None
        _check_version(row, self.schema)

    def _reconnect(self) -> None:
        """The healer's mend: a new session, set up as the first one was (the schema exists by now)."""
        _pg_conn.close_quietly(self._conn)
        self._conn = _pg_conn.connect(self._conninfo, self._timeout)
        _pg_conn.prepare(self._conn, self.schema, self.read_only)

    def _create_schema(self) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(72417)")  # concurrent first runs create once
            if self.schema:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                cur.execute(f'SET search_path TO "{self.schema}"')
            cur.execute(sql.SCHEMA)
            cur.execute(sql.READ_VERSION)
            row = cur.fetchone()
            if row is None:
                cur.execute(sql.WRITE_VERSION, ("1",))  # the base schema; the steps below bring it up
            version = int(row["value"]) if row else 1
            for step in migrations.steps_from(version, SCHEMA_VERSION, "the PostgreSQL journal"):
                for statement in step.postgres:
                    cur.execute(statement)
            cur.execute(sql.UPDATE_VERSION, (str(SCHEMA_VERSION),))

    # -- runs -------------------------------------------------------------------------------------

    def begin_run(self, info: RunInfo) -> int:
        now = time.time()
        config = _json(info.config)
        params = (info.source, info.fingerprint, info.strategy, info.workers, info.total, now, now, config)

        def insert(cur: psycopg.Cursor[Any]) -> int:
            row = cur.execute(sql.INSERT_RUN, params).fetchone()
            assert row is not None
            return int(row["id"])

        return self._write("cannot record the run", insert)

    def heartbeat(self, run_id: int, stats: Mapping[str, Any]) -> None:
        self._execute(sql.HEARTBEAT, (time.time(), _json(stats), stats.get("total"), run_id))

    def end_run(self, run_id: int, state: str, stats: Mapping[str, Any]) -> None:
        now = time.time()
        self._execute(sql.END_RUN, (state, now, now, _json(stats), run_id))

    def runs(self) -> list[RunRecord]:
        return [run_record(row) for row in self._all(sql.SELECT_RUNS + " ORDER BY id DESC", ())]

    def run(self, run_id: int) -> RunRecord | None:
        row = self._one(sql.SELECT_RUNS + " WHERE id = %s", (run_id,))
        return None if row is None else run_record(row)

    # -- documents --------------------------------------------------------------------------------

    def pending(
        self, refs: Iterable[DocumentRef], *, source: str, fingerprint: str, retry_failed: bool = False
    ) -> Iterator[DocumentRef]:
        """Refs that need processing (see ``journal.policy.is_pending``), looked up in batches, lazily."""
        if not self._all(sql.ANY_RECORDED, (source, fingerprint)):
            yield from refs  # nothing recorded before this run: every ref is pending
            return

        def lookup(chunk: list[DocumentRef]) -> dict[str, Recorded]:
            rows = self._all(sql.SELECT_STATE, (source, fingerprint, [clean(ref.id) for ref in chunk]))
            return {r["path"]: Recorded(r["status"], r["size"], r["mtime_ns"]) for r in rows}

        yield from pending_in_batches(refs, lookup, retry_failed=retry_failed, batch=_LOOKUP_BATCH)

    def record(
        self, outcomes: Sequence[Outcome], *, run_id: int, source: str, fingerprint: str
    ) -> RecordedBatch:
        """Upsert one batch in one transaction; returns the outcomes as recorded (duplicate, quarantined)."""
        if not outcomes:
            return RecordedBatch()

        tries = 0

        def upsert(cur: psycopg.Cursor[Any]) -> list[Settled]:
            nonlocal tries
            tries += 1
            settled = self._settle(cur, outcomes, run_id, source, fingerprint, replay=tries > 1)
            rows = [
                _pg_safe(document_row(s, run_id=run_id, source=source, fingerprint=fingerprint))
                for s in settled
            ]
            cur.executemany(sql.UPSERT, rows)
            demoted = [_pg_safe(demote_row(s, source, fingerprint)) for s in settled if s.demote]
            if demoted:
                cur.executemany(sql.DEMOTE, demoted)
            return settled

        settled = self._write("cannot record outcomes", upsert)
        demotions = (d for s in settled if (d := s.demotion))
        return RecordedBatch((s.outcome for s in settled), demotions)

    def _settle(
        self,
        cur: psycopg.Cursor[Any],
        outcomes: Sequence[Outcome],
        run_id: int,
        source: str,
        fingerprint: str,
        *,
        replay: bool,
    ) -> list[Settled]:
        failed = {
            clean(o.ref.id): o.timings.finished for o in outcomes if o.status.value in ("failed", "crashed")
        }
        cur.execute(sql.SELECT_FAILURES, (source, fingerprint, list(failed)))
        failures = {row["path"]: _earlier_failures(row, run_id, failed, replay) for row in cur.fetchall()}
        firsts = self._firsts(cur, outcomes, source, fingerprint)
        return settle_batch(
            outcomes, failures=failures, firsts=firsts, quarantine_after=self.quarantine_after, run_id=run_id
        )

    def _firsts(
        self, cur: psycopg.Cursor[Any], outcomes: Sequence[Outcome], source: str, fingerprint: str
    ) -> dict[str, First]:
        wanted = {o.sha256: clean(o.ref.id) for o in outcomes if o.sha256 and o.status.value == "ok"}
        cur.execute(sql.SELECT_FIRSTS, (source, fingerprint, list(wanted)))
        firsts: dict[str, First] = {}
        for row in cur.fetchall():
            if row["path"] != wanted[row["sha256"]]:
                firsts.setdefault(row["sha256"], First(row["path"], row["result"] or {}, row["run_id"]))
        return firsts

    def forget(self, *, source: str, fingerprint: str) -> int:
        def delete(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(sql.FORGET, (source, fingerprint))
            return cur.rowcount

        return self._write("cannot forget documents", delete)

    def summary(self, run_id: int | None = None) -> Summary:
        where, params = self._where(Query(run_id=run_id))
        by_status = {r["status"]: r["n"] for r in self._all(sql.COUNT_BY_STATUS.format(where), params)}
        by_label = {r["label"]: r["n"] for r in self._all(sql.COUNT_BY_LABEL.format(where), params)}
        span = self._one(sql.SPAN.format(where), params) or {}
        return Summary(
            total=sum(by_status.values()),
            by_status=by_status,
            by_label=by_label,
            first_started=span.get("first_started"),
            last_finished=span.get("last_finished"),
            pages=int(span.get("pages") or 0),
        )

    def documents(self, query: Query) -> list[DocumentRecord]:
        where, params = self._where(query)
        text = f"{sql.SELECT_DOCUMENTS} {where} {sql.order_by(query)} LIMIT %s OFFSET %s"
        return [document_record(r) for r in self._all(text, (*params, query.limit, query.offset))]

    def iter_documents(self, query: Query) -> Iterator[DocumentRecord]:
        """Every document matching ``query`` in path order, streamed (limit, offset, order ignored)."""
        where, params = self._where(query)
        clause = f"{where} AND path > %s" if where else "WHERE path > %s"
        last = ""
        while True:
            text = f"{sql.SELECT_DOCUMENTS} {clause} ORDER BY path LIMIT {_LOOKUP_BATCH}"
            rows = self._all(text, (*params, last))
            yield from (document_record(r) for r in rows)
            if len(rows) < _LOOKUP_BATCH:
                return
            last = rows[-1]["path"]

    def count(self, query: Query) -> int:
        where, params = self._where(query)
        row = self._one(f"SELECT count(*) AS n FROM docmill_documents {where}", params)
        return int(row["n"]) if row else 0

    def document(self, path: str, *, run_id: int | None = None) -> DocumentRecord | None:
        where, params = self._where(Query(run_id=run_id))
        clause = f"{where} AND path = %s" if where else "WHERE path = %s"
        row = self._one(f"{sql.SELECT_DOCUMENTS} {clause} LIMIT 1", (*params, path))
        return None if row is None else document_record(row)

    def throughput(self, run_id: int, *, buckets: int = 60) -> list[tuple[float, int]]:
        """Documents finished per time slice of the run: (slice start, count), oldest first."""
        run = self.run(run_id)
        if run is None or buckets < 1:
            return []
        last = self._one(sql.FINISHED_SPAN, (run_id,))
        end = max(run.finished or run.heartbeat or time.time(), (last or {}).get("hi") or 0.0)
        width = max((end - run.started) / buckets, 1e-6)
        counts: dict[int, int] = {}
        for row in self._all(sql.THROUGHPUT, (run.started, width, run_id)):
            index = min(max(int(row["b"]), 0), buckets - 1)  # the last document ends exactly at `end`
            counts[index] = counts.get(index, 0) + int(row["n"])
        return [(run.started + i * width, counts.get(i, 0)) for i in range(buckets)]

    def _where(self, query: Query) -> tuple[str, tuple[Any, ...]]:
        """Scope a query as the SQLite journal does: to its run's (source, fingerprint), else the latest."""
        source, fingerprint = query.source, query.fingerprint
        if source is None and fingerprint is None:
            if query.run_id is not None:
                row = self._one(sql.SCOPE, (query.run_id,))
                if row is None:
                    return "WHERE false", ()  # an unknown run holds no documents
            else:
                row = self._one(sql.LATEST_SCOPE, ())
            source, fingerprint = (row["source"], row["fingerprint"]) if row else (None, None)
        return sql.where(query, source, fingerprint)

    def close(self) -> None:
        with self._lock:
            _pg_conn.close_quietly(self._conn)

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, action: str, op: Callable[[], T]) -> T:
        """``op()`` under the session's lock, healed across lost connections; errors as JournalError."""
        with self._lock:
            try:
                return self._healer.call(op, action)
            except psycopg.Error as exc:  # a reader's session refuses writes here too
                raise JournalError(f"{action}: {first_line(exc)}") from exc

    def _write(self, action: str, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """``work(cursor)`` in one transaction, replayed whole after a lost connection."""

        def once() -> T:
            with self._conn.transaction(), self._conn.cursor() as cur:
                result = work(cur)
                self._crash.before()
            self._crash.after()
            return result

        return self._call(action, once)

    def _execute(self, text: str, params: Sequence[Any]) -> None:
        self._write("journal write failed", lambda cur: cur.execute(text, params))

    def _one(self, text: str, params: Sequence[Any]) -> dict[str, Any] | None:
        rows = self._all(text, params)
        return rows[0] if rows else None

    def _all(self, text: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        def query() -> list[dict[str, Any]]:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute(text, params)
                return list(cur.fetchall()) if cur.description else []

        return self._call("journal query failed", query)


def _check_version(row: dict[str, Any] | None, schema: str | None) -> None:
    """A reader's check: a journal of this schema version is there (it never creates one)."""
    if row is None:
        where = f"schema {schema!r}" if schema else "this database"
        raise JournalError(f"no docmill journal in {where} (run `docmill run` first)")
    if row["value"] != str(SCHEMA_VERSION):
        raise JournalError(f"journal schema v{row['value']}, this docmill reads v{SCHEMA_VERSION}")


def _pg_safe(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """PostgreSQL text and jsonb cannot hold NUL: store it visibly, as the SQLite journal does odd bytes."""
    return tuple(
        v.replace("\x00", "\\x00").replace("\\u0000", "\\\\x00") if isinstance(v, str) else v for v in row
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _earlier_failures(
    row: Mapping[str, Any], run_id: int, finished: Mapping[str, float], replay: bool
) -> int:
    """A row's failures before this attempt. A batch replayed after a lost connection may find its
    own row, committed before the COMMIT's reply was lost (same run, same finish time): that
    attempt is counted already."""
    own = (
        replay
        and row["run_id"] == run_id
        and row["finished"]
        and row["finished"] == finished.get(row["path"])
    )
    return int(row["failures"]) - (1 if own else 0)
