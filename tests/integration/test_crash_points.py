"""Crash points, swept (SQLite's own crash-test method): a real ``docmill run`` SIGKILLs itself right
before or right after its k-th journal commit (``DOCMILL_CRASH_AT``), for k = 1, 2, … until a run
gets through; after each crash a plain re-run resumes, and the journal must hold every document
once, with the labels of an uninterrupted run, and pass ``PRAGMA integrity_check`` (PostgreSQL: no
two rows share a key). The default tier checks a few points; the whole sweep is ``slow``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.config import RunConfig
from docmill.journal import open_journal
from docmill.journal.base import Query
from docmill.runner import run_config
from docmill.testing import crash_env, write_corpus

N_DOCS = 24
COMMIT_EVERY = 4  # begin_run, 6 batches, end_run: about 8 commits (heartbeats may add some)
PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SRC = Path(__file__).resolve().parents[2] / "src"
Results = Counter[tuple[str, str, str | None]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = ("invoice: amount due, payment terms", "tablespoon, oven, simmer the ingredients")
    docs = {f"d{i:03d}.txt": f"{texts[i % 2]} ({i})" for i in range(N_DOCS)}
    return write_corpus(tmp_path_factory.mktemp("corpus"), docs)


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    """The results of an uninterrupted run."""
    db = str(tmp_path_factory.mktemp("reference") / "reference.db")
    config = RunConfig(source=str(corpus), strategy="sequential", labels=str(corpus / "labels.yaml"), db=db)
    run_config(config)
    found = results(db)
    assert sum(found.values()) == N_DOCS and {label for _, _, label in found} == {"invoice", "recipe"}
    return found


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema's journal target (its name a prefix of the sweep's); skips in one line when
    PostgreSQL does not answer."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_crash_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    yield f"{PG_URL}?schema={schema}"  # the sweep adds _1, _2, …: dropped too
    names = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (schema + "%",)).fetchall()
    for (name,) in names:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    conn.close()


def docmill_run(corpus: Path, db: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--labels", str(corpus / "labels.yaml")]
    argv += [
        "--db",
        db,
        "--strategy",
        "sequential",
        "--commit-every",
        str(COMMIT_EVERY),
        "--progress",
        "none",
    ]
    full = {**os.environ, "PYTHONPATH": str(SRC), **env}
    return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=120, check=False)


def results(db: str) -> Results:
    """(path, status, label) of every row; a document recorded twice is a failure."""
    journal = open_journal(db, read_only=True)
    try:
        records = list(journal.iter_documents(Query()))
        states = [r.state for r in journal.runs()]
    finally:
        journal.close()
    paths = [r.path for r in records]
    assert len(paths) == len(set(paths)), "a document is recorded twice"
    assert states[0] == "done" and all(s in ("done", "interrupted") for s in states), states
    return Counter((r.path, r.status, r.label) for r in records)


def crash_and_resume(corpus: Path, db: str, point: str, k: int) -> bool:
    """Crash at ``point`` of commit ``k``, resume; False when the run had fewer than k commits."""
    crashed = docmill_run(corpus, db, crash_env(point, k))
    if crashed.returncode == 0:
        return False
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = docmill_run(corpus, db, {})
    assert resumed.returncode == 0, resumed.stderr
    return True


def check_sqlite(db: str, reference: Results) -> None:
    assert results(db) == reference
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        twice = "SELECT 1 FROM documents GROUP BY source, path, fingerprint HAVING count(*) > 1"
        keys = f"SELECT count(*) FROM ({twice})"
        assert conn.execute(keys).fetchone() == (0,)


def check_postgres(target: str, reference: Results) -> None:
    assert results(target) == reference
    journal = open_journal(target, read_only=True)
    try:
        assert journal.count(Query()) == N_DOCS  # every row within the run's scope, none twice
    finally:
        journal.close()


@pytest.mark.parametrize(("point", "k"), [("before-commit", 3), ("after-commit", 4)])
def test_sqlite_resumes_from_a_crash_at_a_commit(
    corpus: Path, reference: Results, tmp_path: Path, point: str, k: int
) -> None:
    db = str(tmp_path / "crash.db")
    assert crash_and_resume(corpus, db, point, k)
    check_sqlite(db, reference)


@pytest.mark.postgres
def test_postgres_resumes_from_a_crash_at_a_commit(corpus: Path, reference: Results, pg_schema: str) -> None:
    assert crash_and_resume(corpus, pg_schema, "before-commit", 3)
    check_postgres(pg_schema, reference)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_sqlite_every_crash_point_until_a_run_gets_through(
    corpus: Path, reference: Results, tmp_path: Path, point: str
) -> None:
    k = 1
    while crash_and_resume(corpus, str(tmp_path / f"{point}-{k}.db"), point, k):
        check_sqlite(str(tmp_path / f"{point}-{k}.db"), reference)
        k += 1
    assert k > N_DOCS // COMMIT_EVERY + 2, f"only {k - 1} commits: the hook missed some"
    print(f"{point}: {k - 1} crash points, each resumed: 0 lost, 0 duplicate, labels equal")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_postgres_every_crash_point_until_a_run_gets_through(
    corpus: Path, reference: Results, pg_schema: str, point: str
) -> None:
    k = 1
    while crash_and_resume(corpus, f"{pg_schema}_{k}", point, k):
        check_postgres(f"{pg_schema}_{k}", reference)
        k += 1
    assert k > N_DOCS // COMMIT_EVERY + 2, f"only {k - 1} commits: the hook missed some"
    print(f"{point}: {k - 1} crash points, each resumed: 0 lost, 0 duplicate, labels equal")
