"""The API over a PostgreSQL journal written by a real ``docmill run --db postgresql://…``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from serve_kit import BASE_URL, BROKEN_PDF, Corpus, docmill_run
from starlette.testclient import TestClient

from docmill.serve.app import create_app

pytestmark = pytest.mark.postgres
psycopg = pytest.importorskip("psycopg")
SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def pg_target(corpus: Corpus) -> Iterator[str]:
    schema = f"serve_{uuid.uuid4().hex[:12]}"
    try:
        psycopg.connect(SERVER, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {SERVER}: {str(exc).splitlines()[0]}")
    target = f"{SERVER}?schema={schema}"
    try:
        docmill_run(corpus.root, target)
        yield target
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_runs_failures_and_documents_from_postgres(pg_target: str, corpus: Corpus) -> None:
    with TestClient(create_app(pg_target), base_url=BASE_URL) as client:
        run = client.get("/api/runs/1").json()
        assert run["state"] == "done"
        assert run["summary"]["by_status"]["ok"] == len(corpus.good)
        failures = client.get("/api/failures", params={"run": 1}).json()
        assert {d["path"] for d in failures["items"]} == set(corpus.bad)
        doc = client.get("/api/documents/" + quote(corpus.invoices[0])).json()
        assert (doc["path"], doc["label"]) == (corpus.invoices[0], "invoice")
        assert client.get("/api/documents/" + quote(BROKEN_PDF)).json()["status"] != "ok"
        assert client.get("/api/documents", params={"path": "ü — naïve"}).json()["total"] == len(
            corpus.invoices
        )
