"""Cost per task: each task's requests and cost when each has its own (``tasks_per_request: one``),
the one request serving them all otherwise; in the result, ``docmill status`` and the dashboard's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # (through openapi-spec-validator)
import pytest
from starlette.testclient import TestClient

from docmill.cli.main import main
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.serve.app import create_app
from docmill.serve.openapi import SUMMARY

BASE_URL = "http://127.0.0.1:8765"  # the dashboard refuses other Host headers

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
  language:
    classifier: keywords
    labels: {english: {keywords: [the, due]}, german: {keywords: [der, die]}}
fields:
  total: {type: number, description: "The amount due."}
"""
DOCS = {
    "a.txt": "Invoice 12. Amount due: 30 EUR. Urgent: overdue.",
    "b.txt": "Dear board, the quarterly report and its findings. Sincerely.",
    "c.txt": "Invoice 13. Amount due: 10 EUR. Dear customer, sincerely.",
}


def _run(tmp_path: Path, per_request: str) -> tuple[str, list[dict[str, Any]]]:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (tmp_path / "tasks.yaml").write_text(TASKS)
    config = f"llm: {{price_input_per_1m: 1.0, cache: false, tasks_per_request: {per_request}}}\n"
    (tmp_path / "llm.yaml").write_text(config)
    db = str(tmp_path / "j.db")
    args = ["run", str(root), "--labels", str(tmp_path / "tasks.yaml"), "--db", db, "--progress", "none"]
    args += [
        "-s",
        "sequential",
        "--config",
        str(tmp_path / "llm.yaml"),
        "-c",
        "llm",
        "--model",
        "emulated-small",
    ]
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0)) as server:
        assert main([*args, "--base-url", f"{server.url}/v1"]) == 0
    out = tmp_path / "out.jsonl"
    assert main(["export", "--db", db, "--format", "jsonl", "-o", str(out)]) == 0
    return db, [json.loads(line)["result"] for line in out.read_text().splitlines()]


def _status(db: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert main(["status", "--db", db, *extra]) == 0
    return capsys.readouterr().out


def test_each_task_has_its_requests_and_cost_when_asked_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, results = _run(tmp_path, "one")
    for result in results:
        assert result["tasks"]["kind"]["requests"] == 1 and result["tasks"]["kind"]["cost"] > 0
        assert result["tasks"]["tone"]["requests"] == 1 and result["fields_usage"]["requests"] == 1
        assert "cost" not in result["tasks"]["language"]  # keywords: no request
        own = [result["tasks"]["kind"], result["tasks"]["tone"], result["fields_usage"]]
        assert sum(u["cost"] for u in own) == pytest.approx(result["cost"])
    data = json.loads(_status(db, capsys, "--json"))
    by_task = data["cost_by_task"]
    assert set(by_task) == {"tasks"} and set(by_task["tasks"]) == {"kind", "tone", "fields"}
    assert all(used["requests"] == len(DOCS) for used in by_task["tasks"].values())
    assert sum(used["cost"] for used in by_task["tasks"].values()) == pytest.approx(data["cost"])
    line = next(x for x in _status(db, capsys).splitlines() if x.startswith("by task:"))
    assert line.startswith("by task: kind 3 requests $0.0") and "; fields 3 requests $" in line
    with TestClient(create_app(db), base_url=BASE_URL) as client:
        summary = client.get("/api/runs/1/summary").json()
        assert summary["cost_by_task"] == by_task
        assert 'id="task-costs"' in client.get("/").text
    jsonschema.validate(summary, SUMMARY)  # the API's documented shape


def test_one_request_for_all_is_reported_once_with_what_it_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, results = _run(tmp_path, "all")
    assert all(
        r["llm_asked"] == ["kind", "tone", "fields"] and "cost" not in r["tasks"]["kind"] for r in results
    )
    data = json.loads(_status(db, capsys, "--json"))
    shared = data["cost_by_task"]["shared"]
    assert data["cost_by_task"] == {"shared": shared}
    assert shared["asked"] == ["kind", "tone", "fields"] and shared["requests"] == len(DOCS)
    assert shared["cost"] == pytest.approx(data["cost"])
    lines = [x for x in _status(db, capsys).splitlines() if x.startswith("by task:")]
    assert lines == [
        f"by task: one request per document serves kind, tone and the fields: 3 requests "
        f"${shared['cost']:.4f} (not split by task)"
    ]
    with TestClient(create_app(db), base_url=BASE_URL) as client:
        summary = client.get("/api/runs/1/summary").json()
        assert summary["cost_by_task"] == {"shared": shared}
    jsonschema.validate(summary, SUMMARY)


def test_a_run_without_tasks_has_no_cost_by_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("Invoice 12.")
    db = str(tmp_path / "j.db")
    assert main(["run", str(root), "--db", db, "--progress", "none", "-s", "sequential", "-c", "none"]) == 0
    assert json.loads(_status(db, capsys, "--json"))["cost_by_task"] == {}
