"""Journal queries both backends answer in SQL: error-type filter, recent-first order, demotions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from docmill.document import DocumentRef
from docmill.errors import ConfigError
from docmill.journal import open_journal
from docmill.journal.base import Demotion, Journal, Query, RunInfo
from docmill.outcome import ErrorInfo, Outcome, Status, Timings

PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SRC, FP = "/corpus", "fp1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def journal(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Journal]:
    if request.param == "sqlite":
        j = open_journal(str(tmp_path / "j.db"))  # type: ignore[operator]
        yield j
        j.close()
        return
    yield from _postgres()


def _postgres() -> Iterator[Journal]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"q_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    j = open_journal(f"{PG_URL}?schema={schema}")
    yield j
    j.close()
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def outcome(
    path: str, status: Status, *, sha: str | None = None, error: str | None = None, at: float = 2.0
) -> Outcome:
    info = ErrorInfo(error, "boom", "tb", False) if error else None
    result = {"label": "a"} if status is Status.OK else None
    ref = DocumentRef(id=path, uri=f"{SRC}/{path}", size=1, mtime_ns=1)
    return Outcome(ref, status, sha or f"s-{path}", result, info, 1, Timings(1.0, at, "w"))


def begin(journal: Journal) -> int:
    return journal.begin_run(RunInfo(SRC, FP, "sequential", 1))


def paths(rows: object) -> list[str]:
    return [r.path for r in rows]  # type: ignore[attr-defined]


def test_failures_filter_by_error_type_or_status_in_sql(journal: Journal) -> None:
    run = begin(journal)
    journal.record(
        [
            outcome("a", Status.FAILED, error="CorruptDocument"),
            outcome("b", Status.FAILED, error="Timeout"),
            outcome("c", Status.CRASHED),
            outcome("d", Status.FAILED, error="CorruptDocument"),
            outcome("e", Status.OK),
        ],
        run_id=run, source=SRC, fingerprint=FP,
    )  # fmt: skip
    corrupt = Query(run_id=run, error_type="CorruptDocument")
    assert paths(journal.documents(corrupt)) == ["a", "d"] and journal.count(corrupt) == 2
    crashed = Query(run_id=run, error_type="crashed")  # a crash without error info: by its status
    assert paths(journal.documents(crashed)) == ["c"] and paths(journal.iter_documents(crashed)) == ["c"]
    assert journal.count(Query(run_id=run, error_type="Nope")) == 0


def test_recent_order_is_finished_newest_first_then_path(journal: Journal) -> None:
    run = begin(journal)
    times = {"a": 3.0, "b": 9.0, "c": 5.0, "d": 9.0, "e": 1.0}
    batch = [outcome(p, Status.OK, at=t) for p, t in times.items()]
    journal.record(batch, run_id=run, source=SRC, fingerprint=FP)
    assert paths(journal.documents(Query(run_id=run, order="recent"))) == ["b", "d", "c", "a", "e"]
    assert paths(journal.documents(Query(run_id=run, order="recent", limit=2, offset=1))) == ["d", "c"]
    assert paths(journal.documents(Query(run_id=run))) == ["a", "b", "c", "d", "e"]
    assert paths(journal.iter_documents(Query(run_id=run, order="recent"))) == ["a", "b", "c", "d", "e"]
    with pytest.raises(ConfigError, match="order"):
        journal.documents(Query(run_id=run, order="size"))


def test_record_reports_the_ok_rows_it_demotes(journal: Journal) -> None:
    first, second = begin(journal), begin(journal)
    journal.record([outcome("m", Status.OK, sha="same")], run_id=first, source=SRC, fingerprint=FP)
    late = journal.record(
        [outcome("z", Status.OK, sha="same"), outcome("k", Status.OK, sha="same")],
        run_id=second, source=SRC, fingerprint=FP,
    )  # fmt: skip
    assert [o.status for o in late] == [Status.DUPLICATE, Status.OK]
    assert late.demoted == (Demotion("m", first),)
    within = journal.record(
        [outcome(p, Status.OK, sha="x") for p in ("y", "b", "a")],
        run_id=second, source=SRC, fingerprint=FP,
    )  # fmt: skip
    assert within.demoted == (Demotion("y", second), Demotion("b", second))
    summary = journal.summary(second)
    assert summary.by_status == {"duplicate": 4, "ok": 2}
    assert journal.record([], run_id=second, source=SRC, fingerprint=FP).demoted == ()
