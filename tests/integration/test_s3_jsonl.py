"""``.jsonl`` objects in ``s3://`` sources: one document per record, split and resumed as a local JSONL
file is, against the real S3 protocol server of tests/s3_server.py (moto server mode)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_run_manpages import write_labels
from test_s3_source import labels_of, put, run

from docmill.errors import SourceError
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.sources.jsonl import lines_of
from docmill.sources.s3 import S3Source
from docmill.testing import crash_env
from s3_server import S3

SRC = Path(__file__).resolve().parents[2] / "src"


def records(manpages: Path, start: int, count: int) -> bytes:
    """``count`` man pages (text ones) as JSONL records ``{"id", "text"}``, a blank line among them."""
    pages = sorted(manpages.rglob("*.txt"))[start : start + count]
    lines = [json.dumps({"id": p.stem, "text": p.read_text(errors="replace")}) for p in pages]
    lines.insert(3, "")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_lines_of_a_stream_are_those_of_the_file(size: int) -> None:
    data = b'{"id": 1}\n\n{"id": 2, "text": "a\\nb"}\r\n   \n{"id": 3}'
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(lines_of(chunks)) == list(io.BytesIO(data))


def test_jsonl_objects_give_the_records_and_labels_of_the_local_files(
    s3: S3, manpages: Path, tmp_path: Path
) -> None:
    parts = {"part-1.jsonl": records(manpages, 0, 20), "more/part-2.ndjson": records(manpages, 20, 15)}
    parts["part-1.jsonl"] += b'{"id": "broken", "text": \n[1, 2]\n'  # malformed, then not an object
    for name, body in parts.items():
        put(s3, f"j/{name}", body)
        (tmp_path / name.replace("/", "-")).write_bytes(body)
    put(s3, "j/notes.txt", b"an ordinary object beside the JSONL ones")
    remote = labels_of_run(run(s3.url("j"), tmp_path, "s3"), tmp_path / "s3.db")
    expected = {}
    for name in parts:
        local = name.replace("/", "-")
        run(str(tmp_path / local), tmp_path, local)
        expected.update({f"{name}#{k}": v for k, v in labels_of(tmp_path / f"{local}.db").items()})
    assert {k: v for k, v in remote.items() if k != "notes.txt"} == expected
    assert len(expected) == 20 + 15 + 2 and "notes.txt" in remote
    assert S3Source(s3.url("j")).count() is None  # not known without downloading the objects twice
    assert S3Source(s3.url("j"), include=["*.txt"]).count() == 1
    single = run(s3.url("j/part-1.jsonl"), tmp_path, "single")
    assert single.stats.done == 22
    assert labels_of(tmp_path / "single.db") == labels_of(tmp_path / "part-1.jsonl.db")


def labels_of_run(result: object, db: Path) -> dict[str, tuple[str, str | None]]:
    assert getattr(result, "stopped", None) is None
    return labels_of(db)


def test_a_second_run_reads_only_changed_and_new_records(s3: S3, manpages: Path, tmp_path: Path) -> None:
    body = records(manpages, 0, 12)
    put(s3, "r/docs.jsonl", body)
    assert run(s3.url("r"), tmp_path, "j").stats.done == 12
    again = run(s3.url("r"), tmp_path, "j")
    assert (again.stats.done, again.stats.skipped) == (0, 12)
    lines = body.decode().splitlines()
    edited = json.loads(lines[1]) | {"text": "a manual page, rewritten"}
    lines[1] = json.dumps(edited)  # another length: processed again; the lines after it only moved
    appended = json.dumps({"id": "new-page", "text": "a manual page added at the end"})
    put(s3, "r/docs.jsonl", ("\n".join([*lines, appended]) + "\n").encode())
    third = run(s3.url("r"), tmp_path, "j")
    assert (third.stats.done, third.stats.skipped) == (2, 11)
    with SqliteJournal(tmp_path / "j.db") as journal:
        assert journal.count(Query()) == 13


def docmill_run(source: str, db: Path, labels: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "docmill", "run", source, "--labels", str(labels), "--db", str(db)]
    argv += ["--strategy", "processes", "--workers", "2", "--commit-every", "4", "--progress", "none"]
    full = {**os.environ, "PYTHONPATH": str(SRC), **env}
    return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=120, check=False)


def test_a_run_killed_mid_object_resumes_without_loss_or_duplicates(
    s3: S3, manpages: Path, tmp_path: Path
) -> None:
    put(s3, "k/a.jsonl", records(manpages, 0, 16))
    put(s3, "k/b.jsonl", records(manpages, 16, 16))
    labels = write_labels(tmp_path)
    reference = docmill_run(s3.url("k"), tmp_path / "ref.db", labels, {})
    assert reference.returncode == 0, reference.stderr
    crashed = docmill_run(s3.url("k"), tmp_path / "j.db", labels, crash_env("after-commit", 3))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    partial = len(labels_of(tmp_path / "j.db"))
    assert 0 < partial < 32
    resumed = docmill_run(s3.url("k"), tmp_path / "j.db", labels, {})
    assert resumed.returncode == 0, resumed.stderr
    with SqliteJournal(tmp_path / "j.db") as journal:
        paths = [r.path for r in journal.iter_documents(Query())]
    assert len(paths) == len(set(paths)) == 32  # none lost, none twice
    assert labels_of(tmp_path / "j.db") == labels_of(tmp_path / "ref.db")


def test_a_record_whose_object_vanished_is_a_retryable_failure(s3: S3, tmp_path: Path) -> None:
    put(s3, "v/docs.jsonl", b'{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta"}\n')
    source = S3Source(s3.url("v"))
    first, _ = list(source)
    assert (first.id, first.offset, first.size) == ("docs.jsonl#a", 0, 29)
    assert source.load(first).text == "alpha"
    s3.client.delete_object(Bucket=s3.bucket, Key="v/docs.jsonl")
    with pytest.raises(SourceError, match=r"docs.jsonl: no such object$") as info:
        source.load(first)
    assert info.value.retryable
