"""A labels file with tasks under the ``celery`` strategy: real workers, Redis, the emulator over HTTP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed_helpers import Workers, running_workers

from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.slow]  # workers start: ~13 s

TASKS = """\
tasks:
  kind:
    labels:
      invoice: {keywords: [invoice, amount due]}
      report: {keywords: [report, findings]}
  tone:
    multi: true
    labels:
      urgent: {keywords: [urgent, overdue]}
      formal: {keywords: [dear, sincerely]}
  size:
    classifier: keywords
    labels: {short: {keywords: [note]}, long: {keywords: [chapter]}}
"""


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with running_workers(1) as pool:
        yield pool


def test_tasks_run_under_celery_one_request_per_document(workers: Workers, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(8):
        text = "Invoice. Amount due, overdue." if i % 2 else "Dear board, the report and its findings. Note."
        (root / f"doc-{i}.txt").write_text(f"{text} Number {i}.")
    (tmp_path / "tasks.yaml").write_text(TASKS)
    (tmp_path / "docmill.yaml").write_text("llm: {cache: false}\n")
    db, out = tmp_path / "j.db", tmp_path / "out.csv"
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, seed=3)) as server:
        argv = [sys.executable, "-m", "docmill", "run", str(root), "--strategy", "celery", "--workers", "1",
                "--broker", workers.broker, "--queue", workers.queue,
                "--labels", str(tmp_path / "tasks.yaml"),
                "--config", str(tmp_path / "docmill.yaml"), "-c", "llm", "--model", "emulated-small",
                "--base-url", f"{server.url}/v1", "--db", str(db), "--progress", "none"]  # fmt: skip
        done = subprocess.run(argv, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert server.stats()["requests"] == 8
    export = [sys.executable, "-m", "docmill", "export", "--db", str(db), "-o", str(out)]
    subprocess.run(export, check=True, capture_output=True, timeout=60)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert {r["label_kind"] for r in rows} == {"invoice", "report"}
    assert all(r["label_size"] in ("short", "") for r in rows)
    assert any("urgent" in r["label_tone"].split(";") for r in rows)
