"""Rate limits over real HTTP, as the provider (the emulator) sees them.

The emulator and the limiter are both configured over windows of a second or two so the tests
take seconds: the promises are the same as per minute (the window is a parameter of both). The
provider counts arrivals, and on a busy 2-core machine (load 10+) calls reached the emulator from
2 ms to 560 ms after the limiter admitted them. The two tests that check the limits most tightly
set ``margin=BUSY_MARGIN`` for that; the others keep the product's default.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest

from docmill.executors import get_executor
from docmill.job import Job
from docmill.limits.provider import ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.model.labels import LabelSet
from docmill.outcome import Outcome, Status
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.retry import RetryPolicy
from docmill.testing import MemorySource

LABELS = LabelSet(names=("even", "odd"), descriptions={"even": "An even document.", "odd": "An odd one."})
FAST_RETRY = RetryPolicy(max_attempts=8, initial=0.05, maximum=0.5)
BUSY_MARGIN = 1.0  # seconds of admission-to-arrival variation the limiter allows for


def classifier(server: EmulatorServer, limits: ProviderLimits, **settings: object) -> LLMClassifier:
    llm = LLMSettings(base_url=f"{server.url}/v1", model="emulated-small", timeout=5.0, **settings)  # type: ignore[arg-type]
    return LLMClassifier(LABELS, llm, limits=limits, retry=FAST_RETRY)


def run_all(clf: LLMClassifier, n: int, strategy: str = "threads", workers: int = 8) -> list[Outcome]:
    job = Job(MemorySource(n), clf)
    with get_executor(strategy, workers=workers) as executor:
        return list(executor.map_unordered(job, MemorySource(n)))


@pytest.fixture
def per_second() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(rpm=20, tpm=0, window=1.0, latency_median=0.05, latency_sigma=0.2)
    with EmulatorServer(config) as server:
        yield server


def test_threads_never_exceed_the_request_limit_in_any_window() -> None:
    config = EmulatorConfig(rpm=40, tpm=0, window=2.0, latency_median=0.05, latency_sigma=0.2)
    limits = ProviderLimits.from_rates(40, None, per=2.0, margin=BUSY_MARGIN)
    with EmulatorServer(config) as server:
        outcomes = run_all(classifier(server, limits), 60)
        stats = server.stats(arrivals=True)
    assert [o.status for o in outcomes] == [Status.OK] * 60
    assert stats["max_requests_per_window"] <= 40
    assert stats["rate_limited"] == 0
    paced = (60 - limits.requests.statistics().capacity) / limits.requests.statistics().rate
    span = max(stats["arrivals"]) - min(stats["arrivals"])  # not wall time: starting threads is not pacing
    assert paced * 0.9 < span < paced * 2  # near the limiter's rate (loose: the machine may be busy)


def test_asyncio_strategy_keeps_the_limit_too(per_second: EmulatorServer) -> None:
    outcomes = run_all(
        classifier(per_second, ProviderLimits.from_rates(20, None, per=1.0)), 40, "asyncio", 16
    )
    assert all(o.status is Status.OK for o in outcomes)
    assert per_second.stats()["max_requests_per_window"] <= 20


def test_the_token_limit_is_kept_with_estimates_settled_by_usage() -> None:
    config = EmulatorConfig(rpm=0, tpm=6000, window=2.0, latency_median=0.02)
    with EmulatorServer(config) as server:
        limits = ProviderLimits.from_rates(None, 6000, per=2.0, margin=BUSY_MARGIN)
        started = time.monotonic()
        outcomes = run_all(classifier(server, limits, max_tokens_out=60), 40)
        elapsed = time.monotonic() - started
        stats = server.stats()
    used = stats["tokens_in"] + stats["tokens_out"]
    assert all(o.status is Status.OK for o in outcomes)
    assert stats["rate_limited"] == 0
    assert elapsed >= (used - 6000) / 3000 * 0.9  # paced by tokens (3,000 a second), not requests


def _spend(clf: LLMClassifier, first: int, n: int, out: multiprocessing.Queue[int]) -> None:
    source = MemorySource(first + n)
    refs = list(source)[first:]
    job = Job(source, clf)
    job.setup()
    out.put(sum(job.run(ref).status is Status.OK for ref in refs))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_one_budget_across_processes(per_second: EmulatorServer, method: str) -> None:
    clf = classifier(per_second, ProviderLimits.from_rates(20, None, per=1.0))
    context: Any = multiprocessing.get_context(method)
    out = context.Queue()
    workers = [context.Process(target=_spend, args=(clf, i * 20, 20, out)) for i in range(2)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    ok = out.get(timeout=60) + out.get(timeout=60)
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join(10)
    stats = per_second.stats()
    assert ok == 40
    assert stats["max_requests_per_window"] <= 20 and stats["rate_limited"] == 0
    assert elapsed >= 39 / 18 * 0.9  # two separate budgets would have needed half the time


def test_processes_strategy_shares_the_budget(per_second: EmulatorServer) -> None:
    outcomes = run_all(
        classifier(per_second, ProviderLimits.from_rates(20, None, per=1.0)), 40, "processes", 2
    )
    assert [o.status for o in outcomes] == [Status.OK] * 40
    assert per_second.stats()["max_requests_per_window"] <= 20


def test_retry_after_pauses_every_worker() -> None:
    # no rate-limit headers to learn the real limit from: the first 429 is the first sign of it
    config = EmulatorConfig(rpm=6, tpm=0, window=1.0, latency_median=0.0, limit_headers="none")
    with EmulatorServer(config) as server:
        clf = classifier(server, ProviderLimits.from_rates(1000, None, per=1.0))  # far above the real limit
        clf.retry = RetryPolicy(max_attempts=30, initial=0.05, maximum=0.5)  # 429s are expected here
        outcomes = run_all(clf, 12, workers=6)
        stats = server.stats(arrivals=True)
    assert [o.error for o in outcomes if o.status is not Status.OK] == []
    assert stats["rate_limited"] >= 1
    for when, wait in stats["throttled"]:
        # calls already on the wire when the 429 was sent may land just after it (0.15 s of slack)
        quiet = [t for t in stats["arrivals"] if when + 0.15 < t < when + wait - 0.01]
        assert quiet == [], f"requests arrived during the {wait:.3f} s pause that began at {when:.3f}"
