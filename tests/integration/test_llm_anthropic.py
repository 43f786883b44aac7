"""``provider: anthropic`` online, over real HTTP against the emulator's Messages API: the labels,
tokens and cost of the OpenAI-compatible run; a 429's ``retry-after`` pauses every caller; 529
``overloaded_error`` is retried within the one budget; a refused key stops the run before any work
in one line that never shows the key; the ``anthropic-ratelimit-*`` limits are learned."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from docmill.cli.main import main
from docmill.executors import get_executor
from docmill.job import Job
from docmill.journal import open_journal
from docmill.journal.base import Query
from docmill.limits.provider import ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.model.labels import LabelSet
from docmill.outcome import Outcome, Status
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.retry import RetryPolicy
from docmill.testing import MemorySource, write_corpus

TEXTS = ("invoice: amount due, payment terms", "tablespoon, oven, simmer the ingredients")
LABELS = LabelSet(names=("even", "odd"), descriptions={"even": "An even document.", "odd": "An odd one."})
PRICES = "price_input_per_1m: 10.0, price_output_per_1m: 20.0"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = {f"d{i:03d}.txt": f"{TEXTS[i % 2]} (document {i})" for i in range(24)}
    return write_corpus(tmp_path_factory.mktemp("corpus"), docs)


def _cli(corpus: Path, tmp: Path, base_url: str, db: str, llm: str, *extra: str) -> int:
    (tmp / "docmill.yaml").write_text(f"llm: {{{llm}}}\n")
    args = ["run", str(corpus), "--classifier", "llm", "--model", "emulated-small", "--base-url", base_url]
    args += ["--labels", str(corpus / "labels.yaml"), "--db", db, "--config", str(tmp / "docmill.yaml")]
    return main([*args, "--progress", "none", "-s", "threads", "--workers", "4", *extra])


def _records(db: str) -> dict[str, Any]:
    journal = open_journal(db, read_only=True)
    try:
        return {r.path: r for r in journal.iter_documents(Query())}
    finally:
        journal.close()


def test_an_anthropic_run_gives_the_labels_tokens_and_cost_of_the_openai_run(
    corpus: Path, tmp_path: Path
) -> None:
    config = EmulatorConfig(latency_median=0.01, latency_sigma=0.2)
    with EmulatorServer(config) as server:
        openai = str(tmp_path / "openai.db")
        assert _cli(corpus, tmp_path, server.url + "/v1", openai, f"cache: false, {PRICES}") == 0
        assert server.stats()["anthropic_requests"] == 0
        server.reset()
        claude = str(tmp_path / "anthropic.db")
        assert _cli(corpus, tmp_path, server.url, claude, f"provider: anthropic, cache: false, {PRICES}") == 0
        stats = server.stats()
    assert stats["anthropic_requests"] == stats["requests"] == 24
    ours, theirs = _records(claude), _records(openai)
    assert {p: (r.status, r.label) for p, r in ours.items()} == {
        p: (r.status, r.label) for p, r in theirs.items()
    }
    assert {r.label for r in ours.values()} == {"invoice", "recipe"}
    for key in ("tokens_in", "tokens_out", "cost"):
        assert sum(r.result[key] for r in ours.values()) == pytest.approx(
            sum(r.result[key] for r in theirs.values())
        )
    assert sum(r.result["tokens_in"] for r in ours.values()) == stats["tokens_in"]


def classifier(server: EmulatorServer, limits: ProviderLimits, retry: RetryPolicy) -> LLMClassifier:
    settings = LLMSettings(base_url=server.url, model="emulated-small", provider="anthropic", timeout=5.0)
    return LLMClassifier(LABELS, settings, limits=limits, retry=retry)


def run_all(clf: LLMClassifier, n: int, workers: int = 6) -> list[Outcome]:
    job = Job(MemorySource(n), clf)
    with get_executor("threads", workers=workers) as executor:
        return list(executor.map_unordered(job, MemorySource(n)))


def test_a_429s_retry_after_pauses_every_caller() -> None:
    # no rate-limit headers to learn the real limit from: the first 429 is the first sign of it, and
    # Anthropic says how long in whole seconds (retry-after), nothing finer
    config = EmulatorConfig(rpm=6, tpm=0, window=1.0, latency_median=0.0, limit_headers="none")
    with EmulatorServer(config) as server:
        retry = RetryPolicy(max_attempts=30, initial=0.05, maximum=0.5)  # 429s are expected here
        outcomes = run_all(classifier(server, ProviderLimits.from_rates(1000, None, per=1.0), retry), 12)
        stats = server.stats(arrivals=True)
    assert [o.error for o in outcomes if o.status is not Status.OK] == []
    assert stats["rate_limited"] >= 1 and stats["anthropic_requests"] == stats["requests"]
    for when, wait in stats["throttled"]:
        # calls already on the wire when the 429 was sent may land just after it (0.15 s of slack)
        quiet = [t for t in stats["arrivals"] if when + 0.15 < t < when + wait - 0.01]
        assert quiet == [], f"requests arrived during the {wait:.3f} s pause that began at {when:.3f}"


def test_529_overloaded_is_retried_and_every_attempt_counted() -> None:
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, fail_503=0.3, seed=4)
    with EmulatorServer(config) as server:
        retry = RetryPolicy(max_attempts=12, initial=0.01, maximum=0.05)
        outcomes = run_all(classifier(server, ProviderLimits.from_rates(None, None), retry), 30)
        stats = server.stats()
    assert [o.error for o in outcomes if o.status is not Status.OK] == []
    assert stats["faults"]["fail_503"] >= 5  # each answered 529 overloaded_error
    assert (
        sum(o.result["requests"] for o in outcomes if o.result)
        == stats["requests"]
        == 30 + stats["faults"]["fail_503"]
    )


def test_the_anthropic_limits_are_learned_from_its_headers() -> None:
    window, limit = 4.0, 120
    config = EmulatorConfig(rpm=limit, tpm=0, window=window, latency_median=0.03, latency_sigma=0.2)
    with EmulatorServer(config) as server:
        learning = ProviderLimits.from_rates(None, None, per=window, margin=0.05)
        retry = RetryPolicy(max_attempts=30, initial=0.05, maximum=0.5)
        outcomes = run_all(classifier(server, learning, retry), 160, workers=16)
        stats = server.stats()
    assert [o.error for o in outcomes if o.status is not Status.OK] == []
    assert stats["rate_limited"] <= 0.03 * stats["requests"]
    assert stats["max_requests_per_window"] <= limit + 0.03 * stats["requests"]


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_a_refused_key_stops_the_run_before_any_work_in_one_line_without_the_key(
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    wrong = "sk-ant-wrong-0123456789abcdef"
    monkeypatch.setenv("DOCMILL_TEST_ANTHROPIC_KEY", wrong)
    config = dataclasses.replace(EmulatorConfig(latency_median=0.0), api_key="sk-ant-right")
    db = str(tmp_path / "j.db")
    llm = "provider: anthropic, api_key_env: DOCMILL_TEST_ANTHROPIC_KEY"
    extra = ("--batch",) if mode == "batch" else ()
    with EmulatorServer(config) as server:
        assert _cli(corpus, tmp_path, server.url, db, llm, *extra) == 2
        stats = server.stats()
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1 and "refused the key (401)" in lines[0] and "DOCMILL_TEST_ANTHROPIC_KEY" in lines[0]
    )
    assert wrong not in out + err and "***" in lines[0]  # the emulator echoes the key: scrubbed
    assert (stats["requests"], stats["batches"]) == (0, 0) and _records(db) == {}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert wrong.encode() not in path.read_bytes(), path


def test_the_default_key_variable_is_anthropics(monkeypatch: pytest.MonkeyPatch) -> None:
    from docmill.processors.classify_llm import _api_key

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    settings = LLMSettings(base_url="https://api.anthropic.com", model="m", provider="anthropic")
    assert _api_key(settings) == "sk-ant-x"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert _api_key(settings) is None and os.environ["OPENAI_API_KEY"] == "sk-openai"
