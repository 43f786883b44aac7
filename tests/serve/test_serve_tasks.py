"""The dashboard's API for a run whose labels file declares tasks: each task's label counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_kit import BASE_URL
from starlette.testclient import TestClient

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.serve.app import create_app

TASKS = """\
tasks:
  kind:
    labels:
      invoice: {keywords: [invoice, amount due]}
      report: {keywords: [report, findings]}
  tone:
    multi: true
    threshold: 0.3
    labels:
      urgent: {keywords: [urgent, overdue]}
      formal: {keywords: [dear, sincerely, amount due, findings]}
"""
DOCS = {
    "a.txt": "Invoice 12. Amount due: 30 EUR. Urgent: overdue.",
    "b.txt": "Dear board, the quarterly report and its findings. Sincerely.",
    "c.txt": "Invoice 13. Amount due: 10 EUR. Dear customer, sincerely.",
}


def test_summary_counts_each_task(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (tmp_path / "tasks.yaml").write_text(TASKS)
    db = tmp_path / "j.db"
    args = ["run", str(root), "--labels", str(tmp_path / "tasks.yaml"), "--db", str(db), "-s", "sequential"]
    assert main([*args, "--progress", "none"]) == 0
    with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
        summary = client.get("/api/runs/1/summary").json()
        assert summary["by_task"] == {"kind": {"invoice": 2, "report": 1}, "tone": {"urgent": 1, "formal": 3}}
        assert client.get("/api/runs/1").json()["summary"]["by_task"] == summary["by_task"]
        page = client.get("/").text
        assert 'id="tasks-card"' in page


STEP = """
from docmill import Document, Processor


class Ask(Processor):
    name = "ask"

    def process(self, doc: Document) -> Document:
        reply = self.context.complete([{"role": "user", "content": doc.text or ""}])
        return doc.with_metadata(asked=reply.text[:20])
"""


def test_summary_says_what_each_step_spent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "asksteps.py").write_text(STEP)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (tmp_path / "price.yaml").write_text("llm: {price_input_per_1m: 1.0, cache: false}\n")
    db = tmp_path / "j.db"
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0)) as server:
        args = ["run", str(root), "--db", str(db), "-s", "sequential", "--progress", "none", "-c", "none"]
        args += ["--step", "asksteps:Ask", "--model", "m", "--base-url", f"{server.url}/v1"]
        assert main([*args, "--config", str(tmp_path / "price.yaml")]) == 0
    with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
        costs = client.get("/api/runs/1/summary").json()["cost_by_step"]
        assert set(costs) == {"classifier", "Ask"} and costs["Ask"] > 0 and costs["classifier"] == 0
        assert 'id="step-costs-card"' in client.get("/").text
