"""Readers (status, export, failures, eval, serve) on a journal the user may only read.

The journal is written by a real run; the readers then run in a subprocess as an unprivileged user
(``setpriv`` to uid 65534 when the tests run as root, who ignores file permissions). Each must print
the right figures and leave the journal's folder exactly as it was: no ``-wal``/``-shm``, same bytes.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docmill.cli.main import main
from docmill.journal import open_journal
from docmill.journal.base import RunInfo
from docmill.testing import TWO_LABELS

NOBODY = 65534
DOCMILL = str(Path(sys.executable).with_name("docmill"))
DOCS = {
    "a.txt": "INVOICE 2024-001. Amount due: 300 EUR. Payment terms: 30 days.",
    "b.txt": "Invoice. The amount due is listed below. Payment terms apply.",
    "soup.txt": "Ingredients: two onions. Simmer for an hour, add a tablespoon of salt.",
    "broken.pdf": "this is not a PDF at all",
}


def reader(*args: str) -> list[str]:
    """``docmill ARGS`` as a user who may not write the journal: uid 65534 when we are root."""
    if os.geteuid() == 0:
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", DOCMILL, *args]
    return [DOCMILL, *args]


def read(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a reader to its end; it must exit 0 with no traceback."""
    done = subprocess.run(reader(*args), capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of ``folder``: the sha256 of its bytes and its owner."""
    files = sorted(folder.iterdir())
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_uid) for p in files}


@functools.cache
def unprivileged_python_fails() -> str:
    """Why uid 65534 cannot start this interpreter ("" when it can): some builds load their
    shared library from a folder only root may enter."""
    if os.geteuid() != 0:
        return ""
    done = subprocess.run(reader("--help"), capture_output=True, text=True, timeout=60, cwd="/")
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path is root's alone), removed afterwards."""
    why = unprivileged_python_fails()
    if why:
        pytest.skip(f"uid {NOBODY} cannot run this Python: {why}")
    path = Path(tempfile.mkdtemp(prefix="docmill-ro-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(path)


def write_journal(base: Path) -> Path:
    """A journal written by a real run, alone in ``base/journal``; plus a writable ``base/out``."""
    corpus = base / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "labels.yaml").write_text(TWO_LABELS)
    (base / "journal").mkdir()
    db = base / "journal" / "docmill.db"
    argv = ["run", str(corpus), "--db", str(db), "--strategy", "sequential", "--progress", "log"]
    assert main(argv) == 0
    out = base / "out"
    out.mkdir()
    out.chmod(0o777)
    (out / "truth.csv").write_text("path,label\na.txt,invoice\nb.txt,invoice\nsoup.txt,invoice\n")
    return db


@pytest.fixture(params=["file-444-folder-555", "another-users-journal"])
def journal(request: pytest.FixtureRequest, base: Path) -> Path:
    """(a) the file 444 in a folder 555; (b) a journal owned by another user (root, folder 755)."""
    db = write_journal(base)
    if request.param == "another-users-journal":
        if os.geteuid() != 0:
            pytest.skip("needs root, to read the journal as another user")
        db.chmod(0o644)
    else:
        db.chmod(0o444)
        db.parent.chmod(0o555)
    return db


def test_status_figures(journal: Path) -> None:
    before = snapshot(journal.parent)
    data = json.loads(read("status", "--db", str(journal), "--json").stdout)
    assert data["documents"] == 4 and data["failures"] == 1 and data["run"]["state"] == "done"
    assert data["by_label"] == {"invoice": 2, "recipe": 1}
    assert "documents 4/4" in read("status", "--db", str(journal)).stdout
    watched = json.loads(read("status", "--db", str(journal), "--watch", "--json").stdout)
    assert watched["documents"] == 4
    runs = json.loads(read("status", "--db", str(journal), "--runs", "--json").stdout)["runs"]
    assert [r["state"] for r in runs] == ["done"]
    assert snapshot(journal.parent) == before


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_every_format(journal: Path, fmt: str) -> None:
    before = snapshot(journal.parent)
    out = journal.parent.parent / "out" / f"results.{fmt}"
    read("export", "--db", str(journal), "--format", fmt, "-o", str(out))
    if fmt == "csv":
        rows = {r["path"]: r for r in csv.DictReader(out.open())}
    elif fmt == "jsonl":
        rows = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    else:
        pq = pytest.importorskip("pyarrow.parquet")
        rows = {r["path"]: r for r in pq.read_table(out).to_pylist()}
    assert set(rows) == set(DOCS) and rows["soup.txt"]["label"] == "recipe"
    assert snapshot(journal.parent) == before


def test_export_to_stdout_failures_and_eval(journal: Path) -> None:
    before = snapshot(journal.parent)
    rows = list(csv.DictReader(io.StringIO(read("export", "--db", str(journal), "-o", "-").stdout)))
    assert len(rows) == 4
    failures = read("failures", "--db", str(journal)).stdout.splitlines()
    assert len(failures) == 1 and failures[0].startswith("broken.pdf\t")
    truth = str(journal.parent.parent / "out" / "truth.csv")
    report = json.loads(read("eval", "--truth", truth, "--db", str(journal), "--json").stdout)
    assert report["n"] == 3 and report["accuracy"] == pytest.approx(2 / 3)
    assert snapshot(journal.parent) == before


def test_serve(journal: Path) -> None:
    before = snapshot(journal.parent)
    port = _free_port()
    server = subprocess.Popen(
        reader("serve", "--db", str(journal), "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd="/",
    )
    try:
        health = _get_json(f"http://127.0.0.1:{port}/healthz", server)
        assert health == {"status": "ok", "runs": 1}
        run = _get_json(f"http://127.0.0.1:{port}/api/runs/1", server)
        assert run["state"] == "done" and run["summary"]["by_status"]["ok"] == 3
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/export.csv", timeout=10) as reply:
            assert len(list(csv.DictReader(io.StringIO(reply.read().decode())))) == 4
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()
    assert snapshot(journal.parent) == before


def test_status_reads_a_live_writer_from_a_folder_it_cannot_write(base: Path) -> None:
    db = write_journal(base)
    writer = open_journal(str(db))  # a run in progress: its -wal and -shm are beside the file
    try:
        writer.heartbeat(writer.begin_run(RunInfo("live", "f", "sequential", 1)), {"total": 9})
        db.parent.chmod(0o555)
        before = snapshot(db.parent)
        assert {"docmill.db-wal", "docmill.db-shm"} <= set(before)
        data = json.loads(read("status", "--db", str(db), "--json").stdout)
        assert data["run"]["state"] == "running" and data["run"]["source"] == "live"
        assert snapshot(db.parent) == before  # the writer's files, still the writer's
    finally:
        db.parent.chmod(0o755)
        writer.close()


def test_missing_journal_is_one_line_and_creates_nothing(base: Path) -> None:
    folder = base / "empty"
    folder.mkdir()
    folder.chmod(0o777)
    db = str(folder / "docmill.db")
    truth = folder / "truth.csv"
    truth.write_text("path,label\na.txt,invoice\n")
    readers = (("status",), ("export", "-o", "-"), ("failures",), ("eval", "--truth", str(truth)), ("serve",))
    for args in readers:
        done = subprocess.run(reader(*args, "--db", db), capture_output=True, text=True, timeout=60, cwd="/")
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("docmill: error: no journal at") and done.stderr.count("\n") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["truth.csv"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """GET ``url`` once the server answers (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                body: dict[str, Any] = json.loads(reply.read())
                return body
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
