"""One retry owner, honest bills and tail-aware timeouts, over real HTTP against the emulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from docmill.executors import get_executor
from docmill.job import Job
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.limits.provider import ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.pricing import Price
from docmill.model.labels import LabelSet
from docmill.outcome import Status
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.retry import RetryPolicy
from docmill.runner import run
from docmill.testing import MemorySource

LABELS = LabelSet(names=("even", "odd"), descriptions={"even": "An even document.", "odd": "An odd one."})
BUDGET = 6  # the classifier's attempts per document (12 % faults: 6 in a row ~3e-6)
CEILING = 40.0  # the configured timeout: no document may wait it out


def _classifier(server: EmulatorServer, *, floor: float = 5.0) -> LLMClassifier:
    settings = LLMSettings(
        base_url=f"{server.url}/v1", model="emulated-small", timeout=CEILING, timeout_floor=floor
    )
    retry = RetryPolicy(max_attempts=BUDGET, initial=0.02, maximum=0.1)
    limits = ProviderLimits.from_rates(3000, None, per=1.0)
    return LLMClassifier(LABELS, settings, limits=limits, retry=retry, price=Price(1000.0, 2000.0))


def test_an_always_503_provider_is_called_once_per_budget_and_every_call_is_billed(tmp_path: Path) -> None:
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, fail_503=1.0)
    with EmulatorServer(config) as server:
        journal = SqliteJournal(tmp_path / "j.db")
        job_retry = RetryPolicy(max_attempts=3, initial=0.01, maximum=0.02)  # the CLI's default shape
        done = run(
            MemorySource(10), _classifier(server), journal=journal, retry=job_retry, executor="threads"
        )
        calls = server.stats()["requests"]
        records = journal.documents(Query())
    assert calls == done.stats.llm["requests"] == 10 * BUDGET  # not 3 x BUDGET: Job does not retry again
    assert [r.status for r in records] == [Status.FAILED.value] * 10
    for record in records:  # each failed document carries the spend of all its attempts
        assert record.result["requests"] == BUDGET and record.result["tokens_in"] > 0
        assert record.result["cost"] > 0
    assert done.stats.cost == pytest.approx(sum(r.result["cost"] for r in records)) and done.stats.cost > 0


def test_max_cost_sees_the_failed_calls_of_a_503_provider(tmp_path: Path) -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, fail_503=1.0)) as server:
        journal = SqliteJournal(tmp_path / "j.db")
        done = run(MemorySource(40), _classifier(server), journal=journal, max_cost=0.05)
        recorded = journal.count(Query())
    assert done.stopped == "max-cost" and 1 <= recorded < 40


@pytest.mark.parametrize("strategy", ["asyncio", "threads"])
def test_hung_calls_are_abandoned_at_a_multiple_of_the_observed_latency(strategy: str) -> None:
    config = EmulatorConfig(
        rpm=0, tpm=0, latency_median=0.05, latency_sigma=0.3, seed=7,
        fail_500=0.05, fail_503=0.05, hang=0.02, hang_seconds=120,
    )  # fmt: skip
    n = 200
    with EmulatorServer(config) as server:
        job = Job(MemorySource(n), _classifier(server, floor=1.5))  # room for a busy machine
        started = time.monotonic()
        with get_executor(strategy, workers=16) as executor:
            outcomes = list(executor.map_unordered(job, MemorySource(n)))
        elapsed = time.monotonic() - started
        stats = server.stats()
    assert stats["faults"]["hang"] >= 2 and stats["faults"]["fail_503"] >= 2, stats["faults"]
    assert [o.status for o in outcomes].count(Status.OK) == n
    assert max(o.timings.seconds for o in outcomes) < CEILING / 2  # no document waited out the ceiling
    assert elapsed < CEILING
