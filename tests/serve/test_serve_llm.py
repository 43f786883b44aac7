"""A run that classifies through docmill's LLM emulator: its usage reaches the API, metrics and page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_kit import BASE_URL, RPM, TPM, Corpus
from starlette.testclient import TestClient

from docmill.serve.app import create_app


@pytest.fixture
def llm_client(llm_run: tuple[Path, Corpus]) -> Iterator[TestClient]:
    with TestClient(create_app(str(llm_run[0])), base_url=BASE_URL) as client:
        yield client


def test_llm_usage_and_limits_are_served(llm_client: TestClient, llm_run: tuple[Path, Corpus]) -> None:
    _, corpus = llm_run
    run = llm_client.get("/api/runs/1").json()
    assert run["stats"]["llm"]["requests"] == len(corpus.good)
    assert run["stats"]["llm"]["tokens_in"] > 0
    llm = run["stats"]["llm"]
    assert 1 <= llm["concurrency"] <= llm["max_concurrency"]  # the classifier's AIMD limit, as seen
    assert (run["config"]["llm"]["rpm"], run["config"]["llm"]["tpm"]) == (RPM, TPM)
    labels = run["summary"]["by_label"]
    assert sum(labels.values()) == len(corpus.good)


def test_llm_usage_is_in_the_metrics(llm_client: TestClient, llm_run: tuple[Path, Corpus]) -> None:
    _, corpus = llm_run
    text = llm_client.get("/metrics").text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert float(samples['docmill_run_llm_requests{run="1"}']) == len(corpus.good)
    assert float(samples['docmill_run_llm_tokens{run="1",direction="out"}']) > 0
    assert 'docmill_run_cost_usd{run="1"}' in samples
