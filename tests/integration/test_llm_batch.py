"""``docmill run --classifier llm --batch`` against the emulated provider over real HTTP, with a real
SQLite or PostgreSQL journal: the labels of an online run, at the batch price, each document paid
once; a run SIGKILLed before submitting, after submitting (its id not yet noted) or once everything
is submitted resumes without paying twice; expired batches are re-packed; failed lines are retried
online or in a follow-up batch, then recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from docmill.cli.main import main
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

PG_URL = os.environ.get("DOCMILL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SRC = Path(__file__).resolve().parents[2] / "src"
TEXTS = ("invoice: amount due, payment terms", "tablespoon, oven, simmer the ingredients")
N_DOCS, COPIES = 30, 4  # d000..d029, of which 4 are byte-identical copies of d000..d003
PRICE = {"price_input_per_1m": 10.0, "price_output_per_1m": 20.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = {f"d{i:03d}.txt": f"{TEXTS[i % 2]} (document {i})" for i in range(N_DOCS - COPIES)}
    docs |= {f"z{i:03d}.txt": docs[f"d{i:03d}.txt"] for i in range(COPIES)}
    return write_corpus(tmp_path_factory.mktemp("corpus"), docs)


DISTINCT = N_DOCS - COPIES


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "j.db")
        return
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_batchrun_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    yield f"{PG_URL}?schema={schema}"
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def emulator(**config: Any) -> EmulatorServer:
    settings = {"latency_median": 0.0, "batch_seconds": 1.0, "rpm": 0, "tpm": 0, **config}
    return EmulatorServer(EmulatorConfig(**settings))


def llm(server: EmulatorServer, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": server.url + "/v1", "model": "emulated-small", "cache": False, "mode": "batch",
        "batch_poll_seconds": 0.2, "batch_max_requests": 8, **PRICE, **extra,
    }  # fmt: skip


def configure(corpus: Path, db: str, llm_settings: dict[str, Any]) -> RunConfig:
    return RunConfig(
        source=str(corpus), strategy="threads", workers=2, classifier="llm",
        labels=str(corpus / "labels.yaml"), db=db, llm=from_mapping(LLMOptions, llm_settings, "llm"),
        progress="none",
    )  # fmt: skip


def labels(db: str) -> dict[str, tuple[str, str | None]]:
    journal = open_journal(db, read_only=True)
    try:
        return {r.path: (r.status, r.label) for r in journal.iter_documents(Query())}
    finally:
        journal.close()


def documents(db: str) -> list[Any]:
    journal = open_journal(db, read_only=True)
    try:
        return list(journal.iter_documents(Query()))
    finally:
        journal.close()


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


def test_a_batch_run_gives_the_online_labels_at_half_the_price(corpus: Path, db: str, tmp_path: Path) -> None:
    with emulator() as server:
        online = configure(corpus, str(tmp_path / "online.db"), {**llm(server), "mode": "online"})
        run_config(online)
        assert server.stats()["batches"] == 0
        server.reset()
        result = run_config(configure(corpus, db, llm(server)))
        stats = server.stats()
    assert labels(db) == labels(str(tmp_path / "online.db"))
    check_complete(db)
    assert (stats["batch_requests"], stats["requests"]) == (DISTINCT, 0)  # copies are not asked for
    assert stats["batches"] == 4 and len(batches(db)) == 4  # 26 lines, 8 a file
    records = [r for r in documents(db) if r.status == "ok"]
    half = sum((r.result["tokens_in"] * 10.0 + r.result["tokens_out"] * 20.0) / 2e6 for r in records)
    assert sum(r.result["cost"] for r in records) == pytest.approx(half)
    assert result.stats.cost == pytest.approx(half) and all(r.result["batch"] for r in records)
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
    corpus: Path, db: str, tmp_path: Path, crash: str
) -> None:
    with emulator(batch_seconds=1.5) as server:
        assert docmill_run(corpus, db, server, tmp_path, crash) == -9
        submitted = server.stats()["batch_requests"]
        assert 0 < submitted <= DISTINCT
        assert any(b.open for b in batches(db))  # recorded, not collected
        assert docmill_run(corpus, db, server, tmp_path, None) == 0
        stats = server.stats()
    check_complete(db)
    assert stats["batch_requests"] == DISTINCT and stats["requests"] == 0  # each document paid once
    assert stats["batches"] == len(batches(db)) == 4


def test_an_expired_batch_is_re_packed(corpus: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with emulator(batch_expire_first=1) as server:
        run_config(configure(corpus, db, llm(server)))
        stats = server.stats()
    check_complete(db)
    records = batches(db)
    assert records[0].state == "expired" and [b.state for b in records[1:]] == ["completed"] * 4
    assert stats["batch_requests"] == DISTINCT + 4  # the 4 lines the expired batch left undone, again
    assert main(["status", "--db", db, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["batches"]
    assert shown["batches"] == 5 and shown["completed"] == 4 and shown["failed"] == 1  # expired
    assert shown["saved"] > 0 and shown["in_progress"] == 0


@pytest.mark.parametrize("retry", ["online", "batch"])
def test_failed_lines_are_retried_then_recorded(corpus: Path, tmp_path: Path, retry: str) -> None:
    db = str(tmp_path / "j.db")
    with emulator(fail_500=0.3, seed=5) as server:
        run_config(configure(corpus, db, llm(server, batch_retry=retry, max_attempts=20)))
        stats = server.stats()
    failed_lines = stats["faults"]["fail_500"]
    assert failed_lines > 0
    found = labels(db)
    assert len(found) == N_DOCS
    if retry == "online":
        assert stats["requests"] >= 1 and stats["batch_requests"] == DISTINCT  # retried online
    else:
        assert stats["requests"] == 0 and stats["batch_requests"] > DISTINCT  # in follow-up batches
    quarantined = [r for r in documents(db) if r.status == "quarantined"]
    for record in quarantined:  # a line that failed in both of its batches: set aside with the reason
        assert record.error_type == "BatchRequestFailed" and "500" in (record.error_message or "")
    assert all(status in ("ok", "duplicate", "quarantined") for status, _ in found.values())


def test_batch_answers_fill_the_response_cache(corpus: Path, tmp_path: Path) -> None:
    """With the default cache beside a SQLite journal (threads: the workers' classifiers are their
    own), an online run after a batch run asks nothing: every answer is cached."""
    (tmp_path / "a").mkdir()
    with emulator() as server:
        run_config(configure(corpus, str(tmp_path / "a" / "batch.db"), llm(server, cache="auto")))
        assert server.stats()["batch_requests"] == DISTINCT
        online = llm(server, cache="auto", mode="online")
        run_config(configure(corpus, str(tmp_path / "a" / "online.db"), online))
        assert server.stats()["requests"] == 0
    assert labels(str(tmp_path / "a" / "online.db")) == labels(str(tmp_path / "a" / "batch.db"))


def test_max_cost_stops_submitting_and_collects_what_was_submitted(corpus: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    with emulator() as server:
        expensive = llm(server, price_input_per_1m=200.0, price_output_per_1m=200.0, cache="auto")
        config = configure(corpus, db, expensive).replace(max_cost=0.5)
        result = run_config(config)
        stats = server.stats()
        assert result.stopped == "max-cost" and 0 < stats["batch_requests"] < DISTINCT
        assert all(not b.open for b in batches(db)) and 0 < result.stats.cost <= 0.5
        run_config(configure(corpus, db, expensive))  # no limit: the rest
        assert server.stats()["batch_requests"] == DISTINCT
    check_complete(db)


@pytest.mark.parametrize("seconds", [4, pytest.param(20, marks=pytest.mark.slow)])
def test_acceptance_200_documents_killed_once_all_are_submitted(tmp_path: Path, seconds: int) -> None:
    """Issue 18's acceptance: 200 distinct unseen documents with --batch against `docmill emulate
    --batch-seconds N`; the runner SIGKILLed once every document is submitted; the resumed run
    completes: each document received once in batches, 200 ok, spend at the batch price."""
    docs = {f"n{i:03d}.txt": f"{TEXTS[i % 2]}, item {i} of the ledger number {i * 7919}" for i in range(200)}
    corpus = write_corpus(tmp_path / "corpus", docs)
    port = _free_port()
    argv = [sys.executable, "-m", "docmill", "emulate", "--port", str(port), "--batch-seconds", str(seconds)]
    argv += ["--latency-median", "0"]
    server = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL)
    try:
        url = _wait_for(port)
        db = str(tmp_path / "j.db")
        config = tmp_path / "docmill.yaml"
        config.write_text(
            yaml.safe_dump({"llm": {"base_url": url + "/v1", "model": "emulated-small", **PRICE}})
        )
        argv = [sys.executable, "-m", "docmill", "run", str(corpus), "--config", str(config), "--batch"]
        argv += ["--classifier", "llm", "--db", db, "--progress", "none", "--strategy", "processes"]
        env = {**os.environ, "PYTHONPATH": str(SRC), "DOCMILL_CRASH_AT": "all-submitted:1"}
        killed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert killed.returncode == -9, killed.stderr
        env.pop("DOCMILL_CRASH_AT")
        with_poll = [*argv[:6], str(_polling(tmp_path, config)), *argv[7:]]
        resumed = subprocess.run(with_poll, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert resumed.returncode == 0, resumed.stderr
        stats = _stats(url)
    finally:
        server.terminate()
        server.wait(10)
    assert (stats["batch_requests"], stats["requests"]) == (200, 0)
    records = documents(db)
    assert len(records) == 200 and all(r.status == "ok" for r in records)
    tokens_in, tokens_out = (
        sum(r.result["tokens_in"] for r in records),
        sum(r.result["tokens_out"] for r in records),
    )
    assert (tokens_in, tokens_out) == (stats["batch_tokens_in"], stats["batch_tokens_out"])
    batch_price = (tokens_in * 10.0 + tokens_out * 20.0) / 1e6 / 2
    assert sum(r.result["cost"] for r in records) == pytest.approx(batch_price)


def _polling(tmp_path: Path, config: Path) -> Path:
    """The same settings, polling every 0.5 s (the default minute is for real providers)."""
    settings = yaml.safe_load(config.read_text())
    settings["llm"]["batch_poll_seconds"] = 0.5
    polled = tmp_path / "polled.yaml"
    polled.write_text(yaml.safe_dump(settings))
    return polled


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> str:
    import socket
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the emulator did not start")


def _stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url + "/emulator/stats", timeout=10) as response:
        found: dict[str, Any] = json.load(response)
    return found


def test_polling_waits_on_the_injected_clock(corpus: Path, tmp_path: Path) -> None:
    """An hour-long batch, polled every 10 minutes, on a fake clock shared with the emulator: the run
    sleeps on that clock (no real waiting) and collects once the hour has passed."""
    import time

    from docmill.testing import FakeClock

    clock = FakeClock()
    with emulator(batch_seconds=3600.0) as server:
        server.emulator.clock = clock
        server.emulator.reset()
        began = time.monotonic()
        config = configure(corpus, str(tmp_path / "j.db"), llm(server, batch_poll_seconds=600.0))
        run_config(config, clock=clock)
        assert time.monotonic() - began < 30
    waits = [s for s in clock.sleeps if s == 600.0]
    assert 6 <= len(waits) <= 8 and clock.monotonic() - 1_000.0 >= 3600.0
    check_complete(str(tmp_path / "j.db"))


def test_a_pipeline_not_ending_in_the_llm_classifier_is_refused_naming_its_last_step() -> None:
    from docmill.batch.run import run_batch
    from docmill.errors import ConfigError
    from docmill.testing import MemorySource, NoopProcessor

    options = from_mapping(LLMOptions, {"model": "m", "mode": "batch"}, "llm")
    with pytest.raises(ConfigError, match=r"llm.mode: batch needs .* the last step here is NoopProcessor"):
        run_batch(MemorySource(1), NoopProcessor(), options=options)
