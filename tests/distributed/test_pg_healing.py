"""The PostgreSQL journal heals: its connections cut with ``pg_terminate_backend`` (what a failover or
a restarted pgbouncer does) during a live run, once and three times, and the run ends as if nothing
happened; a cut longer than the budget ends the run with one line, and the next run finishes it.

Only this test's own sessions are cut: they carry an application_name of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from distributed_helpers import PG_URL, SRC

from docmill.journal.base import RunInfo
from docmill.journal.postgres import PostgresJournal
from docmill.outcome import Outcome, Status
from docmill.runner import run
from docmill.testing import MemorySource, SleepProcessor, ref_for, write_corpus

psycopg = pytest.importorskip("psycopg")

if TYPE_CHECKING:
    from psycopg import Connection

    Admin = Connection[tuple[Any, ...]]

pytestmark = pytest.mark.postgres

N_DOCS = 400


@pytest.fixture
def app() -> str:
    return f"docmill-heal-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin() -> Iterator[Admin]:
    conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    yield conn
    conn.close()


def cut(admin: Admin, app: str) -> int:
    """Terminate every session whose application_name starts with ``app``; returns how many."""
    sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE %s"
    row = admin.execute(sql, (app + "%",)).fetchone()
    return int(row[0]) if row else 0


def rows(admin: Admin, target: str) -> tuple[int, int]:
    """(rows, distinct keys) of the journal's documents table."""
    schema = target.rpartition("schema=")[2].partition("&")[0]
    sql = f'SELECT count(*), count(DISTINCT (source, path, fingerprint)) FROM "{schema}".docmill_documents'
    try:
        row = admin.execute(sql).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0, 0
    assert row is not None
    return int(str(row[0])), int(str(row[1]))


def ok(i: int) -> Outcome:
    return Outcome(ref_for(i), Status.OK, f"sha{i}", {"label": "x"})


def test_a_journal_reconnects_and_replays_after_its_session_is_terminated(
    pg_target: str, app: str, admin: Admin
) -> None:
    target = f"{pg_target}&application_name={app}"
    with PostgresJournal(target) as journal:
        run_id = journal.begin_run(RunInfo("/src", "fp", "sequential", 1))
        journal.record([ok(0), ok(1)], run_id=run_id, source="/src", fingerprint="fp")
        assert cut(admin, app) == 1
        recorded = journal.record([ok(1), ok(2)], run_id=run_id, source="/src", fingerprint="fp")
        assert [o.status for o in recorded] == [Status.OK, Status.OK]
        assert cut(admin, app) == 1
        pending = journal.pending([ref_for(i) for i in range(4)], source="/src", fingerprint="fp")
        assert [r.id for r in pending] == [ref_for(3).id]  # a read heals too
        assert cut(admin, app) == 1
        journal.heartbeat(run_id, {"done": 3})
        assert journal._healer.healed == 3
    assert rows(admin, target) == (3, 3)


class Cutter(threading.Thread):
    """Once the run has begun: starts ``docmill status --watch`` on its journal, then cuts every
    session of ``app`` (the run's and the watcher's) each time the journal reaches one of
    ``at`` rows past the count when the watcher connected, then waits for a heartbeat of the still
    running run after the last cut."""

    def __init__(self, admin: Admin, target: str, app: str, at: list[int]) -> None:
        super().__init__(daemon=True)
        self.admin, self.target, self.app, self.at = admin, target, app, at
        self.cuts: list[int] = []
        self.watcher: subprocess.Popen[str] | None = None
        self.beat_after_cut = False
        self.done = threading.Event()

    def run(self) -> None:
        if not self._until(lambda: rows(self.admin, self.target)[0] > 0):
            return
        self.watcher = watch(f"{self.target}-watch")
        if not self._until(lambda: self._sessions(self.app + "-watch") > 0):
            return
        base = rows(self.admin, self.target)[0]
        for step in self.at:
            if not self._until(lambda s=step: self._ready(base + s)):  # type: ignore[misc]
                return
            self.cuts.append(cut(self.admin, self.app))
        after = time.time()
        self.beat_after_cut = self._until(lambda: self._beat_since(after))

    def _until(self, ready: Callable[[], bool]) -> bool:
        while not ready():
            if self.done.wait(0.01):
                return False
        return True

    def _ready(self, threshold: int) -> bool:
        """``threshold`` rows recorded, and both the run and the watcher connected (again)."""
        both = self._sessions(self.app) and self._sessions(self.app + "-watch")
        return bool(both) and rows(self.admin, self.target)[0] >= threshold

    def _sessions(self, name: str) -> int:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        row = self.admin.execute(sql, (name,)).fetchone()
        return int(str(row[0])) if row else 0

    def _beat_since(self, moment: float) -> bool:
        row = self.admin.execute(
            f"SELECT heartbeat, state FROM {schema(self.target)}.docmill_runs"
        ).fetchone()
        return row is not None and row[1] == "running" and float(str(row[0] or 0)) > moment


