"""A real run over the hostile inputs (stored ones + those make-big-inputs.py writes): it completes,
nothing hangs, no traceback, and each file ends as bad-inputs.csv says."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.journal.base import DocumentRecord, Query
from docmill.journal.sqlite import SqliteJournal

EXPECTED = {"error": {"failed", "quarantined"}, "ok-empty": {"empty"}, "ok": {"ok", "duplicate"}}
# make-big-inputs.py writes these; the ones listing must not open end as failures with a reason.
BIG_FAILURES = {
    "big/dangling-link.txt": "dangling symlink",
    "big/loop-a.txt": "symlink loop",
    "big/loop-b.txt": "symlink loop",
    "big/dir-loop/again": "loop",
    "big/named-pipe.txt": "named pipe",
    "big/decompression-bomb.docx": "",
}


@pytest.fixture(scope="module")
def hostile(shared_data: Path, bad_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "inputs"
    shutil.copytree(bad_inputs, root, symlinks=True)
    make = subprocess.run(
        [sys.executable, str(shared_data / "make-big-inputs.py"), str(root / "big")],
        capture_output=True,
        timeout=120,
    )
    assert make.returncode == 0, make.stderr
    return root


@pytest.fixture(scope="module")
def records(hostile: Path) -> dict[str, DocumentRecord]:
    db = hostile.parent / "j.db"
    cmd = [
        sys.executable, "-m", "docmill", "run", str(hostile), "--strategy", "processes", "--workers", "2",
        "--classifier", "none", "--db", str(db), "--timeout", "60", "--progress", "log",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    with SqliteJournal(db) as journal:
        return {r.path: r for r in journal.iter_documents(Query())}


def expectations(shared_data: Path) -> list[tuple[str, str]]:
    with (shared_data / "bad-inputs.csv").open(encoding="utf-8") as handle:
        return [(row["path"], row["expected"]) for row in csv.DictReader(handle)]


def test_each_stored_input_ends_as_expected(shared_data: Path, records: dict[str, DocumentRecord]) -> None:
    wrong = []
    for path, expected in expectations(shared_data):
        record = records.get(path)
        if record is None:
            wrong.append(f"{path}: not recorded")
        elif record.status not in EXPECTED[expected]:
            wrong.append(
                f"{path}: expected {expected}, got {record.status} "
                f"({record.error_type}: {record.error_message})"
            )
    assert not wrong, "\n".join(wrong)


def test_failures_carry_a_one_line_reason(records: dict[str, DocumentRecord]) -> None:
    for record in records.values():
        if record.status in ("failed", "quarantined", "crashed"):
            assert record.error_type and record.error_message, record.path
            assert "\n" not in record.error_message, record.path


def test_what_listing_cannot_open_fails_with_its_reason(records: dict[str, DocumentRecord]) -> None:
    for path, reason in BIG_FAILURES.items():
        record = records[path]
        assert record.status in ("failed", "quarantined"), (path, record.status)
        assert reason in (record.error_message or ""), (path, record.error_message)


def test_big_and_unreadable_files_are_recorded(records: dict[str, DocumentRecord]) -> None:
    assert records["big/single-line-50mb.txt"].status == "ok"
    assert records["big/huge-declared-length.pdf"].status in ("ok", "empty", "failed", "quarantined")
    locked = records["big/no-read-permission.txt"]
    expected = {"ok"} if os.geteuid() == 0 else {"failed", "quarantined"}  # root reads mode-000 files
    assert locked.status in expected, (locked.status, locked.error_message)
