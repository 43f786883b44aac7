"""Faults, prompt injection and secrets, end to end against the emulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import InvalidModelOutput
from docmill.executors import get_executor
from docmill.job import Job
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.limits.provider import ProviderLimits
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.pricing import Price
from docmill.model.labels import LabelSet, load_labels
from docmill.outcome import Status
from docmill.pipeline import Pipeline
from docmill.processors.classify_llm import LLMClassifier, LLMSettings
from docmill.processors.extract import ExtractText
from docmill.retry import RetryPolicy
from docmill.runner import run
from docmill.testing import MemorySource

LABELS = LabelSet(names=("even", "odd"), descriptions={"even": "An even document.", "odd": "An odd one."})
FAST_RETRY = RetryPolicy(max_attempts=10, initial=0.02, maximum=0.2)


def _classifier(server: EmulatorServer, labels: LabelSet = LABELS, timeout: float = 5.0) -> LLMClassifier:
    settings = LLMSettings(base_url=f"{server.url}/v1", model="emulated-small", timeout=timeout)
    return LLMClassifier(
        labels, settings, limits=ProviderLimits.from_rates(2000, None, per=1.0), retry=FAST_RETRY
    )


def test_faults_end_retried_then_ok_or_failed_with_a_reason() -> None:
    config = EmulatorConfig(
        rpm=0, tpm=0, latency_median=0.01, hang=0.03, hang_seconds=30, bad_label=0.05,
        fail_500=0.1, fail_503=0.05, drop=0.05, malformed=0.05, truncated=0.05,
    )  # fmt: skip
    with EmulatorServer(config) as server:
        job = Job(MemorySource(80), _classifier(server, timeout=0.5))
        with get_executor("threads", workers=8) as executor:
            outcomes = list(executor.map_unordered(job, MemorySource(80)))
        stats = server.stats()
    assert len(outcomes) == 80
    assert all(n > 0 for n in stats["faults"].values()), stats["faults"]
    ok = [o for o in outcomes if o.status is Status.OK]
    failed = [o for o in outcomes if o.status is not Status.OK]
    assert len(ok) >= 76
    assert sum(o.result["requests"] for o in ok if o.result) > len(ok)  # some were retried, then ok
    for outcome in failed:  # a bad label three times in a row is possible; it fails with a reason
        assert outcome.status is Status.FAILED and outcome.error is not None and outcome.error.message


def test_a_model_that_never_names_an_allowed_label_fails_permanently() -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, bad_label=1.0)) as server:
        job = Job(MemorySource(3), _classifier(server))
        outcomes = [job.run(ref) for ref in MemorySource(3)]
        requests = server.stats()["requests"]
    for outcome in outcomes:
        assert outcome.status is Status.FAILED and outcome.error is not None
        assert outcome.error.type == "InvalidModelOutput" and not outcome.error.retryable
        assert "not-a-label" in outcome.error.message
    assert requests == 3 * 3  # first answer + two more chances each


def test_a_failed_document_still_counts_what_it_was_billed_for(tmp_path: Path) -> None:
    price = Price(input_per_1m=1000.0, output_per_1m=2000.0)  # so a few calls cost cents
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, bad_label=1.0)) as server:
        clf = _classifier(server)
        clf.price = price
        journal = SqliteJournal(tmp_path / "j.db")
        done = run(MemorySource(4), clf, journal=journal)
        records = journal.documents(Query())
    assert done.stopped is None and [r.status for r in records] == ["quarantined"] * 4
    for record in records:  # three answers naming no allowed label, each billed
        spend = record.result
        assert spend["requests"] == 3 and spend["tokens_in"] > 0 and spend["tokens_out"] > 0
        assert spend["cost"] == pytest.approx(price.cost(spend["tokens_in"], spend["tokens_out"]))
    assert done.stats.cost == pytest.approx(sum(r.result["cost"] for r in records))
    assert done.stats.cost > 0


def test_max_cost_stops_a_run_whose_documents_fail_after_being_billed(tmp_path: Path) -> None:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, bad_label=1.0)) as server:
        clf = _classifier(server)
        clf.price = Price(input_per_1m=1000.0, output_per_1m=2000.0)
        journal = SqliteJournal(tmp_path / "j.db")
        done = run(MemorySource(20), clf, journal=journal, max_cost=0.01)
        recorded = journal.count(Query())
    assert done.stopped == "max-cost"
    assert 1 <= recorded < 20


@pytest.mark.parametrize("gullible", [False, True])
@pytest.mark.parametrize("name", ["prompt-injection.txt", "prompt-injection.html"])
def test_prompt_injection_never_yields_a_label_outside_the_set(
    bad_inputs: Path, name: str, gullible: bool
) -> None:
    labels = load_labels(Path(__file__).resolve().parents[2] / "examples" / "corpus" / "labels.yaml")
    content = (bad_inputs / name).read_bytes()
    doc = Document(DocumentRef(name, str(bad_inputs / name)), sha256_bytes(content), content=content)
    config = EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, gullible=gullible)
    with EmulatorServer(config) as server:
        pipeline = Pipeline(ExtractText(), _classifier(server, labels))
        try:
            label = pipeline.process(doc).metadata["label"]
        except InvalidModelOutput as exc:  # the model obeyed; validation refused its answer
            assert gullible and "HACKED" in str(exc)
            return
    assert label in labels.names  # under the strict schema a gullible model cannot leave the enum


def test_the_api_key_is_never_written_anywhere(tmp_path: Path) -> None:
    key = "sk-docmill-test-" + os.urandom(8).hex()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(6):
        (corpus / f"doc{i}.txt").write_text(f"An {'even' if i % 2 == 0 else 'odd'} document number {i}.")
    (tmp_path / "labels.yaml").write_text(
        "labels:\n  even: {description: An even document.}\n  odd: {description: An odd one.}\n"
    )
    env = {**os.environ, "DOCMILL_TEST_KEY": key, "WRONG_KEY": key[::-1]}
    outputs = []
    with EmulatorServer(
        EmulatorConfig(rpm=0, tpm=0, latency_median=0.0, api_key=key, fail_500=0.2)
    ) as server:
        for variable, db in (("DOCMILL_TEST_KEY", "good/j.db"), ("WRONG_KEY", "bad/j.db")):
            (tmp_path / db).parent.mkdir()
            config = tmp_path / f"{db}.yaml"
            config.write_text(f"llm: {{api_key_env: {variable}, max_attempts: 3}}\n")
            run = [
                sys.executable,
                "-m",
                "docmill",
                "run",
                str(corpus),
                "--classifier",
                "llm",
                "--model",
                "emulated-small",
            ]
            run += ["--base-url", f"{server.url}/v1", "--labels", str(tmp_path / "labels.yaml")]
            run += ["--db", str(tmp_path / db), "--config", str(config), "--progress", "log", "-s", "threads"]
            export = [sys.executable, "-m", "docmill", "export", "--db", str(tmp_path / db)]
            export += ["-o", str(tmp_path / f"{db}.csv")]
            for command in (run, export):
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
                )
                outputs.append(done.stdout + done.stderr)
    assert ",ok," in (tmp_path / "good/j.db.csv").read_text()
    refused = (tmp_path / "bad/j.db.csv").read_text()  # the wrong key was refused before any document...
    assert "refused the key (401)" in outputs[2] and refused.count("\n") == 1
    secrets = (key, key[::-1])
    for text in outputs:
        assert not any(s in text for s in secrets)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert (tmp_path / "good" / "docmill-cache.db").exists()
    for path in written:  # ...and neither key is in the journal, its WAL, the cache or the exports
        data = path.read_bytes()
        assert not any(s.encode() in data for s in secrets), path
