"""The dashboard's API for a run that used the Batch API: its batches, counted as ``docmill status``
counts them, from a journal the dashboard only reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from serve_kit import BASE_URL
from starlette.testclient import TestClient

from docmill.cli.main import main
from docmill.serve.app import create_app


def status_batches(db: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["status", "--db", str(db), "--json"]) == 0
    batches: dict[str, Any] = json.loads(capsys.readouterr().out)["batches"]
    return batches


def test_summary_carries_the_batches_docmill_status_shows(
    batch_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = status_batches(batch_run, capsys)
    assert expected["failed"] == 1 and expected["completed"] == expected["batches"] - 1  # one expired
    assert expected["in_progress"] == 0 and expected["requests"] >= 6 and expected["saved"] > 0
    before = batch_run.read_bytes()
    with TestClient(create_app(str(batch_run)), base_url=BASE_URL) as client:
        assert client.get("/api/runs/1/summary").json()["batches"] == expected
        assert client.get("/api/runs/1").json()["summary"]["batches"] == expected
        assert 'id="batches-card"' in client.get("/").text
    assert batch_run.read_bytes() == before


def test_a_journal_the_dashboard_may_only_read(
    batch_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "docmill.db"
    shutil.copy(batch_run, db)
    expected = status_batches(db, capsys)
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
            assert client.get("/api/runs/1/summary").json()["batches"] == expected
    finally:
        folder.chmod(0o755)
    assert sorted(p.name for p in folder.iterdir()) == ["docmill.db"]


def test_a_run_without_batches_has_no_batches(client: TestClient) -> None:
    assert "batches" not in client.get("/api/runs/1/summary").json()
    assert "batches" not in client.get("/api/runs/1").json()["summary"]