def watch(target: str) -> subprocess.Popen[str]:
    """``docmill status --watch --json`` on the journal, every 0.1 s."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [
        sys.executable,
        "-m",
        "docmill",
        "status",
        "--watch",
        "--json",
        "--interval",
        "0.1",
        "--db",
        target,
    ]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("cuts", [1, 3])
def test_a_live_run_its_heartbeat_and_its_watcher_ride_out_cut_connections(
    pg_target: str, app: str, admin: Admin, cuts: int
) -> None:
    target = f"{pg_target}&application_name={app}"  # the watcher's sessions: {app}-watch
    cutter = Cutter(admin, target, app, [40 * (k + 1) for k in range(cuts)])
    journal = PostgresJournal(target)
    try:
        cutter.start()
        source, slow = MemorySource(N_DOCS), SleepProcessor(0.02)
        result = run(
            source, slow, executor="threads", workers=2, journal=journal, commit_every=5, commit_seconds=0.2
        )
        cutter.join(5)
        assert cutter.watcher is not None and cutter.watcher.wait(20) == 0
        out, _ = cutter.watcher.communicate()
    finally:
        cutter.done.set()
        journal.close()
        if cutter.watcher is not None and cutter.watcher.poll() is None:
            cutter.watcher.kill()
            cutter.watcher.communicate()
    assert cutter.cuts == [2] * cuts  # the run's session and the watcher's, each time
    assert result.stopped is None and result.stats.done == N_DOCS
    assert rows(admin, target) == (N_DOCS, N_DOCS)
    assert cutter.beat_after_cut, "no heartbeat of the running run after the last cut"
    assert json.loads(out.strip().splitlines()[-1])["run"]["state"] == "done"  # the watcher saw the end
    assert journal._healer.healed >= cuts


def schema(target: str) -> str:
    return '"' + target.rpartition("schema=")[2].partition("&")[0] + '"'


class Proxy(threading.Thread):
    """A TCP relay to PostgreSQL; ``close()`` is the server's host vanishing: every connection
    through it drops and new ones are refused (nothing listens on its port any more)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        super().__init__(daemon=True)
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)


def docmill_run(corpus: Path, db: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--labels", str(corpus / "labels.yaml")]
    argv += ["--db", db, "--strategy", "sequential", "--commit-every", "10", "--progress", "none", *extra]
    return subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_a_cut_longer_than_the_budget_ends_the_run_with_one_line_and_the_next_run_finishes(
    pg_target: str, app: str, admin: Admin, tmp_path: Path
) -> None:
    n = 1000
    texts = ("invoice amount due payment terms", "tablespoon oven simmer ingredients")
    corpus = write_corpus(tmp_path / "corpus", {f"d{i:05d}.txt": f"{texts[i % 2]} {i}" for i in range(n)})
    (tmp_path / "docmill.yaml").write_text("journal: {reconnect_seconds: 1.5}\n")
    proxy = Proxy()
    proxy.start()
    through = pg_target.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + f"&application_name={app}"
    assert through != pg_target
    proc = docmill_run(corpus, through, "--config", str(tmp_path / "docmill.yaml"))
    try:
        deadline = time.monotonic() + 30
        while rows(admin, pg_target)[0] == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proxy.close()  # the host is gone for good: no reconnect can succeed
        began = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        proxy.close()
        if proc.poll() is None:
            proc.kill()
    took = time.monotonic() - began
    errors = [line for line in err.splitlines() if line.startswith("docmill: error:")]
    assert proc.returncode == 1, err
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "PostgreSQL journal connection" in errors[0] and "gave up after 1." in errors[0], errors[0]
    assert "retrying for up to 1.5 s" in err
    assert 1.0 < took < 15, took  # bounded: the budget once (then each operation fails at once)
    recorded = rows(admin, pg_target)[0]
    assert 0 < recorded < n
    resumed = docmill_run(corpus, f"{pg_target}&application_name={app}")
    assert resumed.wait(60) == 0, resumed.communicate()[1]
    assert rows(admin, pg_target) == (n, n)
