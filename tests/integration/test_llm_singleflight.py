"""Byte-identical copies in flight together make one LLM call, in every strategy, over real HTTP."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from docmill.executors import get_executor
from docmill.job import Job
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.limits.provider import ProviderLimits
from docmill.llm.cache import ResponseCache
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.pricing import Price
from docmill.model.labels import LabelSet
from docmill.pipeline import Pipeline
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.processors.extract import ExtractText
from docmill.retry import RetryPolicy
from docmill.runner import run
from docmill.sources.files import DirectorySource

LABELS = LabelSet(
    names=("invoice", "letter", "recipe"),
    descriptions={"invoice": "A bill.", "letter": "A letter to someone.", "recipe": "How to cook a dish."},
)
TOPICS = ("invoice amount due", "dear friend, yours sincerely", "recipe: stir the flour and bake")
DISTINCT = 12


def _corpus(root: Path) -> int:
    """``DISTINCT`` texts, each twice and every fourth three times, copies side by side so they are
    in flight together; returns the number of files."""
    root.mkdir()
    files = 0
    for i in range(DISTINCT):
        text = f"Document {i}: {TOPICS[i % 3]}. " * 20
        for copy in range(3 if i % 4 == 0 else 2):
            (root / f"t{i:03d}-{copy}.txt").write_text(text)
            files += 1
    return files


def _classifier(server: EmulatorServer, cache: ResponseCache) -> LLMClassifier:
    settings = LLMSettings(base_url=f"{server.url}/v1", model="emulated-small", timeout=5.0)
    limits = ProviderLimits.from_rates(6000, None, per=60.0)
    retry = RetryPolicy(max_attempts=5, initial=0.02, maximum=0.2)
    return LLMClassifier(LABELS, settings, limits=limits, cache=cache, retry=retry)


@pytest.mark.parametrize(
    "strategy", ["threads", "asyncio", "processes", "queue", "batches", "hybrid", "staged"]
)
def test_copies_in_flight_together_make_one_call(tmp_path: Path, strategy: str) -> None:
    files = _corpus(tmp_path / "corpus")
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.15, latency_sigma=0.0)
    with EmulatorServer(config) as server:
        clf = _classifier(server, ResponseCache(tmp_path / "docmill-cache.db"))
        journal = SqliteJournal(tmp_path / "j.db")
        pipeline = Pipeline(ExtractText(), clf)
        run(DirectorySource(tmp_path / "corpus"), pipeline, executor=strategy, workers=3, journal=journal)
        requests = server.stats()["requests"]
    records = journal.documents(Query())
    assert len(records) == files and requests == DISTINCT
    by_content: dict[str | None, set[str | None]] = defaultdict(set)
    for record in records:
        by_content[record.sha256].add(record.label)
    assert len(by_content) == DISTINCT
    assert all(len(labels) == 1 and None not in labels for labels in by_content.values()), by_content


def test_a_copy_says_whose_answer_it_took_and_costs_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt"):
        (corpus / name).write_text("Dear friend, yours sincerely. " * 10)
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.5, latency_sigma=0.0)  # both start within it
    with EmulatorServer(config) as server:
        clf = _classifier(server, ResponseCache(tmp_path / "docmill-cache.db"))
        clf.price = Price(input_per_1m=1000.0, output_per_1m=2000.0)
        job = Job(DirectorySource(corpus), Pipeline(ExtractText(), clf))
        with get_executor("threads", workers=2) as executor:
            outcomes = list(executor.map_unordered(job, DirectorySource(corpus)))
        assert server.stats()["requests"] == 1
    paid, copy = sorted((o.result or {} for o in outcomes), key=lambda r: r["requests"], reverse=True)
    assert paid["requests"] == 1 and paid["cost"] > 0 and "coalesced" not in paid
    assert copy["coalesced"] in ("a.txt", "b.txt") and copy["label"] == paid["label"]
    assert copy["requests"] == copy["tokens_in"] == 0 and copy["cost"] == 0.0 and not copy["cached"]
