"""``docmill run --batch`` with ``provider: anthropic``: Message Batches against the emulator over real
HTTP. The labels of an online run at half the price, each document paid once; runs SIGKILLed once
everything is submitted, after a batch was created but before its id was recorded (the resumed run
finds it by listing the batches, matching its requests), and before a recorded batch was created
(Anthropic keeps no input file: the record is closed as unsent and its documents packed again)
resume without paying twice; requests a batch did not get to (expired) are prepared again and sent
in a new batch; failed lines are retried online; the acceptance of issue 18 with ``docmill emulate``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from docmill.config import RunConfig
from docmill.journal import open_journal
from docmill.journal.base import Query
from docmill.journal.batch_store import BatchJournal
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.settings import LLMOptions
from docmill.runner import run_config
from docmill.settings import from_mapping
from docmill.testing import write_corpus

SRC = Path(__file__).resolve().parents[2] / "src"
TEXTS = ("invoice: amount due, payment terms", "tablespoon, oven, simmer the ingredients")
N_DOCS, COPIES = 30, 4  # d000..d029, of which 4 are byte-identical copies of d000..d003
DISTINCT = N_DOCS - COPIES
PRICE = {"price_input_per_1m": 10.0, "price_output_per_1m": 20.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = {f"d{i:03d}.txt": f"{TEXTS[i % 2]} (document {i})" for i in range(N_DOCS - COPIES)}
    docs |= {f"z{i:03d}.txt": docs[f"d{i:03d}.txt"] for i in range(COPIES)}
    return write_corpus(tmp_path_factory.mktemp("corpus"), docs)


def emulator(**config: Any) -> EmulatorServer:
    settings = {"latency_median": 0.0, "batch_seconds": 1.0, "rpm": 0, "tpm": 0, **config}
    return EmulatorServer(EmulatorConfig(**settings))


def llm(server: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "anthropic", "base_url": server.url, "model": "emulated-small", "cache": False,
        "mode": "batch", "batch_poll_seconds": 0.2, "batch_max_requests": 8, **PRICE, **extra,
    }  # fmt: skip


def configure(corpus: Path, db: str, settings: dict[str, Any]) -> RunConfig:
    return RunConfig(
        source=str(corpus), strategy="threads", workers=2, classifier="llm",
        labels=str(corpus / "labels.yaml"), db=db, llm=from_mapping(LLMOptions, settings, "llm"),
        progress="none",
    )  # fmt: skip


def documents(db: str) -> list[Any]:
    journal = open_journal(db, read_only=True)
    try:
        return list(journal.iter_documents(Query()))
    finally:
        journal.close()


def labels(db: str) -> dict[str, tuple[str, str | None]]:
    return {r.path: (r.status, r.label) for r in documents(db)}


def batches(db: str) -> list[Any]:
    journal = open_journal(db, read_only=True)
    try:
        assert isinstance(journal, BatchJournal)
        return journal.batch_records()
    finally:
        journal.close()


def check_complete(db: str) -> None:
    found = labels(db)
    assert len(found) == N_DOCS
    assert sorted(status for status, _ in found.values()) == ["duplicate"] * COPIES + ["ok"] * DISTINCT
    assert {label for _, label in found.values()} == {"invoice", "recipe"}
    assert batches(db) and all(not b.open for b in batches(db))


def test_message_batches_give_the_online_labels_at_half_the_price(corpus: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "batch.db")
    with emulator() as server:
        run_config(configure(corpus, str(tmp_path / "online.db"), {**llm(server), "mode": "online"}))
        assert server.stats()["anthropic_requests"] >= DISTINCT
        server.reset()
        result = run_config(configure(corpus, db, llm(server)))
        stats = server.stats()
    assert labels(db) == labels(str(tmp_path / "online.db"))
    check_complete(db)
    assert (stats["anthropic_batch_requests"], stats["batch_requests"], stats["requests"]) == (
        DISTINCT,
        DISTINCT,
        0,
    )
    assert stats["anthropic_batches"] == stats["batches"] == len(batches(db)) == 4  # 26 lines, 8 a batch
    assert all(
        b.input_file_id.startswith("sha256:") and b.provider_id.startswith("msgbatch_") for b in batches(db)
    )
    records = [r for r in documents(db) if r.status == "ok"]
    assert sum(r.result["tokens_in"] for r in records) == stats["batch_tokens_in"]
    half = sum((r.result["tokens_in"] * 10.0 + r.result["tokens_out"] * 20.0) / 2e6 for r in records)
    assert sum(r.result["cost"] for r in records) == pytest.approx(half) == result.stats.cost
    assert all(r.result["batch"].startswith("msgbatch_") for r in records)
    assert sum(b.info["saved"] for b in batches(db)) == pytest.approx(half)


def docmill_run(corpus: Path, db: str, server: EmulatorServer, tmp_path: Path, crash: str | None) -> int:
    config = tmp_path / "docmill.yaml"
    settings = {k: v for k, v in llm(server).items() if k != "mode"}
    config.write_text(yaml.safe_dump({"llm": settings}))
    argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--config", str(config), "--batch"]
    argv += ["--classifier", "llm", "--labels", str(corpus / "labels.yaml"), "--db", db]
    argv += ["--strategy", "threads", "--workers", "2", "--progress", "none"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("DOCMILL_CRASH_AT", None)
    if crash:
        env["DOCMILL_CRASH_AT"] = crash
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


@pytest.mark.parametrize("crash", ["all-submitted:1", "after-submit:2", "before-submit:3"])
def test_a_run_killed_around_submission_resumes_without_paying_twice(
    corpus: Path, tmp_path: Path, crash: str
) -> None:
    db = str(tmp_path / "j.db")
    with emulator(batch_seconds=1.5) as server:
        assert docmill_run(corpus, db, server, tmp_path, crash) == -9
        submitted = server.stats()["batch_requests"]
        assert 0 < submitted <= DISTINCT
        assert any(b.open for b in batches(db))  # recorded, not collected
        assert docmill_run(corpus, db, server, tmp_path, None) == 0
        stats = server.stats()
    check_complete(db)
    assert stats["batch_requests"] == DISTINCT and stats["requests"] == 0  # each document paid once
    assert stats["batches"] == 4
    records = batches(db)
    unsent = [b for b in records if b.state == "unsent"]
    assert len(unsent) == (1 if crash.startswith("before-submit") else 0)  # never created: packed again
    assert all(b.provider_id is None for b in unsent) and len(records) == 4 + len(unsent)


def test_requests_an_expired_batch_did_not_get_to_are_prepared_and_sent_again(
    corpus: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "j.db")
    with emulator(batch_expire_first=1) as server:
        run_config(configure(corpus, db, llm(server)))
        stats = server.stats()
    check_complete(db)
    records = batches(db)
    assert records[0].state == "expired" and [b.state for b in records[1:]] == ["completed"] * 4
    assert stats["batch_requests"] == DISTINCT + 4  # the 4 requests the expired batch left undone, again
    assert stats["requests"] == 0


def test_failed_lines_are_retried_online_through_the_messages_api(corpus: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    with emulator(fail_503=0.3, seed=5) as server:
        run_config(configure(corpus, db, llm(server, max_attempts=20)))
        stats = server.stats()
    assert stats["faults"]["fail_503"] > 0  # overloaded_error results, then 529s online
    assert stats["anthropic_requests"] >= 1 and stats["batch_requests"] == DISTINCT
    check_complete(db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the emulator did not start")


def test_acceptance_200_documents_killed_once_all_are_submitted(tmp_path: Path) -> None:
    """Issue 18's acceptance with provider: anthropic: 200 distinct unseen documents with --batch
    against `docmill emulate --batch-seconds 4`; the runner SIGKILLed once every document is
    submitted; the resumed run completes: each document received once in Message Batches, 200 ok,
    spend at the batch price of the provider's own token counts."""
    docs = {f"n{i:03d}.txt": f"{TEXTS[i % 2]}, item {i} of the ledger number {i * 7919}" for i in range(200)}
    corpus = write_corpus(tmp_path / "corpus", docs)
    port = _free_port()
    argv = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--batch-seconds", "4"]
    argv += ["--latency-median", "0"]
    server = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL)
    try:
        url = _wait_for(port)
        db = str(tmp_path / "j.db")
        config = tmp_path / "docmill.yaml"
        settings = {"provider": "anthropic", "base_url": url, "model": "emulated-small", **PRICE}
        config.write_text(yaml.safe_dump({"llm": {**settings, "batch_poll_seconds": 0.5}}))
        argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--config", str(config), "--batch"]
        argv += ["--classifier", "llm", "--db", db, "--progress", "none", "--strategy", "processes"]
        env = {**os.environ, "PYTHONPATH": str(SRC), "DOCMILL_CRASH_AT": "all-submitted:1"}
        killed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert killed.returncode == -9, killed.stderr
        env.pop("DOCMILL_CRASH_AT")
        resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert resumed.returncode == 0, resumed.stderr
        with urllib.request.urlopen(url + "/emulator/stats", timeout=10) as response:
            stats: dict[str, Any] = json.load(response)
    finally:
        server.terminate()
        server.wait(10)
    assert (stats["anthropic_batch_requests"], stats["batch_requests"], stats["requests"]) == (200, 200, 0)
    records = documents(db)
    assert len(records) == 200 and all(r.status == "ok" for r in records)
    tokens_in = sum(r.result["tokens_in"] for r in records)
    tokens_out = sum(r.result["tokens_out"] for r in records)
    assert (tokens_in, tokens_out) == (stats["batch_tokens_in"], stats["batch_tokens_out"])
    batch_price = (tokens_in * 10.0 + tokens_out * 20.0) / 1e6 / 2
    assert sum(r.result["cost"] for r in records) == pytest.approx(batch_price)
