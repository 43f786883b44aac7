"""A real ``docmill run`` process, interrupted by every combination of signals, exits 130, and the next
run records the rest: every document exactly once. The servers (``emulate``, ``serve``) exit 130 too."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal

# The real entry point (run_main) with a "slow" classifier taking SECONDS per document. With
# DOCMILL_TEST_TEARDOWN=FILE, the process's teardown writes FILE and then lingers a second, as a slow
# exit (pools, threads) does, so that a test can signal it after the run has finished its work.
LAUNCHER = """
import atexit, os, sys, time
from pathlib import Path
from docmill.processors.registry import CLASSIFIERS
from docmill.testing import SleepProcessor

def linger(marker):
    Path(marker).write_text("leaving")
    time.sleep(1.0)

def slow(arg, settings):
    if os.environ.get("DOCMILL_TEST_TEARDOWN"):
        atexit.register(linger, os.environ["DOCMILL_TEST_TEARDOWN"])
    return SleepProcessor(float(arg or 0.05))

CLASSIFIERS["slow"] = slow
from docmill.cli.main import run_main
run_main()
"""
N = 40
SECONDS = 0.1  # per document: a sequential run of N lasts 4 s, long enough to interrupt
INT, TERM, HUP = signal.SIGINT, signal.SIGTERM, signal.SIGHUP


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(N):
        (root / f"doc-{i:03d}.txt").write_text(f"document number {i}\n")
    return root


def start(
    corpus: Path, db: Path, *, strategy: str = "sequential", teardown: Path | None = None
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", LAUNCHER, "run", str(corpus), "--db", str(db), "--strategy", strategy,
           "--workers", "2", "--classifier", f"slow:{SECONDS}", "--progress", "log",
           "--commit-seconds", "0.1"]  # fmt: skip
    env = None if teardown is None else {**os.environ, "DOCMILL_TEST_TEARDOWN": str(teardown)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def recorded(db: Path) -> int:
    """Documents in the journal so far (0 while it is not created yet)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_for(predicate: object, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run ended or hung before it could be signalled: {proc.communicate()[1]}")


def send(proc: subprocess.Popen[str], signals: tuple[signal.Signals, ...], gap: float) -> tuple[int, str]:
    """Send ``signals`` ``gap`` seconds apart; returns the exit status and stderr."""
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(gap)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the run did not end after {[s.name for s in signals]}: {proc.communicate()[1]}")
    return proc.returncode, err


def assert_resumes(corpus: Path, db: Path, n: int = N) -> None:
    """A second run ends 0 and every document is recorded once, by exactly one of the runs."""
    again = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "run", str(corpus), "--db", str(db), "--strategy", "threads",
         "--workers", "8", "--classifier", f"slow:{SECONDS}", "--progress", "none"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    with SqliteJournal(db) as journal:
        paths = [r.path for r in journal.iter_documents(Query())]
        runs = journal.runs()
    assert len(paths) == len(set(paths)) == n, "a document is missing or recorded twice"
    assert sum(int(r.stats["done"]) for r in runs) == n, "a document was recorded by two runs"
    assert max(runs, key=lambda r: r.id).state == "done"
    assert all(r.state in ("done", "interrupted") for r in runs)


COMBINATIONS = [
    pytest.param((INT,), 0.0, "sequential", id="SIGINT"),
    pytest.param((INT, INT), 0.02, "sequential", id="SIGINT-twice-at-once"),
    pytest.param((INT, INT), 0.12, "sequential", id="SIGINT-twice-while-stopping"),
    pytest.param((INT, INT, INT), 0.0, "sequential", id="SIGINT-three-times"),
    pytest.param((TERM,), 0.0, "sequential", id="SIGTERM"),
    pytest.param((TERM, TERM), 0.02, "sequential", id="SIGTERM-twice"),
    pytest.param((TERM, INT), 0.02, "sequential", id="SIGTERM-then-SIGINT"),
    pytest.param((HUP,), 0.0, "sequential", id="SIGHUP"),
    pytest.param((INT, INT), 0.02, "processes", id="SIGINT-twice-processes"),
    pytest.param((TERM, INT), 0.02, "threads", id="SIGTERM-then-SIGINT-threads"),
]


@pytest.mark.parametrize(("signals", "gap", "strategy"), COMBINATIONS)
def test_an_interrupted_run_exits_130_and_the_next_run_records_the_rest(
    corpus: Path, tmp_path: Path, signals: tuple[signal.Signals, ...], gap: float, strategy: str
) -> None:
    db = tmp_path / "j.db"
    proc = start(corpus, db, strategy=strategy)
    wait_for(lambda: recorded(db) > 0, proc)
    status, err = send(proc, signals, gap)
    assert status == 130, err
    assert "Traceback" not in err
    assert 0 < recorded(db) < N
    assert_resumes(corpus, db)


@pytest.mark.parametrize("signals", [(INT,), (TERM,), (INT, INT)], ids=["SIGINT", "SIGTERM", "SIGINT-twice"])
def test_a_signal_while_the_finished_run_shuts_down_exits_130(
    corpus: Path, tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    db, marker = tmp_path / "j.db", tmp_path / "leaving"
    for doc in sorted(corpus.iterdir())[8:]:
        doc.unlink()  # 8 documents: the run's work is done in about a second
    proc = start(corpus, db, teardown=marker)
    wait_for(marker.exists, proc)
    status, err = send(proc, signals, 0.02)
    assert status == 130, err
    assert "Traceback" not in err
    with SqliteJournal(db) as journal:
        assert journal.count(Query()) == 8 and [r.state for r in journal.runs()] == ["done"]
    assert_resumes(corpus, db, 8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [INT, TERM, HUP], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["emulate", "serve"])
def test_servers_stopped_by_any_signal_exit_130(tmp_path: Path, command: str, sig: signal.Signals) -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "docmill", command, "--port", str(port)]
    if command == "serve":
        SqliteJournal(tmp_path / "j.db").close()
        argv += ["--db", str(tmp_path / "j.db")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _listening(port), proc)
    status, err = send(proc, (sig,), 0.0)
    assert status == 130, err
    assert "Traceback" not in err
