"""``docmill run --broker --queue`` (and ``broker:``/``queue:`` in docmill.yaml) reach a real Celery run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import Workers, running_workers

from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal

pytestmark = [pytest.mark.celery, pytest.mark.redis]

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens there: a run that used it could not finish


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with running_workers(1) as pool:
        yield pool


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(12):
        (root / f"doc-{i:02}.txt").write_text(f"document number {i}\n")
    return root


def docmill_run(
    corpus: Path, db: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCMILL_BROKER": NOWHERE, "DOCMILL_QUEUE": "docmill-test-unserved"}
    argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--strategy", "celery", "--workers", "1",
            "--classifier", "none", "--db", str(db), "--progress", "none", *args]  # fmt: skip
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def recorded(db: Path) -> tuple[int, str]:
    with SqliteJournal(db) as journal:
        (run,) = journal.runs()
        return journal.count(Query(run_id=run.id, status=("ok", "empty"))), run.config["queue"]


def test_broker_and_queue_flags_override_the_environment(
    workers: Workers, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "flags.db"
    done = docmill_run(corpus, db, "--broker", workers.broker, "--queue", workers.queue)
    assert done.returncode == 0, done.stderr[-2000:]
    assert recorded(db) == (12, workers.queue)


def test_broker_and_queue_from_docmill_yaml(workers: Workers, corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "docmill.yaml").write_text(f"broker: {workers.broker}\nqueue: {workers.queue}\n")
    db = tmp_path / "yaml.db"
    done = docmill_run(corpus, db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert recorded(db) == (12, workers.queue)
