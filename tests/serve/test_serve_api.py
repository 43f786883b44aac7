"""The REST API against a journal written by a real ``docmill run``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from openapi_spec_validator import validate
from serve_kit import BINARY, BROKEN_PDF, Corpus
from starlette.testclient import TestClient

FAILURES = {"failed", "quarantined", "crashed"}


def test_runs_lists_the_finished_run_with_its_progress(client: TestClient, corpus: Corpus) -> None:
    runs = client.get("/api/runs").json()["runs"]
    assert len(runs) == 1
    run = runs[0]
    total = len(corpus.good) + len(corpus.bad)
    assert (run["state"], run["strategy"], run["workers"]) == ("done", "threads", 2)
    assert run["progress"]["done"] == total
    assert run["progress"]["total"] == total
    assert run["progress"]["fraction"] == 1.0
    assert run["progress"]["eta_seconds"] is None


def test_run_summary_counts_statuses_and_labels(client: TestClient, corpus: Corpus) -> None:
    summary = client.get("/api/runs/1/summary").json()
    assert summary["total"] == len(corpus.good) + len(corpus.bad)
    assert summary["by_status"]["ok"] == len(corpus.good)
    assert summary["failures"] == len(corpus.bad)
    assert summary["by_label"] == {"invoice": len(corpus.invoices), "report": len(corpus.reports)}
    assert client.get("/api/runs/1").json()["summary"] == summary


def test_documents_are_paged_and_filtered(client: TestClient, corpus: Corpus) -> None:
    first = client.get("/api/documents", params={"run": 1, "limit": 5}).json()
    second = client.get("/api/documents", params={"run": 1, "limit": 5, "offset": 5}).json()
    assert first["total"] == len(corpus.good) + len(corpus.bad)
    assert len(first["items"]) == len(second["items"]) == 5
    assert not {d["path"] for d in first["items"]} & {d["path"] for d in second["items"]}
    invoices = client.get("/api/documents", params={"label": "invoice", "status": "ok", "limit": 1000}).json()
    assert sorted(d["path"] for d in invoices["items"]) == sorted(corpus.invoices)
    unicode = client.get("/api/documents", params={"path": "ü — naïve"}).json()
    assert unicode["total"] == len(corpus.invoices)


def test_document_with_odd_characters_is_found_by_its_path(client: TestClient, corpus: Corpus) -> None:
    path = corpus.invoices[3]
    doc = client.get("/api/documents/" + quote(path)).json()
    assert doc["path"] == path
    assert doc["sha256"] == hashlib.sha256((corpus.root / path).read_bytes()).hexdigest()
    assert (doc["status"], doc["label"], doc["attempts"]) == ("ok", "invoice", 1)
    assert doc["seconds"] is not None and doc["seconds"] >= 0


def test_failures_carry_their_reason_and_filter_by_error_type(client: TestClient) -> None:
    page = client.get("/api/failures", params={"run": 1}).json()
    by_path = {d["path"]: d for d in page["items"]}
    assert set(by_path) == {BROKEN_PDF, BINARY}
    assert all(d["status"] in FAILURES and d["error_type"] and d["error_message"] for d in page["items"])
    broken_type = by_path[BROKEN_PDF]["error_type"]
    types = client.get("/api/runs/1/errors").json()["error_types"]
    assert sum(types.values()) == 2 and broken_type in types
    only = client.get("/api/failures", params={"error_type": broken_type}).json()
    assert BROKEN_PDF in {d["path"] for d in only["items"]}
    assert all(d["error_type"] == broken_type for d in only["items"])
    detail = client.get("/api/documents/" + quote(BROKEN_PDF)).json()
    assert detail["error_type"] == broken_type and detail["status"] in FAILURES


def test_csv_export_streams_every_row(client: TestClient, corpus: Corpus) -> None:
    response = client.get("/api/export.csv", params={"run": 1})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["path"] for r in rows} == set(corpus.good) | set(corpus.bad)
    assert {r["label"] for r in rows if r["status"] == "ok"} == {"invoice", "report"}


def test_jsonl_export_filters_like_the_table(client: TestClient, corpus: Corpus) -> None:
    response = client.get("/api/export.jsonl", params={"status": "ok", "label": "report"})
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert sorted(r["path"] for r in rows) == sorted(corpus.reports)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "offset=-1", "limit=ten", "status=bogus", "run=0", "run=x", "path=a%00b"],
)
def test_bad_parameters_are_422_with_a_reason(client: TestClient, query: str) -> None:
    response = client.get(f"/api/documents?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "url", ["/api/runs/99", "/api/runs/99/summary", "/api/runs/99/throughput", "/api/documents/no/such.txt"]
)
def test_unknown_things_are_404(client: TestClient, url: str) -> None:
    assert client.get(url).status_code == 404


def test_throughput_buckets_add_up_to_the_run(client: TestClient, corpus: Corpus) -> None:
    series = client.get("/api/runs/1/throughput", params={"buckets": 10}).json()
    assert len(series["points"]) == 10
    assert sum(p["count"] for p in series["points"]) == len(corpus.good) + len(corpus.bad)


def test_metrics_are_prometheus_text(client: TestClient, corpus: Corpus) -> None:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#"))
    assert float(samples['docmill_run_documents{run="1",status="ok"}']) == len(corpus.good)
    assert float(samples['docmill_run_done{run="1"}']) == len(corpus.good) + len(corpus.bad)
    assert 'docmill_run_info{run="1",strategy="threads",state="done"}' in samples


def test_openapi_spec_is_valid_and_covers_the_routes(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    validate(spec)
    assert {"/api/runs", "/api/documents", "/api/failures", "/api/export.csv", "/metrics"} <= set(
        spec["paths"]
    )


def test_healthz_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_run_config_never_shows_a_key(journal_db: Path, corpus: Corpus, tmp_path: Path) -> None:
    from serve_kit import BASE_URL, docmill_run

    from docmill.serve.app import create_app

    config = tmp_path / "docmill.yaml"
    secret = "sk-test-0123456789abcdefghij"
    config.write_text(
        f"llm: {{api_key_env: DOCMILL_TEST_KEY, base_url: 'http://u:{secret}@127.0.0.1:1/v1'}}\n"
    )
    db = tmp_path / "docmill.db"
    docmill_run(corpus.root, db, "--config", str(config))
    with TestClient(create_app(str(db)), base_url=BASE_URL) as client:
        body = client.get("/api/runs/1").text
    assert secret not in body
    assert "DOCMILL_TEST_KEY" in body


def test_an_unreadable_journal_is_a_503_with_one_line(tmp_path: Path) -> None:
    from serve_kit import BASE_URL

    from docmill.serve.app import create_app

    bogus = tmp_path / "docmill.db"
    bogus.write_bytes(b"this is not a database" * 100)
    with TestClient(create_app(str(bogus)), base_url=BASE_URL) as client:
        response = client.get("/api/runs")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("journal unavailable:")
    assert "\n" not in response.json()["detail"]


def test_failures_come_most_recent_first_or_by_path(client: TestClient) -> None:
    recent = client.get("/api/failures", params={"run": 1}).json()["items"]
    finished = [d["finished"] for d in recent]
    assert finished == sorted(finished, reverse=True)
    by_path = client.get("/api/failures", params={"run": 1, "sort": "path"}).json()["items"]
    assert [d["path"] for d in by_path] == sorted(d["path"] for d in recent)
    paged = client.get("/api/failures", params={"run": 1, "limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and [d["path"] for d in paged["items"]] == [recent[1]["path"]]
    assert client.get("/api/failures", params={"sort": "size"}).status_code == 422
